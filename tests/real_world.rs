//! Every command on every file of the real-world corpus (`fixtures/real-world/`, rule sets people
//! posted, with their sources in its README): each file is read without an error, `ls` lists
//! every Service its comments name, and `svc`, `trace`, `lint` and `graph` answer on it without
//! failing (lint may find problems: exit 1, never 2).

mod common;

use kptrace::engine::state::Verdict;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn corpus() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(common::fixture("real-world"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    v.sort();
    v
}

fn run(args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("kptrace")
        .unwrap()
        .env("NO_COLOR", "1")
        .env_remove("COLUMNS")
        .args(args)
        .output()
        .unwrap()
}

/// The Services kube-proxy's comments in `text` name (`ns/name` of `"ns/name:port …"`).
fn named_services(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for part in text
        .split("--comment ")
        .skip(1)
        .chain(text.split("/* ").skip(1))
    {
        let c = part.trim_start_matches('"');
        let word: String = c
            .chars()
            .take_while(|ch| !ch.is_whitespace() && *ch != '"' && *ch != '*')
            .collect();
        let word = word.split(':').next().unwrap_or("");
        let mut halves = word.split('/');
        let (Some(ns), Some(name), None) = (halves.next(), halves.next(), halves.next()) else {
            continue;
        };
        let dns = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "-.".contains(ch))
        };
        if dns(ns) && dns(name) {
            out.insert(format!("{ns}/{name}"));
        }
    }
    out
}

#[test]
fn the_corpus_is_large_and_documented() {
    let files = corpus();
    // The corpus grows with every paste form met in the field; it never shrinks.
    assert!(files.len() >= 30, "{} files", files.len());
    let readme = std::fs::read_to_string(common::fixture("real-world/README.md")).unwrap();
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name} has no source in the README"
        );
    }
}

#[test]
fn every_command_answers_on_every_real_world_file() {
    let mut failures = Vec::new();
    for f in corpus() {
        let path = f.to_str().unwrap();
        let ls = run(&["ls", "--format", "json", path]);
        if !ls.status.success() {
            failures.push(format!(
                "{path}: ls exited {:?}\n{}",
                ls.status.code(),
                String::from_utf8_lossy(&ls.stderr)
            ));
            continue;
        }
        let json: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
        let services = json["services"].as_array().unwrap();
        let listed: BTreeSet<String> = services
            .iter()
            .filter_map(|s| s["service"].as_str().map(str::to_string))
            .collect();
        let text = std::fs::read_to_string(&f).unwrap();
        for want in named_services(&text) {
            if !listed.contains(&want) {
                failures.push(format!(
                    "{path}: ls does not list `{want}`, which its comments name"
                ));
            }
        }
        for args in [
            vec!["lint", "--format", "json", path],
            vec!["lint", path],
            vec!["graph", path],
        ] {
            let out = run(&args);
            if !matches!(out.status.code(), Some(0 | 1)) {
                failures.push(format!(
                    "{path}: {args:?} exited {:?}\n{}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        for s in services.iter().take(8) {
            // A port no comment names is named by its Service chain.
            let Some(name) = s["service"].as_str().or(s["svc_chain"].as_str()) else {
                continue;
            };
            for args in [
                vec!["svc", name, path],
                vec!["svc", "--format", "json", name, path],
            ] {
                let out = run(&args);
                // 3: the answer is that some way in fails (docs/exit-codes.md).
                if !matches!(out.status.code(), Some(0 | 3)) {
                    failures.push(format!(
                        "{path}: {args:?} exited {:?}\n{}",
                        out.status.code(),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            if let (Some(ip), Some(port)) = (s["cluster_ip"].as_str(), s["port"].as_u64()) {
                let ip = ip.rsplit_once(':').map_or(ip, |(a, _)| a);
                let ip = ip.trim_start_matches('[').trim_end_matches(']');
                let port = port.to_string();
                let proto = s["protocol"].as_str().unwrap_or("tcp");
                let src = if ip.contains(':') {
                    "fd00::99"
                } else {
                    "10.99.0.9"
                };
                let out = run(&[
                    "trace", path, "--src", src, "--dst", ip, "--dport", &port, "--proto", proto,
                ]);
                if !matches!(out.status.code(), Some(0 | 3)) {
                    failures.push(format!(
                        "{path}: trace to {ip}:{port} exited {:?}\n{}",
                        out.status.code(),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn pods_reach_every_real_world_service_without_an_invented_drop() {
    // On these healthy nodes a pod's connection to a cluster IP is never dropped or rejected
    // for certain; whatever the paste cannot show is a condition, and each world is whole.
    let mut traced = 0;
    for path in corpus() {
        let rs = common::load(&path);
        let cat = kptrace::kube::Catalog::build(&rs);
        let mut names: Vec<String> = cat.ports.iter().map(|p| p.display_name()).collect();
        names.dedup();
        names.truncate(8);
        for q in names {
            let (reports, _) = kptrace::app::svc::analyse(&rs, &q, &[]);
            for r in &reports {
                for (p, t) in &r.probes {
                    if p.from != kptrace::kube::probe::From::Pod
                        || p.kind != kptrace::kube::EntryKind::ClusterIp
                    {
                        continue;
                    }
                    traced += 1;
                    for o in &t.outcomes {
                        assert!(
                            !matches!(o.verdict, Verdict::Drop | Verdict::Reject)
                                || !o.conditions.is_empty(),
                            "{}: {q}: a pod is dropped for certain: {o:#?}",
                            path.display()
                        );
                    }
                    for total in t.world_totals(12).unwrap_or_default() {
                        assert!(
                            (total - 1.0).abs() < 1e-9,
                            "{}: {q}: {total}",
                            path.display()
                        );
                    }
                }
            }
        }
    }
    assert!(traced >= 5, "only {traced} pod probes in the corpus");
}

/// lint on people's real rule sets: no error or warning on a healthy node or paste. The problems
/// it keeps are real and listed here with why: a new warning on the corpus fails this test until
/// it is shown to be one (or fixed as a false alarm).
#[test]
fn lint_raises_no_false_alarm_on_the_corpus() {
    // (file, rule): the corpus's true problems.
    let kept: &[(&str, &str)] = &[
        // Both listings (one node) print KUBE-FORWARD's and KUBE-POSTROUTING's rules without the
        // mark match kube-proxy writes, and flannel's too: the host's iptables is older than
        // kube-proxy's. Restored from such a dump, the node would masquerade nothing.
        (
            "flannel-filter-listing-not-numeric.txt",
            "iptables-version-skew",
        ),
        (
            "flannel-nat-listing-host-names.txt",
            "iptables-version-skew",
        ),
    ];
    let mut files = corpus();
    for s in std::fs::read_dir(common::fixture("seeds")).unwrap() {
        let p = s.unwrap().path();
        if p.file_name().is_some_and(|n| n != "README.md") {
            files.push(p);
        }
    }
    files.push(common::fixture("nodes/flannel-docker-libvirt-node.rules"));
    let mut seen = BTreeSet::new();
    for f in &files {
        let rs = common::load(f);
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        for x in kptrace::lint::run(&rs, &kptrace::lint::Options::default()) {
            if x.severity < kptrace::lint::Severity::Warning {
                continue;
            }
            assert!(
                kept.contains(&(name.as_str(), x.rule.name)),
                "{name}: {} {}: {}",
                x.rule.name,
                x.severity.name(),
                x.message
            );
            seen.insert((name.clone(), x.rule.name));
        }
    }
    for (f, r) in kept {
        assert!(
            seen.contains(&(f.to_string(), *r)),
            "{f}: the true problem `{r}` is no longer found"
        );
    }
}
