//! kube-proxy's own expectations (fixtures/conformance, from Kubernetes' proxier tests): every packet
//! flow of the iptables test suite must give the DNAT destinations / verdict and masquerade the
//! maintainers expect. Read the corpus README for what `output` and `masq` mean.

mod common;

use kptrace::engine::{Engine, Entry, Packet};
use kptrace::model::Protocol;
use std::collections::BTreeSet;

#[derive(serde::Deserialize)]
struct Flow {
    name: String,
    protocol: String,
    source_ip: String,
    dest_ip: String,
    dest_port: u16,
    node_ip: Vec<String>,
    output: String,
    masq: bool,
}

#[test]
fn every_kube_proxy_flow_agrees() {
    let dir = common::fixture("conformance/kube-proxy-iptables");
    let mut total = 0;
    let mut failures = Vec::new();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    for case in cases {
        let flows: Vec<Flow> =
            serde_json::from_str(&std::fs::read_to_string(case.join("flows.json")).unwrap())
                .unwrap();
        if flows.is_empty() {
            continue;
        }
        let rs = common::load(&case.join("dump.txt"));
        for f in flows {
            total += 1;
            let nodes: Vec<_> = f.node_ip.iter().map(|s| s.parse().unwrap()).collect();
            let eng = Engine::new(&rs, &nodes);
            let pkt = Packet::new(
                f.source_ip.parse().unwrap(),
                f.dest_ip.parse().unwrap(),
                Protocol::parse(&f.protocol).unwrap(),
                f.dest_port,
            );
            let t = eng.trace(&pkt, Entry::Prerouting);
            let outs: Vec<_> = t.outcomes.iter().filter(|o| o.probability > 0.0).collect();
            let dnats: BTreeSet<String> = outs.iter().filter_map(|o| o.dnat.clone()).collect();
            let (got, masq) = if !dnats.is_empty() {
                (dnats, outs.iter().any(|o| o.dnat.is_some() && o.masquerade))
            } else {
                let decided: BTreeSet<String> = outs
                    .iter()
                    .filter(|o| o.verdict_rule.is_some())
                    .map(|o| o.verdict.name().to_uppercase())
                    .collect();
                (
                    if decided.is_empty() {
                        [String::new()].into()
                    } else {
                        decided
                    },
                    false,
                )
            };
            let want: BTreeSet<String> = if f.output.is_empty() {
                [String::new()].into()
            } else {
                f.output.split(',').map(|s| s.trim().to_string()).collect()
            };
            // Shares always add up to the whole.
            let sum: f64 = t.outcomes.iter().map(|o| o.probability).sum();
            assert!((sum - 1.0).abs() < 1e-9, "{}: shares sum to {sum}", f.name);
            if got != want || masq != f.masq {
                failures.push(format!(
                    "{} / {}: want {want:?} masq={}, got {got:?} masq={masq}",
                    case.file_name().unwrap().to_string_lossy(),
                    f.name,
                    f.masq
                ));
            }
        }
    }
    assert_eq!(total, 91, "the corpus holds 91 flows");
    assert!(
        failures.is_empty(),
        "{} of {total} flows disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_conformance_dump_parses_and_names_its_services() {
    for dump in common::conformance_dumps() {
        let rs = common::load(&dump);
        rs.parse_all();
        assert!(rs.take_errors().is_empty(), "{}", dump.display());
        let cat = kptrace::kube::Catalog::build_resolved(&rs);
        let text = std::fs::read_to_string(&dump).unwrap();
        // Every Service a kube-proxy comment names on a Service entry rule is listed.
        for line in text.lines() {
            for kind in [
                "cluster IP\"",
                "external IP\"",
                "loadbalancer IP\"",
                "has no endpoints\"",
            ] {
                if let Some(i) = line.find(kind) {
                    let start = line[..i].rfind("--comment \"").unwrap() + 11;
                    let name = line[start..i].split([':', ' ']).next().unwrap();
                    assert!(
                        cat.ports.iter().any(|p| p.service.as_deref() == Some(name)),
                        "{}: `{name}` not listed",
                        dump.display()
                    );
                }
            }
        }
    }
}

/// kube-proxy's nftables flows (TestClusterIPGeneral, TestLoadBalancer, TestNoEndpointsReject…),
/// through `kptrace trace` as people run it, on every form of each ruleset: the `add` form
/// kube-proxy writes (`ruleset.nft`), and what `nft list ruleset` and `nft -j list ruleset`
/// printed back after the kernel loaded it (`ruleset.list.nft`, `ruleset.json`).
#[test]
fn every_kube_proxy_nftables_flow_agrees_in_every_form() {
    let dir = common::fixture("conformance/kube-proxy-nftables");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    let (mut total, mut failures) = (0, Vec::new());
    for case in cases {
        let flows: Vec<Flow> =
            serde_json::from_str(&std::fs::read_to_string(case.join("flows.json")).unwrap())
                .unwrap();
        for form in ["ruleset.nft", "ruleset.list.nft", "ruleset.json"] {
            for f in &flows {
                total += 1;
                let mut cmd = assert_cmd::Command::cargo_bin("kptrace").unwrap();
                cmd.arg("trace")
                    .arg(case.join(form))
                    .args(["--src", &f.source_ip, "--dst", &f.dest_ip])
                    .args(["--dport", &f.dest_port.to_string(), "--proto", &f.protocol])
                    .args(["--hook", "prerouting", "--format", "json"]);
                for ip in &f.node_ip {
                    cmd.args(["--node-ip", ip]);
                }
                let out = cmd.output().unwrap();
                let t: serde_json::Value = match serde_json::from_slice(&out.stdout) {
                    Ok(v) => v,
                    Err(_) => {
                        failures.push(format!(
                            "{} [{form}] / {}: {}",
                            case.display(),
                            f.name,
                            String::from_utf8_lossy(&out.stderr)
                        ));
                        continue;
                    }
                };
                let outs: Vec<&serde_json::Value> = t["outcomes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|o| o["probability"].as_f64().unwrap() > 0.0)
                    .collect();
                let sum: f64 = outs
                    .iter()
                    .map(|o| o["probability"].as_f64().unwrap())
                    .sum();
                assert!((sum - 1.0).abs() < 1e-9, "{}: shares sum to {sum}", f.name);
                let dnats: BTreeSet<String> = outs
                    .iter()
                    .filter_map(|o| o["dnat"].as_str().map(str::to_string))
                    .collect();
                let (got, masq) = if !dnats.is_empty() {
                    let masq = outs
                        .iter()
                        .any(|o| o["dnat"].is_string() && o["masquerade"] == true);
                    (dnats, masq)
                } else {
                    let decided: BTreeSet<String> = outs
                        .iter()
                        .filter(|o| !o["verdict_rule"].is_null())
                        .map(|o| o["verdict"].as_str().unwrap().to_uppercase())
                        .collect();
                    (
                        if decided.is_empty() {
                            [String::new()].into()
                        } else {
                            decided
                        },
                        false,
                    )
                };
                let want: BTreeSet<String> = if f.output.is_empty() {
                    [String::new()].into()
                } else {
                    f.output.split(',').map(|s| s.trim().to_string()).collect()
                };
                if got != want || masq != f.masq {
                    failures.push(format!(
                        "{} [{form}] / {}: want {want:?} masq={}, got {got:?} masq={masq}",
                        case.file_name().unwrap().to_string_lossy(),
                        f.name,
                        f.masq
                    ));
                }
            }
        }
    }
    assert_eq!(total, 3 * 153, "the corpus holds 153 flows");
    assert!(
        failures.is_empty(),
        "{} of {total} flows disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// numgen shares are exact: `numgen random mod 3` gives each of three endpoints 1/3, and a
/// hand-written map that gives values 0-1 to one chain and 2 to another gives 2/3 and 1/3.
#[test]
fn numgen_shares_are_the_values_each_verdict_holds() {
    let text = r#"table ip t {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 10.96.0.1 tcp dport 80 numgen random mod 3 vmap { 0-1 : goto a, 2 : goto b }
		ip daddr 10.96.0.2 tcp dport 80 numgen random mod 4 vmap { 0 : goto a, 1 : goto b }
	}
	chain a {
		meta l4proto tcp dnat to 10.1.0.1:80
	}
	chain b {
		meta l4proto tcp dnat to 10.1.0.2:80
	}
}
"#;
    let rs = kptrace::parse::read("t.nft", text.as_bytes().to_vec(), None).unwrap();
    let eng = Engine::new(&rs, &["192.168.0.2".parse().unwrap()]);
    let share = |dst: &str| {
        let pkt = Packet::new(
            "203.0.113.9".parse().unwrap(),
            dst.parse().unwrap(),
            Protocol::Tcp,
            80,
        );
        let t = eng.trace(&pkt, Entry::Prerouting);
        let mut v: Vec<(Option<String>, f64)> = t
            .outcomes
            .iter()
            .map(|o| (o.dnat.clone(), o.probability))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(
        share("10.96.0.1"),
        vec![
            (Some("10.1.0.1:80".into()), 2.0 / 3.0),
            (Some("10.1.0.2:80".into()), 1.0 / 3.0)
        ]
    );
    // Values 2 and 3 map to nothing: half the connections go on unchanged.
    assert_eq!(
        share("10.96.0.2"),
        vec![
            (None, 0.5),
            (Some("10.1.0.1:80".into()), 0.25),
            (Some("10.1.0.2:80".into()), 0.25)
        ]
    );
}
