//! kube-proxy's nftables mode: `ls` and `svc` read kube-proxy's nftables table as they read its
//! iptables rules, and say the same whichever form holds the ruleset (the `add` form kube-proxy
//! writes, what `nft list ruleset` prints, or `nft -j list ruleset`'s JSON).

mod common;

use assert_cmd::Command;
use serde_json::Value;

fn kptrace() -> Command {
    let mut c = Command::cargo_bin("kptrace").unwrap();
    c.current_dir(common::root())
        .env("NO_COLOR", "1")
        .env_remove("COLUMNS");
    c
}

fn json(args: &[&str]) -> Value {
    let out = kptrace().args(args).output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The `notes` of a JSON answer.
fn notes_of(v: &Value) -> Vec<&str> {
    v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect()
}

/// Line numbers and the file name differ between the forms; nothing else may.
fn without_lines(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != "line" && *k != "input")
                .map(|(k, v)| (k.clone(), without_lines(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_lines).collect()),
        Value::String(s) => {
            let mut out = String::new();
            let mut words = s.split(' ').peekable();
            while let Some(w) = words.next() {
                out.push_str(w);
                if w == "line" {
                    if let Some(n) = words.peek() {
                        if n.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                            words.next();
                            out.push_str(" N");
                        }
                    }
                }
                out.push(' ');
            }
            Value::String(out)
        }
        v => v.clone(),
    }
}

fn cases() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(common::fixture("conformance/kube-proxy-nftables"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn every_form_lists_the_same_services_with_the_same_answers() {
    let mut services = 0;
    for case in cases() {
        let add = case.join("ruleset.nft");
        let list = case.join("ruleset.list.nft");
        let js = case.join("ruleset.json");
        let (add, list, js) = (
            add.to_str().unwrap(),
            list.to_str().unwrap(),
            js.to_str().unwrap(),
        );
        let ls = json(&["ls", "-f", "json", add]);
        for other in [list, js] {
            let mut theirs = without_lines(&json(&["ls", "-f", "json", other]));
            // The JSON form says how its line numbers are to be read.
            theirs["notes"] = without_lines(&ls)["notes"].clone();
            assert_eq!(without_lines(&ls), theirs, "{other}");
        }
        // Every Service kube-proxy wrote a chain for is listed.
        let text = std::fs::read_to_string(add).unwrap();
        for name in text
            .split_whitespace()
            .filter(|w| w.contains('/'))
            .filter_map(|w| w.strip_prefix("service-"))
            .filter_map(|w| w.split_once('-').map(|(_, rest)| rest))
        {
            let svc: String = name.splitn(3, '/').take(2).collect::<Vec<_>>().join("/");
            assert!(
                ls["services"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["service"] == svc.as_str()),
                "{}: `{svc}` not listed",
                case.display()
            );
        }
        let mut names: Vec<&str> = ls["services"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["service"].as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        for s in names {
            services += 1;
            let mine = without_lines(&json(&["svc", "-f", "json", s, add]));
            for other in [list, js] {
                let mut theirs = without_lines(&json(&["svc", "-f", "json", s, other]));
                theirs["notes"] = mine["notes"].clone();
                assert_eq!(mine, theirs, "{other} {s}");
            }
        }
    }
    assert!(services >= 60, "{services} Services");
}

/// A Service of kube-proxy's nftables test suite, as `svc` shows it: the ways in, the endpoints
/// with their exact shares (numgen), and masquerading by the rule that jumps to
/// `mark-for-masquerade`.
#[test]
fn svc_of_an_nftables_ruleset() {
    let file =
        "fixtures/conformance/kube-proxy-nftables/81810de-cluster-ip-general/ruleset.list.nft";
    let out = kptrace()
        .args(["svc", "ns2/svc2:http", file, "--node-ip", "192.168.0.2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    insta::assert_snapshot!("svc_nftables_cluster_ip", text);
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in\n{text}"))
            .to_string()
    };
    assert!(line(" cluster IP 172.30.0.42:80  pod").contains("10.180.0.1:80"));
    assert!(line("10.180.2.1:80").contains("50%"));
    // The masquerade column points at `ip daddr … ip saddr != 10.0.0.0/8 jump mark-for-masquerade`.
    let src = std::fs::read_to_string(common::root().join(file)).unwrap();
    let jump = src
        .lines()
        .position(|l| {
            l.contains("ip daddr 172.30.0.42 ip saddr != 10.0.0.0/8 jump mark-for-masquerade")
        })
        .unwrap()
        + 1;
    assert!(
        line(" node ").contains(&format!("yes, line {jump}")),
        "{}",
        line(" node ")
    );
}

/// lint reads verdict maps as jumps: kube-proxy's own rulesets raise no warning, and its helper
/// chains (`reject-chain`, `mark-for-masquerade`) are not orphans when no map names them yet.
#[test]
fn lint_is_quiet_on_kube_proxys_own_rulesets() {
    for case in cases() {
        for form in ["ruleset.nft", "ruleset.list.nft", "ruleset.json"] {
            let f = case.join(form);
            let out = kptrace()
                .args(["lint", "-f", "json", f.to_str().unwrap()])
                .output()
                .unwrap();
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            let loud: Vec<&Value> = v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|x| x["severity"] != "note")
                .collect();
            assert!(loud.is_empty(), "{}: {loud:?}", f.display());
            assert_eq!(out.status.code(), Some(0), "{}", f.display());
        }
    }
}

/// What people paste of `nft list`: a part of a table without its `table … {` line, `....` where
/// they cut, `# handle` comments, a paste that stops mid-chain. Read with notes, never refused;
/// answers through a cut are approximate.
#[test]
fn pastes_of_nft_list_read_with_notes() {
    let file = common::fixture(
        "conformance/kube-proxy-nftables/81810de-cluster-ip-general/ruleset.list.nft",
    );
    let whole = std::fs::read_to_string(file).unwrap();
    let mut lines: Vec<String> = whole.lines().skip(1).map(str::to_string).collect();
    // A cut inside the Service chain of ns2/svc2:http, before its numgen rule.
    let at = lines
        .iter()
        .position(|l| l.contains("numgen random mod 2 vmap { 0 : goto endpoint-MZNRJZ2L"))
        .unwrap();
    lines.insert(at, "\t\t....".into());
    for l in lines
        .iter_mut()
        .filter(|l| l.trim_start().starts_with("chain "))
    {
        l.push_str(" # handle 7");
    }
    // …and the paste stops inside the last chain.
    lines.truncate(lines.len() - 3);
    let paste = std::env::temp_dir().join(format!("kpt-nft-paste-{}.txt", std::process::id()));
    std::fs::write(&paste, lines.join("\n")).unwrap();
    let p = paste.to_str().unwrap();
    let ls = json(&["ls", "-f", "json", p]);
    let notes = notes_of(&ls);
    assert!(
        notes.iter().any(|n| n.contains("starts inside a table")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.contains("ends inside")), "{notes:?}");
    assert!(ls["services"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["service"] == "ns2/svc2" && s["port_name"] == "http"));
    let t = json(&[
        "trace",
        p,
        "--src",
        "10.180.0.2",
        "--dst",
        "172.30.0.42",
        "--dport",
        "80",
        "--format",
        "json",
    ]);
    assert!(
        t["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["approximate"] == true),
        "{t}"
    );
    let _ = std::fs::remove_file(paste);
}

/// `svc` of every Service of a generated 2,000-Service nftables ruleset against what the generator
/// drew: a pod reaches exactly the endpoints, each with exactly 1/N (numgen), unmasqueraded; the
/// node is masqueraded; a Service without endpoints rejects; an outside client of a NodePort with
/// externalTrafficPolicy Local reaches only the endpoints on this node, 1/L each, or is dropped.
#[test]
fn svc_of_every_generated_nftables_service_matches_the_generator() {
    use kptrace::kube::analysis::analyse;
    use kptrace::kube::probe::From;
    use kptrace::kube::EntryKind;
    let cluster = kptrace::synth::build(&kptrace::synth::Options {
        services: 2000,
        ..Default::default()
    });
    let text = kptrace::synth_nft::write(&cluster);
    let rs = kptrace::parse::read("gen.nft", text.into_bytes(), None).unwrap();
    let node: std::net::IpAddr = kptrace::synth::NODE_IP.into();
    let ports: Vec<_> = cluster
        .services
        .iter()
        .flat_map(|s| s.ports.iter().map(move |p| (s, p)))
        .collect();
    use rayon::prelude::*;
    // Each port's analysis is independent: on all cores.
    ports.par_iter().for_each(|&(svc, port)| {
        let pname = port.name.rsplit(':').next().unwrap();
        let q = format!("{}/{}:{pname}", svc.namespace, svc.name);
        let (reports, _) = analyse(&rs, &q, &[node]);
        let r = reports
            .iter()
            .find(|r| r.port.protocol.map(|p| p.to_string()) == Some(port.proto.name().into()))
            .unwrap_or_else(|| panic!("{q}: not found"));
        let trace = |kind: EntryKind, from: From| {
            r.probes
                .iter()
                .find(|(p, _)| p.kind == kind && p.from == from)
                .map(|(_, t)| t)
        };
        let n = port.endpoints.len();
        let pod = trace(EntryKind::ClusterIp, From::Pod).unwrap_or_else(|| panic!("{q}"));
        if n == 0 {
            assert!(
                pod.outcomes
                    .iter()
                    .all(|o| o.verdict == kptrace::engine::state::Verdict::Reject),
                "{q}: {:?}",
                pod.outcomes
            );
        } else {
            let want: std::collections::BTreeSet<String> = port
                .endpoints
                .iter()
                .map(|e| format!("{}:{}", e.ip, e.port))
                .collect();
            let got: std::collections::BTreeSet<String> =
                pod.outcomes.iter().filter_map(|o| o.dnat.clone()).collect();
            assert_eq!(got, want, "{q}");
            for o in &pod.outcomes {
                assert_eq!(o.probability, 1.0 / n as f64, "{q}: {:?}", o.dnat);
                assert!(!o.masquerade, "{q}: a pod is not masqueraded");
            }
            let from_node = trace(EntryKind::ClusterIp, From::Node).unwrap();
            assert!(from_node.outcomes.iter().all(|o| o.masquerade), "{q}: node");
        }
        if let (Some(_), true, true) = (port.node_port, svc.local_policy, n > 0) {
            let outside = trace(EntryKind::NodePort, From::Outside).unwrap();
            let local: std::collections::BTreeSet<String> = port
                .endpoints
                .iter()
                .filter(|e| e.local)
                .map(|e| format!("{}:{}", e.ip, e.port))
                .collect();
            let got: std::collections::BTreeSet<String> = outside
                .outcomes
                .iter()
                .filter_map(|o| o.dnat.clone())
                .collect();
            assert_eq!(got, local, "{q}: outside to the NodePort");
            if local.is_empty() {
                assert!(outside
                    .outcomes
                    .iter()
                    .all(|o| o.verdict == kptrace::engine::state::Verdict::Drop));
            } else {
                for o in &outside.outcomes {
                    assert_eq!(o.probability, 1.0 / local.len() as f64, "{q}");
                }
            }
        }
    });
    assert!(ports.len() > 2500, "{} ports", ports.len());
}

/// An iptables-mode node seen through `nft list ruleset` (iptables-nft's `table ip nat` and
/// `table ip filter`, statistic rules as `meta random & 2147483647 < N`): the same rules the
/// kernel holds give the same answers as their `iptables-save`, share for share.
#[test]
fn iptables_nft_seen_through_nft_answers_as_its_iptables_save() {
    let save = "fixtures/valid/many-endpoints-local-policy.rules";
    let nft = "fixtures/valid/iptables-nft-seen-through-nft-list.txt";
    for (src, dst, port) in [
        ("10.244.0.9", "10.96.40.12", "80"),
        ("10.244.0.9", "10.96.40.30", "9000"),
        ("203.0.113.7", "192.168.10.21", "31080"),
    ] {
        let outcomes = |file: &str| -> Vec<(String, String, bool)> {
            let t = json(&[
                "trace",
                file,
                "--src",
                src,
                "--dst",
                dst,
                "--dport",
                port,
                "--node-ip",
                "192.168.10.21",
                "--format",
                "json",
            ]);
            let mut v: Vec<(String, String, bool)> = t["outcomes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| {
                    (
                        o["dnat"].as_str().unwrap_or("").to_string(),
                        format!("{:.15}", o["probability"].as_f64().unwrap()),
                        o["masquerade"] == true,
                    )
                })
                .collect();
            v.sort();
            v
        };
        let (a, b) = (outcomes(save), outcomes(nft));
        assert!(!a.is_empty());
        assert_eq!(a, b, "{src} → {dst}:{port}");
    }
    // Without comments, Services are known by their cluster IP.
    let ls = json(&["ls", "-f", "json", nft]);
    assert_eq!(ls["services"].as_array().unwrap().len(), 3);
}

/// Rules are read when first needed; a whole-table command still reads them all, so a rule nft
/// would refuse is an error at its line for `ls` and `lint` (exit 2), wherever it is.
#[test]
fn a_bad_rule_anywhere_fails_whole_table_commands() {
    let text = "add table ip t\n\
        add chain ip t a { type nat hook prerouting priority dstnat ; }\n\
        add rule ip t a ip daddr 10.0.0.1 accept\n\
        add rule ip t a dnat to not-an-address\n";
    for cmd in ["ls", "lint"] {
        let out = kptrace()
            .args([cmd, "-"])
            .write_stdin(text)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not-an-address"), "{cmd}: {err}");
        assert!(err.contains(":4:"), "{cmd}: {err}");
    }
}

/// kube-proxy ≥ 1.36: endpoints chosen by `dnat ip to numgen random mod 3 map { … }` in the
/// Service chain, traffic from outside the pod network marked in `services`, and a pod reaching
/// itself masqueraded through `@hairpin-connections` (the kernel agrees: tests/kernel.rs).
#[test]
fn the_1_36_layout_without_endpoint_chains() {
    let f = "fixtures/valid/kube-proxy-1.36-layout.nft";
    let v = json(&["svc", "kproxy-lab/backend-api", f, "-f", "json"]);
    let entries = v["entries"].as_array().unwrap();
    let from = |who: &str| {
        entries
            .iter()
            .find(|e| e["from"] == who && e["kind"] == "cluster-ip")
            .unwrap_or_else(|| panic!("no entry from {who}: {v}"))
    };
    for who in ["pod", "outside", "hairpin"] {
        let outs = from(who)["outcomes"].as_array().unwrap();
        let mut got: Vec<(String, f64, bool)> = outs
            .iter()
            .map(|o| {
                (
                    o["dnat"].as_str().unwrap().to_string(),
                    o["probability"].as_f64().unwrap(),
                    o["masquerade"].as_bool().unwrap(),
                )
            })
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let addrs: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(
            addrs,
            ["10.244.0.10:9898", "10.244.0.12:9898", "10.244.0.8:9898"],
            "{who}"
        );
        for (a, p, masq) in &got {
            assert!((p - 1.0 / 3.0).abs() < 1e-12, "{who} {a}: {p}");
            if who != "hairpin" {
                assert_eq!(*masq, who == "outside", "{who} {a}");
            }
        }
        // The hairpin client is one of the endpoints: only the connection DNATed back to
        // itself is masqueraded.
        if who == "hairpin" {
            assert_eq!(got.iter().filter(|g| g.2).count(), 1, "{got:?}");
        }
    }
    // ls counts the three endpoints though no endpoint chain exists.
    let ls = json(&["ls", f, "-f", "json"]);
    assert_eq!(ls["services"][0]["endpoints"], 3, "{ls}");
}

/// A dump shows which clients session affinity has pinned: each live member of an endpoint's
/// affinity set (as the kernel listed it after a member was added) is said beside the answer.
#[test]
fn affinity_sets_say_which_clients_are_pinned() {
    let f = "fixtures/valid/nft-list-affinity-pinned-client.txt";
    let v = json(&["svc", "ns5/svc5", f, "-f", "json"]);
    let notes = notes_of(&v);
    assert!(
        notes.contains(
            &"session affinity pins client 10.0.0.7 to 10.180.0.3:80 (2h59m59s996ms left when listed)"
        ),
        "{notes:?}"
    );
    // Another Service of the same table has no pinned client to speak of.
    let v = json(&["svc", "ns1/svc1", f, "-f", "json"]);
    assert!(
        !v["notes"].to_string().contains("pins client"),
        "{}",
        v["notes"]
    );
}
