//! `iptables -L` listings: columns and trailing text read back into the same model a dump gives.

mod common;

use kptrace::engine::{Engine, Entry, Packet};
use kptrace::model::{InputFormat, Protocol};

fn kernel(p: f64) -> f64 {
    (p * 2147483648.0).round() / 2147483648.0
}

#[test]
fn seed_004_listing_traces() {
    let rs = common::load(&common::fixture("seeds/004-testsvc-lb-listing.txt"));
    assert_eq!(rs.format, InputFormat::Listing);
    assert!(rs.table("nat").is_some());
    let (reports, _) =
        kptrace::app::svc::analyse(&rs, "default/testsvc", &["192.168.1.5".parse().unwrap()]);
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r.port.endpoints.len(), 7);
    // From a pod to the cluster IP: seven endpoint chains, shares from the printed probabilities.
    let (_, t) = r
        .probes
        .iter()
        .find(|(p, _)| {
            p.from == kptrace::kube::probe::From::Pod
                && p.kind == kptrace::kube::EntryKind::ClusterIp
        })
        .unwrap();
    let printed = [
        0.14286000002,
        0.16667000018,
        0.20000000019,
        0.25,
        0.33332999982,
        0.5,
    ];
    let mut rest = 1.0;
    let mut want = Vec::new();
    for p in printed {
        want.push(rest * kernel(p));
        rest *= 1.0 - kernel(p);
    }
    want.push(rest);
    let got: Vec<f64> = t.outcomes.iter().map(|o| o.probability).collect();
    assert_eq!(got.len(), 7);
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
    }
    assert_eq!(t.outcomes[6].dnat.as_deref(), Some("172.31.9.52:80"));
    // From outside to the load balancer: externalTrafficPolicy Local without local endpoints.
    let (_, t) = r
        .probes
        .iter()
        .find(|(p, _)| {
            p.from == kptrace::kube::probe::From::Outside
                && p.kind == kptrace::kube::EntryKind::LoadBalancer
        })
        .unwrap();
    // KUBE-MARK-DROP only marks; the filter rule that drops marked packets (kubelet's, in the
    // filter table this nat listing does not show) decides. Two worlds, each whole, no guess.
    assert_eq!(t.outcomes.len(), 2, "{:#?}", t.outcomes);
    for o in &t.outcomes {
        assert_eq!(o.probability, 1.0);
        assert_eq!(o.conditions.len(), 1);
        assert!(o.conditions[0].text.contains("KUBE-FIREWALL"));
        let dropped = o.verdict == kptrace::engine::state::Verdict::Drop;
        assert_eq!(dropped, o.conditions[0].holds);
        assert_eq!(o.dnat, None);
    }
    assert!(rs.notes.iter().any(|n| n.message.contains("without -v")));
}

#[test]
fn verbose_listing_keeps_interfaces_and_counters() {
    let rs = common::load(&common::fixture("valid/listing-verbose.txt"));
    assert_eq!(rs.format, InputFormat::Listing);
    let svc = rs.chain("nat", "KUBE-SVC-A").unwrap();
    let counts: Vec<u64> = rs.rules(svc).map(|r| r.counters.unwrap().packets).collect();
    assert_eq!(counts, vec![10, 12, 8]);
    let sep = rs.chain("nat", "KUBE-SEP-1").unwrap();
    let dnat = kptrace::model::print::rule_spec(rs.rule(sep, 1));
    assert!(
        dnat.contains("-i eth0") && dnat.contains("--to-destination 10.244.0.2:53"),
        "{dnat}"
    );
    assert!(!rs.notes.iter().any(|n| n.message.contains("without -v")));
    let eng = Engine::new(&rs, &[]);
    let mut pkt = Packet::new(
        "10.0.0.7".parse().unwrap(),
        "10.96.0.10".parse().unwrap(),
        Protocol::Tcp,
        53,
    );
    pkt.in_iface = Some("eth0".into());
    let t = eng.trace(&pkt, Entry::Prerouting);
    let dests: Vec<&str> = t
        .outcomes
        .iter()
        .filter_map(|o| o.dnat.as_deref())
        .collect();
    assert_eq!(
        dests,
        vec!["10.244.0.2:53", "10.244.0.3:53", "10.244.0.4:53"]
    );
}

#[test]
fn a_listing_and_the_dump_of_the_same_rules_agree() {
    // The same Service as a dump and as a listing: same endpoints, same shares.
    let listing = common::load(&common::fixture("valid/listing-verbose.txt"));
    let dump = kptrace::model::print::ruleset(&listing);
    let again = kptrace::parse::read("dump", dump.into_bytes(), None).unwrap();
    let trace = |rs: &kptrace::model::Ruleset| {
        let eng = Engine::new(rs, &[]);
        let mut pkt = Packet::new(
            "10.0.0.7".parse().unwrap(),
            "10.96.0.10".parse().unwrap(),
            Protocol::Tcp,
            53,
        );
        pkt.in_iface = Some("eth0".into());
        eng.trace(&pkt, Entry::Prerouting)
            .outcomes
            .iter()
            .map(|o| (o.dnat.clone(), o.probability))
            .collect::<Vec<_>>()
    };
    assert_eq!(trace(&listing), trace(&again));
}

/// Traces a packet from a Docker container to the outside through `listing` (nat table only).
fn container_to_outside(listing: &str) -> kptrace::engine::Trace {
    let rs = kptrace::parse::read("paste", listing.as_bytes().to_vec(), None).unwrap();
    let eng = Engine::new(&rs, &["192.168.1.5".parse().unwrap()]);
    let mut pkt = Packet::new(
        "172.17.0.2".parse().unwrap(),
        "93.184.216.34".parse().unwrap(),
        Protocol::Tcp,
        443,
    );
    pkt.in_iface = Some("docker0".into());
    pkt.out_iface = Some("eth0".into());
    eng.trace(&pkt, Entry::Prerouting)
}

#[test]
fn interfaces_a_plain_listing_hides_are_unknown_not_any() {
    // Docker's `-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE`, listed without -v:
    // the `! -o docker0` is gone, so whether the rule matches cannot be known.
    let plain = "\
$ iptables -t nat -L -n
Chain POSTROUTING (policy ACCEPT)
target     prot opt source               destination
MASQUERADE  all  --  172.17.0.0/16        0.0.0.0/0
";
    let t = container_to_outside(plain);
    assert!(t.outcomes.iter().any(|o| o.masquerade));
    assert!(t.outcomes.iter().any(|o| !o.masquerade));
    // Not a coin flip: each outcome holds under one answer to what the listing hides, at full share.
    assert!(t.outcomes.iter().all(|o| o.conditions.len() == 1));
    assert!(t.outcomes.iter().all(|o| o.probability == 1.0));
    assert!(t
        .outcomes
        .iter()
        .all(|o| o.conditions[0].text.contains("does not show interfaces")));
    // The same rule listed with -v is decided.
    let verbose = "\
$ iptables -t nat -L -n -v
Chain POSTROUTING (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination
    0     0 MASQUERADE  all  --  *      !docker0  172.17.0.0/16        0.0.0.0/0
";
    let t = container_to_outside(verbose);
    assert_eq!(t.outcomes.len(), 1);
    assert!(t.outcomes[0].masquerade && !t.outcomes[0].approximate);
}

#[test]
fn kube_proxy_rules_in_a_plain_listing_stay_decided() {
    // kube-proxy writes interfaces only for its interface-based local-traffic detector: a
    // masquerade rule with a `! -s <cluster CIDR>` source and the endpoint rules are exact.
    let rs = common::load(&common::fixture("seeds/004-testsvc-lb-listing.txt"));
    let (reports, _) =
        kptrace::app::svc::analyse(&rs, "default/testsvc", &["192.168.1.5".parse().unwrap()]);
    for (p, t) in &reports[0].probes {
        if p.kind == kptrace::kube::EntryKind::ClusterIp {
            let hidden = t.outcomes.iter().flat_map(|o| o.doubts.iter());
            assert!(
                hidden
                    .clone()
                    .all(|d| !d.reason.contains("does not show interfaces")),
                "{p:?}: {:?}",
                hidden.collect::<Vec<_>>()
            );
        }
    }
    // The masquerade-everything-off-cluster rule without a source could be the detector.
    let detector = "\
$ iptables -t nat -L -n
Chain KUBE-SVC-X (1 references)
target     prot opt source               destination
KUBE-MARK-MASQ  tcp  --  0.0.0.0/0            10.96.0.1            /* default/kubernetes:https cluster IP */ tcp dpt:443
";
    let rs = kptrace::parse::read("paste", detector.as_bytes().to_vec(), None).unwrap();
    let r = rs.table("nat").unwrap();
    let c = r.get(r.id("KUBE-SVC-X").unwrap());
    let rule = c.rules[0].get().unwrap();
    assert!(rule
        .matches
        .iter()
        .any(|m| matches!(m.criterion, kptrace::model::Criterion::Hidden(_))));
}
