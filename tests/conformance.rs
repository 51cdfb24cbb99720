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
