//! Data flows one way: the engine knows netfilter, not Kubernetes, and no input language. A module
//! that imports against the flow fails here, with the line that does.

use std::path::Path;

fn imports(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let mut bad = Vec::new();
    let mut todo = vec![root];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
                continue;
            }
            check(&p, forbidden, &mut bad);
        }
    }
    bad
}

fn check(p: &Path, forbidden: &[&str], bad: &mut Vec<String>) {
    {
        let text = std::fs::read_to_string(p).unwrap();
        for (i, line) in text.lines().enumerate() {
            if forbidden.iter().any(|f| line.contains(f)) {
                bad.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
            }
        }
    }
}

#[test]
fn the_engine_imports_nothing_from_kube_parse_lint_render_or_app() {
    let bad = imports(
        "engine",
        &[
            "crate::kube",
            "crate::parse",
            "crate::lint",
            "crate::render",
            "crate::app",
        ],
    );
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn lint_findings_are_data_drawn_by_render() {
    let bad = imports("lint", &["crate::render", "crate::app", "crate::cli"]);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn kube_imports_nothing_from_lint_render_or_app() {
    let bad = imports(
        "kube",
        &["crate::lint", "crate::render", "crate::app", "crate::cli"],
    );
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn render_draws_results_and_imports_nothing_from_app() {
    let bad = imports("render", &["crate::app", "crate::cli"]);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn the_chain_graph_knows_only_the_model() {
    let bad = imports(
        "graph",
        &[
            "crate::engine",
            "crate::kube",
            "crate::lint",
            "crate::render",
            "crate::app",
        ],
    );
    assert!(bad.is_empty(), "{bad:#?}");
}
