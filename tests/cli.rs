//! The command line as people use it: outputs (snapshots), exit codes, and errors on bad input.

mod common;

use assert_cmd::Command;

fn kptrace() -> Command {
    let mut c = Command::cargo_bin("kptrace").unwrap();
    // Laid out as piped, whatever width the terminal running the tests has.
    c.env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("COLUMNS");
    c
}

fn stdout(args: &[&str]) -> String {
    stdout_at(None, args)
}

/// The output laid out for a terminal `cols` wide (an exported `COLUMNS`), or as piped.
fn stdout_at(cols: Option<&str>, args: &[&str]) -> String {
    let mut c = kptrace();
    if let Some(cols) = cols {
        c.env("COLUMNS", cols);
    }
    let out = c.args(args).current_dir(common::root()).output().unwrap();
    // 3 is an answer too: svc found a way in that fails, trace a connection that is refused.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The exit code of a command, with what it printed.
fn code(args: &[&str]) -> (Option<i32>, String) {
    let out = kptrace()
        .args(args)
        .current_dir(common::root())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// docs/exit-codes.md: svc and trace say in their exit code whether traffic gets through.
#[test]
fn exit_codes_say_whether_traffic_gets_through() {
    let seed = "fixtures/seeds/001-nginx-svc.rules";
    // Every way in reaches an endpoint.
    assert_eq!(code(&["svc", "default/nginx-svc", seed]).0, Some(0));
    // Only the drops loadBalancerSourceRanges asks for: still 0.
    let lb = "fixtures/conformance/kube-proxy-iptables/01b3ac1-load-balancer/dump.txt";
    assert_eq!(code(&["svc", "ns1/svc1", lb]).0, Some(0));
    // A Service without endpoints rejects every way in: 3, and the answer is printed.
    let reject = "fixtures/conformance/kube-proxy-iptables/01b3ac1-cluster-ip-reject/dump.txt";
    let (c, out) = code(&["svc", "ns1/svc1", reject]);
    assert_eq!(c, Some(3), "{out}");
    assert!(out.contains("✗"), "{out}");
    // Not in the input: 1. Unreadable input: 2.
    assert_eq!(code(&["svc", "default/nope", seed]).0, Some(1));
    assert_eq!(
        code(&[
            "svc",
            "default/nginx-svc",
            "fixtures/invalid/port-70000.rules"
        ])
        .0,
        Some(2)
    );
    // trace: reaching an endpoint is 0, every way rejected is 3.
    let to = |file: &str, dst: &str, port: &str| {
        code(&[
            "trace",
            file,
            "--src",
            "10.254.1.5",
            "--dst",
            dst,
            "--dport",
            port,
        ])
        .0
    };
    assert_eq!(to(seed, "192.168.249.119", "8000"), Some(0));
    assert_eq!(to(reject, "172.30.0.41", "80"), Some(3));
}

#[test]
fn svc_seed_001_human() {
    insta::assert_snapshot!(stdout(&[
        "svc",
        "default/nginx-svc",
        "fixtures/seeds/001-nginx-svc.rules"
    ]));
}

#[test]
fn svc_seed_002_script_human() {
    insta::assert_snapshot!(stdout(&[
        "svc",
        "10.100.100.1:7070",
        "fixtures/seeds/002-clusterip-nodeport-script.sh",
        "--node-ip",
        "192.168.1.6"
    ]));
}

#[test]
fn svc_seed_004_listing_human() {
    insta::assert_snapshot!(stdout(&[
        "svc",
        "default/testsvc",
        "fixtures/seeds/004-testsvc-lb-listing.txt",
        "--node-ip",
        "192.168.1.5"
    ]));
}

#[test]
fn svc_seed_003_human() {
    insta::assert_snapshot!(stdout(&[
        "svc",
        "default/nginx-demo-1",
        "fixtures/seeds/003-nginx-demo-nodeport-session.txt",
        "--node-ip",
        "192.168.1.5"
    ]));
}

#[test]
fn svc_conformance_lb_with_source_ranges_json() {
    insta::assert_snapshot!(stdout(&[
        "svc",
        "ns5/svc5",
        "fixtures/conformance/kube-proxy-iptables/01b3ac1-trace-packets/dump.txt",
        "--node-ip",
        "192.168.0.2",
        "--format",
        "json"
    ]));
}

#[test]
fn ls_seed_and_conformance() {
    insta::assert_snapshot!(stdout(&["ls", "fixtures/seeds/001-nginx-svc.rules"]));
    insta::assert_snapshot!(stdout(&[
        "ls",
        "fixtures/conformance/kube-proxy-iptables/01b3ac1-overall-rules-multiple-services/dump.txt",
        "--format",
        "json"
    ]));
}

#[test]
fn trace_json_shape() {
    let out = stdout(&[
        "trace",
        "fixtures/seeds/001-nginx-svc.rules",
        "--src",
        "10.254.1.10",
        "--dst",
        "192.168.249.119",
        "--dport",
        "8000",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let outcomes = v["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 2);
    for o in outcomes {
        for k in [
            "probability",
            "dnat",
            "masquerade",
            "verdict",
            "verdict_rule",
            "approximate",
            "path",
        ] {
            assert!(o.get(k).is_some(), "outcome lacks `{k}`");
        }
        assert_eq!(o["probability"], 0.5);
        assert_eq!(o["masquerade"], false);
        assert_eq!(o["verdict"], "accept");
    }
    insta::assert_snapshot!(out);
}

#[test]
fn stdin_is_read_when_no_file_is_given() {
    let dump = std::fs::read(common::fixture("seeds/001-nginx-svc.rules")).unwrap();
    let out = kptrace()
        .args(["ls", "--format", "json"])
        .write_stdin(dump)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["services"][0]["service"], "default/nginx-svc");
}

#[test]
fn unknown_service_exits_1_with_suggestions() {
    let out = kptrace()
        .args(["svc", "default/nginx", "fixtures/seeds/001-nginx-svc.rules"])
        .current_dir(common::root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("did you mean `default/nginx-svc`"), "{err}");
}

#[test]
fn windows_line_endings_and_bom_work() {
    let out = stdout(&["ls", "fixtures/valid/bom-crlf.rules", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["services"][0]["service"], "ns/a");
    assert_eq!(v["services"][0]["cluster_ip"], "10.0.0.1");
    assert_eq!(v["services"][0]["endpoints"], 1);
}

/// Every broken input: exit 2, a message naming the file, line and column, never a panic.
#[test]
fn invalid_inputs_exit_2_with_located_errors() {
    let dir = common::fixture("invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let rel = format!("fixtures/invalid/{name}");
        // A generous bound that turns a hang into a failure (these files are a few lines long).
        let out = kptrace()
            .args(["ls", &rel])
            .current_dir(common::root())
            .timeout(std::time::Duration::from_secs(5))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(
            err.contains(&rel),
            "{name}: the message names the file:\n{err}"
        );
        insta::assert_snapshot!(name.clone(), err);
    }
}

#[test]
fn svc_shows_counted_packets_beside_expected_shares() {
    let out = stdout(&[
        "svc",
        "ns3/svc3",
        "fixtures/valid/counters-30-services.rules",
        "--node-ip",
        "192.168.0.10",
    ]);
    assert!(out.contains("counted packets"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn ls_shows_counted_connections_when_the_dump_has_counters() {
    let out = stdout(&["ls", "fixtures/valid/counters-30-services.rules"]);
    assert!(out.contains("conns"), "{out}");
    insta::assert_snapshot!(out);
    // Without counters the column is not there.
    let out = stdout(&["ls", "fixtures/seeds/001-nginx-svc.rules"]);
    assert!(!out.contains("conns"), "{out}");
}

#[test]
fn ls_json_counted_packets_add_up_the_endpoint_dnat_counters() {
    let out = stdout(&[
        "ls",
        "fixtures/valid/counters-30-services.rules",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rs = kptrace::parse::read(
        "counters",
        std::fs::read("fixtures/valid/counters-30-services.rules").unwrap(),
        None,
    )
    .unwrap();
    let nat = rs.table("nat").unwrap();
    // Independently: the DNAT packets of every endpoint chain a Service's chain jumps to.
    for s in v["services"].as_array().unwrap() {
        let svc = nat.chain(s["svc_chain"].as_str().unwrap()).unwrap();
        let mut want = 0;
        let mut seen = std::collections::HashSet::new();
        for i in 0..svc.rules.len() {
            let Some(sep) = rs.rule(svc, i).jump_target() else {
                continue;
            };
            // Session affinity jumps to each endpoint twice (recent check, then the ladder).
            if !sep.starts_with("KUBE-SEP-") || !seen.insert(sep) {
                continue;
            }
            let sep = nat.chain(sep).unwrap();
            want += (0..sep.rules.len())
                .map(|j| rs.rule(sep, j))
                .filter(|r| r.target.as_ref().is_some_and(|t| t.kind.name() == "DNAT"))
                .map(|r| r.counters.unwrap().packets)
                .sum::<u64>();
        }
        assert_eq!(s["counted_packets"].as_u64(), Some(want), "{s}");
    }
}

#[test]
fn a_dual_stack_nodes_two_dumps_trace_together() {
    // kube-proxy writes one dump per family; both given at once, each family's node address
    // taken from --node-ip.
    let dir = "fixtures/conformance/kube-proxy-iptables";
    let v4 = format!("{dir}/01b3ac1-enable-localhost-nodeports-ipv4/dump.txt");
    let v6 = format!("{dir}/01b3ac1-enable-localhost-nodeports-ipv6/dump.txt");
    let args = [
        "svc",
        "ns1/svc1",
        &v4,
        &v6,
        "--node-ip",
        "192.168.0.2",
        "--node-ip",
        "2001:db8::2",
        "--format",
        "json",
    ];
    let v: serde_json::Value = serde_json::from_str(&stdout(&args)).unwrap();
    let entries = v["entries"].as_array().unwrap();
    let addr = |e: &serde_json::Value| e["address"].as_str().unwrap_or("").to_string();
    assert!(entries.iter().any(|e| addr(e) == "10.69.0.10"), "{v}");
    assert!(entries.iter().any(|e| addr(e) == "fd00:ab34::20"), "{v}");
    assert!(entries.iter().any(|e| addr(e) == "2001:db8::2"), "{v}");
    assert!(entries.iter().any(|e| addr(e) == "192.168.0.2"), "{v}");
    // From the node, the IPv6 cluster IP splits evenly between the two IPv6 endpoints.
    let from_node = entries
        .iter()
        .find(|e| addr(e) == "fd00:ab34::20" && e["from"] == "node")
        .unwrap();
    let mut dnats: Vec<(String, f64)> = from_node["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["dnat"].as_str().unwrap().to_string(),
                o["probability"].as_f64().unwrap(),
            )
        })
        .collect();
    dnats.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        dnats,
        vec![("[ff06::c1]:80".into(), 0.5), ("[ff06::c2]:80".into(), 0.5)]
    );
    let human = stdout(&args[..args.len() - 2]);
    insta::assert_snapshot!(human);
}

#[test]
fn a_gzip_dump_reads_as_the_dump() {
    use std::io::Write;
    let plain = std::fs::read(common::fixture("seeds/001-nginx-svc.rules")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let want = stdout(&["ls", "fixtures/seeds/001-nginx-svc.rules"]);
    let out = kptrace()
        .args(["ls", "-"])
        .write_stdin(gz.finish().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    // The same Services; only the input's name in the headline differs.
    let body = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&String::from_utf8(out.stdout).unwrap()), body(&want));
}

#[test]
fn an_executable_gets_one_error_and_none_of_its_bytes() {
    let out = kptrace().args(["ls", "/bin/ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("1 error"), "{err}");
    assert!(err.contains("executable (ELF)"), "{err}");
    assert!(err.lines().count() < 15, "{err}");
}

#[test]
fn many_errors_are_cut_to_a_readable_number() {
    let text: String = (0..300)
        .map(|i| format!("-A X -p tcp --dport 7000{i}\n"))
        .collect();
    let out = kptrace()
        .args(["ls", "-"])
        .write_stdin(text)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("(the first 20 are shown)"), "{err}");
    assert!(err.matches("Error:").count() <= 20, "{err}");
}

#[test]
fn a_service_whose_ways_in_the_paste_lacks_gets_no_tick() {
    let out = stdout(&[
        "svc",
        "kube-system/kube-dns:dns",
        "fixtures/real-world/flannel-nat-listing-host-names.txt",
    ]);
    assert!(
        out.contains("? no way into this Service is in the input"),
        "{out}"
    );
    assert!(!out.contains('✓'), "{out}");
    assert!(out.contains("known only from their own chains"), "{out}");
}

#[test]
fn svc_on_a_flannel_docker_libvirt_node_invents_no_drop() {
    // Docker's and libvirt's rules test `docker0` and `virbr0`; pods use neither, so every way in
    // reaches the endpoints, in thirds, and no rule of theirs is a coin flip.
    let out = stdout(&[
        "svc",
        "default/web",
        "fixtures/nodes/flannel-docker-libvirt-node.rules",
        "--node-ip",
        "192.168.1.20",
    ]);
    assert!(out.contains("✓ every way in reaches an endpoint"), "{out}");
    assert!(!out.contains('✗'), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn trace_with_the_docker_bridge_as_pod_interface_meets_dockers_rules() {
    // Named as the pod interface, `docker0` meets Docker's rules as on a node whose pods sit on
    // the Docker bridge: the isolation chain returns, and `-i docker0 ! -o docker0` accepts.
    let out = stdout(&[
        "trace",
        "fixtures/nodes/flannel-docker-libvirt-node.rules",
        "--src",
        "10.244.0.10",
        "--dst",
        "10.96.0.10",
        "--dport",
        "80",
        "--pod-iface",
        "docker0",
        "--uplink",
        "eth0",
        "-f",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let outcomes = v["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 3, "{out}");
    for o in outcomes {
        assert_eq!(o["verdict"], "accept");
        assert!(o["conditions"].as_array().unwrap().is_empty());
        // DNAT'd to a pod on docker0, leaving by docker0: Docker's `-i docker0 -o docker0` rule.
        assert_eq!(o["verdict_rule"]["line"], 27, "{o:#}");
    }
}

/// Services named as kubectl users name them: without the namespace, with `-n`, with the port's
/// number; a file where the Service should be is said to be one.
#[test]
fn services_are_found_as_people_name_them() {
    let seed = "fixtures/seeds/001-nginx-svc.rules";
    for args in [
        vec!["svc", "nginx-svc", seed],
        vec!["svc", "-n", "default", "nginx-svc", seed],
        vec!["svc", "default/nginx-svc:8000", seed],
    ] {
        let out = stdout(&args);
        assert!(
            out.starts_with("default/nginx-svc:80/tcp · cluster IP 192.168.249.119:8000"),
            "{args:?}: {out}"
        );
    }
    let out = kptrace()
        .args(["svc", "-n", "kube-system", "nginx-svc", seed])
        .current_dir(common::root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `default/nginx-svc`"));
    let out = kptrace()
        .args(["svc", seed])
        .current_dir(common::root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a file, and no Service is named"), "{err}");
    assert!(!err.contains("standard input"), "{err}");
}

/// `trace` to a Service address says what the address is: without `--dport` it takes the
/// Service's one port and says so; with another port it says which ports the address has.
#[test]
fn trace_names_the_port_of_a_service_address() {
    let seed = "fixtures/seeds/001-nginx-svc.rules";
    let base = [
        "trace",
        "--src",
        "10.244.1.5",
        "--dst",
        "192.168.249.119",
        seed,
    ];
    let out = stdout(&base);
    assert!(
        out.starts_with("tcp 10.244.1.5:40000 → 192.168.249.119:8000"),
        "{out}"
    );
    assert!(
        out.contains("note: --dport not given: 8000/tcp, as 192.168.249.119 is the cluster IP of default/nginx-svc, port 8000/tcp"),
        "{out}"
    );
    let mut wrong = base.to_vec();
    wrong.extend(["--dport", "80"]);
    let out = stdout(&wrong);
    assert!(
        out.contains("192.168.249.119 is the cluster IP of default/nginx-svc, port 8000/tcp: port 80/tcp is not one of its ports"),
        "{out}"
    );
    let out = kptrace()
        .args(["trace", "--src", "10.244.1.5", "--dst", "10.1.1.1", seed])
        .current_dir(common::root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give `--dport PORT`"));
}

/// Completions and the manual come from the command-line definitions.
#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = stdout(&["completions", shell]);
        assert!(
            out.contains("kptrace") && out.contains("svc"),
            "{shell}: {out}"
        );
    }
    let man = stdout(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH kptrace 1"),
        "{man}"
    );
    assert!(
        man.contains(".SH SUBCOMMANDS") || man.contains("svc"),
        "{man}"
    );
}

/// Installed as `kubectl-kptrace`, usage names the command as kubectl users type it.
#[test]
fn as_a_kubectl_plugin_usage_says_kubectl_kptrace() {
    let dir = std::env::temp_dir().join(format!("kptrace-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plugin = dir.join("kubectl-kptrace");
    let _ = std::fs::remove_file(&plugin);
    std::fs::copy(assert_cmd::cargo::cargo_bin("kptrace"), &plugin).unwrap();
    let out = std::process::Command::new(&plugin)
        .args(["svc", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Usage: kubectl kptrace svc"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Screens people see: at 80 columns no line is wider (but for the quoted rule text of lint's
/// snippets, which is the input's) and no address, port, chain name or number is split; at 200
/// columns nothing wraps. Snapshots of both, for svc, ls, trace and lint.
#[test]
fn screens_fit_80_and_200_columns() {
    let run = |cols: &str, args: &[&str]| {
        if args[0] != "lint" {
            return stdout_at(Some(cols), args);
        }
        // lint exits 1 on findings: that is its answer here.
        let out = kptrace()
            .env("COLUMNS", cols)
            .args(args)
            .current_dir(common::root())
            .output()
            .unwrap();
        assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let many = "fixtures/valid/many-endpoints-local-policy.rules";
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "svc_seed_004",
            vec![
                "svc",
                "default/testsvc",
                "fixtures/seeds/004-testsvc-lb-listing.txt",
            ],
        ),
        (
            "svc_lb_source_ranges",
            vec![
                "svc",
                "ns16/svc16",
                "fixtures/lint/forward-policy-drop/near-miss-policy-drop-with-kube-forward.rules",
            ],
        ),
        ("svc_35_endpoints", vec!["svc", "shop/web", many]),
        (
            "svc_35_endpoints_listed",
            vec!["svc", "shop/web", "--endpoints", many],
        ),
        ("ls_35_endpoints", vec!["ls", many]),
        (
            "trace_policy_drop",
            vec![
                "trace",
                "--src",
                "10.128.0.200",
                "--dst",
                "172.20.0.17",
                "--dport",
                "80",
                "fixtures/lint/forward-policy-drop/fires-policy-drop-without-mark-accept.rules",
            ],
        ),
        (
            "trace_seed_001_port_inferred",
            vec![
                "trace",
                "--src",
                "10.254.1.5",
                "--dst",
                "192.168.249.119",
                "fixtures/seeds/001-nginx-svc.rules",
            ],
        ),
        (
            "lint_mark_collision",
            vec![
                "lint",
                "fixtures/lint/missing-masquerade/fires-mangle-postrouting-clears-mark.rules",
            ],
        ),
        (
            "lint_seed_004",
            vec!["lint", "fixtures/seeds/004-testsvc-lb-listing.txt"],
        ),
    ];
    // A line of a lint snippet: `  94 | -A KUBE-…`, the input's own text, or its heading with the
    // file's name: `,-[fixtures/….rules:37:1]`, or a label under it, placed below the middle of
    // the rule it points at (`:   `-- changes 0x4000…`).
    let snippet = |l: &str| {
        let t = l.trim_start();
        t.starts_with(",-[")
            || t.starts_with(": ")
            || t.split_once(" | ")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    for (name, args) in cases {
        let (narrow, wide) = (run("80", &args), run("200", &args));
        for line in narrow.lines().filter(|l| !snippet(l)) {
            assert!(
                unicode_width::UnicodeWidthStr::width(line) <= 80,
                "{name}: {line:?}"
            );
        }
        // Every address:port of the wide screen is whole on the narrow one.
        for tok in wide
            .split_whitespace()
            .filter(|t| t.contains(':') && t.chars().next().is_some_and(|c| c.is_ascii_digit()))
        {
            let tok = tok.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            assert!(
                narrow.contains(tok),
                "{name}: `{tok}` is split at 80 columns"
            );
        }
        insta::assert_snapshot!(format!("{name}_80_columns"), narrow);
        insta::assert_snapshot!(format!("{name}_200_columns"), wide);
    }
    // The 35 endpoints, listed: every address whole at 80 columns, the local ones marked.
    let listed = run("80", &["svc", "shop/web", "--endpoints", many]);
    for i in 0..35 {
        let addr = format!("10.244.{}.{}:8080", i % 7 + 1, 10 + i);
        assert!(listed.contains(&addr), "{addr} missing:\n{listed}");
    }
    // Pods reach all 35 by both ways in, hairpin clients too; outside clients of the NodePort only
    // the 5 on this node.
    assert_eq!(listed.matches("(local)").count(), 5 * 4, "{listed}");
}

/// `ls` of the 30-Service fixture at 80 columns: no row wraps (the chain names and protocols give
/// way); at 200 columns every column is there; piped, every column too.
#[test]
fn ls_fits_80_columns() {
    let run =
        |cols: Option<&str>| stdout_at(cols, &["ls", "fixtures/valid/counters-30-services.rules"]);
    let narrow = run(Some("80"));
    for line in narrow.lines() {
        assert!(
            unicode_width::UnicodeWidthStr::width(line) <= 80,
            "{line:?}"
        );
    }
    assert!(narrow.contains("ns0/svc0") && narrow.contains("172.20.0.1:80"));
    let wide = run(Some("200"));
    assert!(
        wide.lines().nth(1).unwrap().trim_end().ends_with("chain"),
        "{wide}"
    );
    assert_eq!(run(None), wide);
    insta::assert_snapshot!("ls_30_services_80_columns", narrow);
}

/// `trace` says first when nothing accepts the packet, before the table and the paths.
#[test]
fn trace_puts_the_problem_first() {
    let out = stdout(&[
        "trace",
        "--src",
        "10.128.0.200",
        "--dst",
        "172.20.0.17",
        "--dport",
        "80",
        "fixtures/lint/forward-policy-drop/fires-policy-drop-without-mark-accept.rules",
    ]);
    assert_eq!(
        out.lines().nth(1),
        Some("✗ no outcome is accepted"),
        "{out}"
    );
}

/// Many endpoints with equal shares are one row, with the exact share and how far the kernel's
/// probabilities stray from it; `--endpoints` lists them all.
#[test]
fn equal_shares_are_grouped_unless_endpoints_are_asked_for() {
    let file = "fixtures/lint/no-kube-proxy-rules/near-miss-iptables-mode.rules";
    let out = stdout(&["svc", "ns16/svc16", file]);
    let row = out
        .lines()
        .find(|l| l.starts_with(" cluster IP 172.20.0.17:80") && l.contains(" pod "))
        .unwrap();
    assert!(
        row.contains("10 endpoints") && row.contains("10% each") && row.contains("1/10 ±"),
        "{row}"
    );
    assert!(out.contains("`--endpoints` lists them"));
    let all = stdout(&["svc", "ns16/svc16", file, "--endpoints"]);
    for i in 38..=47 {
        assert!(all.contains(&format!("10.128.0.{i}:8080")), "{all}");
    }
    assert!(all.lines().count() > out.lines().count() + 8);
}

/// JSON fields mean what they say: a port with endpoints elsewhere but none on this node has the
/// "no local endpoints" drop, not a "no endpoints" reject; every port says its input and family;
/// lint's JSON carries what was noted while reading.
#[test]
fn json_fields_say_what_they_mean() {
    let multi =
        "fixtures/conformance/kube-proxy-iptables/01b3ac1-overall-rules-multiple-services/dump.txt";
    let ls: serde_json::Value =
        serde_json::from_str(&stdout(&["ls", "-f", "json", multi])).unwrap();
    let svc2 = ls["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "ns2/svc2")
        .unwrap();
    assert_eq!(svc2["endpoints"], 1, "{svc2}");
    assert_eq!(svc2["no_endpoints_rule"], false, "{svc2}");
    assert_eq!(svc2["no_local_endpoints_rule"], true, "{svc2}");
    assert_eq!(svc2["input"], multi);
    assert_eq!(svc2["family"], "ipv4");
    let reject = "fixtures/conformance/kube-proxy-iptables/01b3ac1-cluster-ip-reject/dump.txt";
    let ls: serde_json::Value =
        serde_json::from_str(&stdout(&["ls", "-f", "json", reject])).unwrap();
    assert_eq!(ls["services"][0]["no_endpoints_rule"], true);
    assert_eq!(ls["services"][0]["no_local_endpoints_rule"], false);
    // Clients are named as in the text.
    let lb = "fixtures/conformance/kube-proxy-iptables/01b3ac1-load-balancer/dump.txt";
    let svc: serde_json::Value =
        serde_json::from_str(&stdout(&["svc", "-f", "json", "ns1/svc1", lb])).unwrap();
    let froms: Vec<&str> = svc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["from"].as_str().unwrap())
        .collect();
    assert!(
        froms.contains(&"outside") && !froms.contains(&"external"),
        "{froms:?}"
    );
    assert!(svc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["family"] == "ipv4" && e["input"] == lb));
    // lint: the notes of reading a listing with a cut.
    let out = kptrace()
        .args([
            "lint",
            "-f",
            "json",
            "fixtures/seeds/004-testsvc-lb-listing.txt",
        ])
        .current_dir(common::root())
        .output()
        .unwrap();
    let lint: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let notes = lint["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(
            |n| n["input"] == "fixtures/seeds/004-testsvc-lb-listing.txt"
                && n["message"].as_str().unwrap().contains("elided")
        ),
        "{notes:?}"
    );
}
