//! `kptrace graph`: the DOT of every fixture is accepted by the real Graphviz, output is
//! deterministic, labels survive quotes and backslashes, and the seed pictures are snapshotted.

mod common;

use assert_cmd::Command;
use std::io::Write;
use std::process::Stdio;

fn kptrace() -> Command {
    let mut c = Command::cargo_bin("kptrace").unwrap();
    c.current_dir(common::root())
        .env("NO_COLOR", "1")
        .env_remove("COLUMNS");
    c
}

fn graph(args: &[&str]) -> String {
    let out = kptrace().arg("graph").args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "graph {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs Graphviz on the text; `.ci/run` installs it (Debian package graphviz).
fn dot_accepts(text: &str, what: &str) {
    let mut child = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("Graphviz `dot` is needed for these tests (apt-get install graphviz)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dot rejected {what}: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
}

fn fixtures() -> Vec<String> {
    let mut files: Vec<String> = common::conformance_dumps()
        .iter()
        .map(|p| {
            p.strip_prefix(common::root())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    for dir in ["seeds", "valid"] {
        for e in std::fs::read_dir(common::fixture(dir)).unwrap() {
            let p = e.unwrap().path();
            let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
            if !matches!(ext, "md" | "sh") && !p.to_string_lossy().contains("listing") {
                files.push(format!(
                    "fixtures/{dir}/{}",
                    p.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    for dir in std::fs::read_dir(common::fixture("lint")).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            files.push(
                p.strip_prefix(common::root())
                    .unwrap()
                    .display()
                    .to_string(),
            );
        }
    }
    files.sort();
    files
}

#[test]
fn graphviz_accepts_the_whole_rule_set_graph_of_every_fixture() {
    let files = fixtures();
    assert!(files.len() > 60);
    for f in &files {
        let text = graph(&[f]);
        dot_accepts(&text, f);
        assert_eq!(text, graph(&[f]), "{f}: output differs between runs");
        let flat = graph(&["--no-collapse", f]);
        dot_accepts(&flat, f);
        let mermaid = graph(&["-f", "mermaid", f]);
        assert!(mermaid.starts_with("flowchart LR\n"), "{f}");
    }
}

#[test]
fn service_pictures_of_the_seeds() {
    for (svc, file, name) in [
        (
            "default/nginx-svc",
            "fixtures/seeds/001-nginx-svc.rules",
            "seed_001",
        ),
        (
            "32719",
            "fixtures/seeds/003-nginx-demo-nodeport-session.txt",
            "seed_003",
        ),
        (
            "default/registry",
            "fixtures/seeds/000-registry-grep.txt",
            "seed_000",
        ),
    ] {
        let text = graph(&["--svc", svc, "--node-ip", "192.168.1.5", file]);
        dot_accepts(&text, file);
        insta::assert_snapshot!(format!("graph_{name}_dot"), text);
        insta::assert_snapshot!(
            format!("graph_{name}_mermaid"),
            graph(&[
                "-f",
                "mermaid",
                "--svc",
                svc,
                "--node-ip",
                "192.168.1.5",
                file
            ])
        );
    }
    // Every endpoint of seed 001 is a leaf with its share on the edge.
    let text = graph(&[
        "--svc",
        "default/nginx-svc",
        "fixtures/seeds/001-nginx-svc.rules",
    ]);
    assert!(text
        .contains("n_ep_10_254_6_217_80 [label=\"10.254.6.217:80\\nKUBE-SEP-JY4YVH4LP7UWS56K\""));
    assert!(text.contains("-> n_ep_10_254_9_148_80 [label=\"1/2 · 50.0%\"]"));
    // Masquerading is said on the clients it applies to: a pod to the cluster IP is not
    // masqueraded, the node is, a pod reaching itself is for half its connections.
    let way_in = text
        .lines()
        .find(|l| l.contains("n_entry_cluster_IP_192_168_249_119_8000 ->"))
        .unwrap();
    assert!(
        way_in.contains("pod\\nnode · masq\\noutside · masq\\nhairpin · masq 1/2"),
        "{way_in}"
    );
}

#[test]
fn every_rule_between_two_chains_is_on_the_picture() {
    let text = graph(&[
        "--svc",
        "ns1/svc1",
        "fixtures/conformance/kube-proxy-iptables/01b3ac1-load-balancer/dump.txt",
    ]);
    dot_accepts(&text, "load balancer");
    let edge = |from: &str, to: &str| -> String {
        text.lines()
            .find(|l| l.contains(&format!("{from} -> {to}")))
            .unwrap_or_else(|| panic!("no edge {from} -> {to} in\n{text}"))
            .to_string()
    };
    // Both load-balancer IPs lead into the firewall chain.
    let lb = edge("n_nat_KUBE_SERVICES", "n_nat_KUBE_FW_XPGD46QRK7WJZT7O");
    assert!(
        lb.contains("-d 1.2.3.4/32") && lb.contains("-d 5.6.7.8/32"),
        "{lb}"
    );
    // Both source ranges, and the two rules for the load balancer's own addresses, pass it on.
    let ranges = edge(
        "n_nat_KUBE_FW_XPGD46QRK7WJZT7O",
        "n_nat_KUBE_EXT_XPGD46QRK7WJZT7O",
    );
    for s in [
        "-s 192.168.0.0/24",
        "-s 203.0.113.0/25",
        "-s 1.2.3.4/32",
        "-s 5.6.7.8/32",
    ] {
        assert!(ranges.contains(s), "{s} missing: {ranges}");
    }
    // The drop of each address is drawn, for the clients outside the ranges.
    let drop = edge("n_filter_KUBE_PROXY_FIREWALL", "n_verdict_DROP");
    assert!(
        drop.contains("-d 1.2.3.4/32") && drop.contains("-d 5.6.7.8/32"),
        "{drop}"
    );
    let refused = edge(
        "n_entry_load_balancer_1_2_3_4_80",
        "n_filter_KUBE_PROXY_FIREWALL",
    );
    assert!(
        refused.contains("outside (not in any source range)"),
        "{refused}"
    );
    assert!(!text.contains("legend"));
}

#[test]
fn many_endpoints_are_one_node_and_local_ones_are_marked() {
    let text = graph(&[
        "--svc",
        "shop/web",
        "fixtures/valid/many-endpoints-local-policy.rules",
    ]);
    dot_accepts(&text, "35 endpoints");
    insta::assert_snapshot!("graph_35_endpoints_dot", text);
    // 30 endpoints elsewhere are one node; the 5 on this node are drawn each, reached from both
    // the Service chain (1/35) and the local chain (1/5).
    assert!(
        text.contains("label=\"30 endpoints\\n10.244.1.10:8080\\n"),
        "{text}"
    );
    assert!(text.contains("+26 more"));
    assert!(text.contains("[label=\"1/35 · 2.9% each\"]"));
    let local: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(local)\\nKUBE-SEP-"))
        .collect();
    assert_eq!(local.len(), 5, "{text}");
    assert_eq!(text.matches("[label=\"1/5 · 20.0%\"]").count(), 5);
    // The ten endpoints of shop/api are drawn each.
    let api = graph(&[
        "--svc",
        "shop/api",
        "fixtures/valid/many-endpoints-local-policy.rules",
    ]);
    assert_eq!(api.matches("[label=\"1/10 · 10.0%\"]").count(), 10);
}

#[test]
fn mermaid_too_large_for_github_is_said() {
    let dump = std::env::temp_dir().join(format!("kptrace-mermaid-{}.rules", std::process::id()));
    let (_, text) = kptrace::synth::generate(&kptrace::synth::Options {
        services: 300,
        ..Default::default()
    });
    std::fs::write(&dump, text).unwrap();
    let out = kptrace()
        .args(["graph", "-f", "mermaid", "--no-collapse"])
        .arg(&dump)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("GitHub renders at most 50000 characters and 500 edges")
            && stderr.contains("drop `--no-collapse`"),
        "{stderr}"
    );
    // Collapsed, the same dump fits and nothing is said.
    let out = kptrace()
        .args(["graph", "-f", "mermaid"])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(dump);
}

#[test]
fn service_pictures_of_every_conformance_service() {
    for f in common::conformance_dumps() {
        let rs = common::load(&f);
        let cat = kptrace::kube::Catalog::build(&rs);
        let rel = f
            .strip_prefix(common::root())
            .unwrap()
            .display()
            .to_string();
        let mut names: Vec<String> = cat.ports.iter().filter_map(|p| p.service.clone()).collect();
        names.sort();
        names.dedup();
        for n in names {
            let text = graph(&["--svc", &n, &rel]);
            dot_accepts(&text, &format!("{rel} --svc {n}"));
        }
    }
}

#[test]
fn quotes_and_backslashes_in_rules_survive() {
    let dump = "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\n:KUBE-SEP-BBBBBBBBBBBBBBBB - [0:0]\n\
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment \"ns/q:p cluster IP\" -m string --string \"a\\\"b\\\\c\" --algo bm -m tcp --dport 80 -j KUBE-SVC-AAAAAAAAAAAAAAAA\n\
-A KUBE-SVC-AAAAAAAAAAAAAAAA -m comment --comment \"ns/q:p -> 10.0.0.5:80\" -j KUBE-SEP-BBBBBBBBBBBBBBBB\n\
-A KUBE-SEP-BBBBBBBBBBBBBBBB -p tcp -m tcp -j DNAT --to-destination 10.0.0.5:80\nCOMMIT\n";
    let dir = std::env::temp_dir().join(format!("kptrace-graph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("quotes.rules");
    std::fs::write(&path, dump).unwrap();
    let p = path.to_str().unwrap();
    let text = graph(&["--svc", "ns/q", p]);
    assert!(text.contains("\\\""), "{text}");
    dot_accepts(&text, "quotes");
    let whole = graph(&[p]);
    dot_accepts(&whole, "quotes (whole)");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_service_is_a_no() {
    kptrace()
        .args([
            "graph",
            "--svc",
            "default/nope",
            "fixtures/seeds/001-nginx-svc.rules",
        ])
        .assert()
        .code(1);
}
