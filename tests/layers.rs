//! Data flows one way: the engine knows netfilter, not Kubernetes, and no input language. A module
//! that imports against the flow fails here, with the line that does.

use std::path::Path;

fn imports(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let mut bad = Vec::new();
    for e in std::fs::read_dir(&root).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        for (i, line) in text.lines().enumerate() {
            if forbidden.iter().any(|f| line.contains(f)) {
                bad.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
            }
        }
    }
    bad
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
