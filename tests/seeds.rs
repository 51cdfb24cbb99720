//! The examples of the documents kptrace was created from (fixtures/seeds) trace as the kernel would.

mod common;

use kptrace::app::svc::analyse;
use kptrace::engine::state::Verdict;
use kptrace::kube::probe::From;
use kptrace::kube::{Catalog, EntryKind};
use kptrace::model::criterion::Statistic;

fn threshold(p: &str) -> f64 {
    Statistic::Random {
        threshold: kptrace::parse::value::probability(p).unwrap(),
    }
    .probability()
}

#[test]
fn seed_001_nginx_svc_is_listed_with_its_entry_points() {
    let rs = common::load(&common::fixture("seeds/001-nginx-svc.rules"));
    let cat = Catalog::build_resolved(&rs);
    assert_eq!(cat.ports.len(), 1);
    let p = &cat.ports[0];
    assert_eq!(p.service.as_deref(), Some("default/nginx-svc"));
    assert_eq!(
        p.cluster_ip(),
        Some(("192.168.249.119".parse().unwrap(), 8000))
    );
    assert_eq!(p.node_port(), Some(31080));
    assert_eq!(p.endpoints.len(), 2);
}

#[test]
fn seed_001_both_entries_reach_both_pods_at_half_and_masquerade_as_kube_proxy_does() {
    let rs = common::load(&common::fixture("seeds/001-nginx-svc.rules"));
    let (reports, _) = analyse(&rs, "default/nginx-svc", &[]);
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    for kind in [EntryKind::ClusterIp, EntryKind::NodePort] {
        for (p, t) in r
            .probes
            .iter()
            .filter(|(p, _)| p.kind == kind && p.from != From::Hairpin)
        {
            let mut dnats: Vec<(String, f64)> = t
                .outcomes
                .iter()
                .map(|o| (o.dnat.clone().unwrap(), o.probability))
                .collect();
            dnats.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(dnats.len(), 2, "{kind:?} from {:?}", p.from);
            assert_eq!(dnats[0].0, "10.254.6.217:80");
            assert_eq!(dnats[1].0, "10.254.9.148:80");
            assert!((dnats[0].1 - 0.5).abs() < 1e-12 && (dnats[1].1 - 0.5).abs() < 1e-12);
            let masq = t.outcomes.iter().all(|o| o.masquerade);
            let none = t.outcomes.iter().all(|o| !o.masquerade);
            let expected = kind == EntryKind::NodePort || p.from != From::Pod;
            assert!(
                if expected { masq } else { none },
                "{kind:?} from {:?}: masquerade should be {expected}",
                p.from
            );
            assert!(t
                .outcomes
                .iter()
                .all(|o| o.verdict == Verdict::Accept && !o.approximate));
        }
    }
    // A pod reaching itself through its Service is masqueraded (hairpin), the other pod is not.
    let (_, hairpin) = r
        .probes
        .iter()
        .find(|(p, _)| p.from == From::Hairpin)
        .unwrap();
    for o in &hairpin.outcomes {
        assert_eq!(o.masquerade, o.dnat.as_deref() == Some("10.254.6.217:80"));
    }
}

#[test]
fn seed_003_nodeport_splits_in_three_exact_shares_into_chains_not_in_the_paste() {
    let rs = common::load(&common::fixture(
        "seeds/003-nginx-demo-nodeport-session.txt",
    ));
    let (reports, _) = analyse(
        &rs,
        "default/nginx-demo-1",
        &["192.168.1.5".parse().unwrap()],
    );
    let r = &reports[0];
    let (_, t) = r
        .probes
        .iter()
        .find(|(p, _)| p.kind == EntryKind::NodePort && p.from == From::Outside)
        .unwrap();
    assert_eq!(r.port.node_port(), Some(32719));
    let p1 = threshold("0.33333333349");
    let p2 = threshold("0.50000000000");
    let want = [
        ("KUBE-SEP-HWWSIA644OJY5W7C", p1),
        ("KUBE-SEP-5Z6HLG57ALXCA2BN", (1.0 - p1) * p2),
        ("KUBE-SEP-HE7NEHV2WH3AYFZT", (1.0 - p1) * (1.0 - p2)),
    ];
    assert_eq!(t.outcomes.len(), 3);
    for (o, (chain, share)) in t.outcomes.iter().zip(want) {
        assert_eq!(o.unknown_chain.as_deref(), Some(chain));
        assert!(
            (o.probability - share).abs() < 1e-15,
            "{chain}: {} vs {share}",
            o.probability
        );
        assert!(o.approximate, "the DNAT rules are not in the paste: say so");
        assert!(o.doubts[0].reason.contains("not in the input"));
    }
    // The figures the document quotes.
    assert!((t.outcomes[0].probability - 0.33333333349).abs() < 1e-11);
    assert!((t.outcomes[1].probability - 0.333333333255).abs() < 1e-12);
    assert!((t.outcomes[2].probability - 0.333333333255).abs() < 1e-12);
}

#[test]
fn seed_000_registry_reaches_its_one_pod() {
    let rs = common::load(&common::fixture("seeds/000-registry-grep.txt"));
    let (reports, _) = analyse(&rs, "10.10.10.2:22", &[]);
    let (_, t) = reports[0]
        .probes
        .iter()
        .find(|(p, _)| p.kind == EntryKind::ClusterIp && p.from == From::Outside)
        .unwrap();
    assert_eq!(t.outcomes.len(), 1);
    assert_eq!(t.outcomes[0].dnat.as_deref(), Some("172.17.0.5:22"));
    assert_eq!(t.outcomes[0].probability, 1.0);
}

#[test]
fn seeds_000_and_002_show_a_pod_row_though_their_rules_hide_the_cluster_cidr() {
    // Neither paste holds a `! -s <CIDR>` rule: the pod client comes from the endpoints' network,
    // reaches the endpoints as the rules say, and a note says where it came from.
    for (file, query, want) in [
        (
            "seeds/000-registry-grep.txt",
            "default/registry",
            vec!["172.17.0.5:22"],
        ),
        (
            "seeds/002-clusterip-nodeport-script.sh",
            "10.100.100.1:7070",
            vec!["10.5.75.2:3000", "10.5.88.2:3000"],
        ),
    ] {
        let rs = common::load(&common::fixture(file));
        let (reports, _) = analyse(&rs, query, &[]);
        let r = &reports[0];
        let (p, t) = r
            .probes
            .iter()
            .find(|(p, _)| p.kind == EntryKind::ClusterIp && p.from == From::Pod)
            .unwrap_or_else(|| panic!("{file}: no pod row"));
        let mut got: Vec<&str> = t
            .outcomes
            .iter()
            .filter_map(|o| o.dnat.as_deref())
            .collect();
        got.sort();
        assert_eq!(got, want, "{file}: from pod {}", p.source);
        assert!(t
            .outcomes
            .iter()
            .all(|o| !o.masquerade && o.conditions.is_empty()));
        assert!(
            r.notes.iter().any(|n| n.contains("endpoints' network")),
            "{file}"
        );
    }
}

#[test]
fn outcomes_say_when_they_rest_on_assumed_hooks_and_never_for_a_whole_dump() {
    // Seed 001 is a grep: kube-proxy's hooks are assumed, and every outcome says it used them.
    let rs = common::load(&common::fixture("seeds/001-nginx-svc.rules"));
    let (reports, _) = analyse(&rs, "default/nginx-svc", &[]);
    let all: Vec<_> = reports[0]
        .probes
        .iter()
        .flat_map(|(_, t)| &t.outcomes)
        .collect();
    assert!(all.iter().all(|o| o.assumed));
    // A node's whole dump shows its hooks: nothing is assumed.
    let rs = common::load(&common::fixture("nodes/flannel-docker-libvirt-node.rules"));
    let (reports, _) = analyse(&rs, "default/web", &[]);
    let all: Vec<_> = reports[0]
        .probes
        .iter()
        .flat_map(|(_, t)| &t.outcomes)
        .collect();
    assert!(!all.is_empty());
    assert!(all
        .iter()
        .all(|o| !o.assumed && o.path.iter().all(|s| !s.assumed)));
}
