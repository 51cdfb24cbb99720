//! `iptables` command scripts: commands applied in order, as iptables applies them.

mod common;

use kptrace::engine::{Engine, Entry, Packet};
use kptrace::model::{InputFormat, Policy, Protocol};

#[test]
fn script_edits_apply_in_order() {
    let rs = common::load(&common::fixture("valid/script-edits.sh"));
    assert_eq!(rs.format, InputFormat::Script);
    let svc = rs.chain("nat", "SVC").unwrap();
    let rules: Vec<String> = rs
        .rules(svc)
        .map(kptrace::model::print::rule_spec)
        .collect();
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert!(
        rules[0].contains("10.0.0.1:80") && rules[0].contains("--probability"),
        "{rules:?}"
    );
    assert!(
        rules[1].contains("10.0.0.4:80"),
        "-R replaced the last rule: {rules:?}"
    );
    assert_eq!(
        rs.chain("nat", "OUTPUT").unwrap().rules.len(),
        0,
        "-D by spec"
    );
    assert_eq!(
        rs.chain("nat", "PREROUTING").unwrap().rules.len(),
        1,
        "continued line"
    );
    assert!(rs.chain("filter", "TEMP").is_none(), "-X");
    assert_eq!(
        rs.chain("filter", "FORWARD").unwrap().policy,
        Some(Policy::Drop)
    );
    assert!(
        rs.notes.iter().any(|n| n
            .message
            .contains("skipped 2 lines that are not iptables commands")),
        "{:?}",
        rs.notes
    );
    // The continued rule points at the user's own lines.
    let pre = rs.chain("nat", "PREROUTING").unwrap();
    assert_eq!(rs.rule(pre, 0).line, 9);
    let eng = Engine::new(&rs, &[]);
    let t = eng.trace(
        &Packet::new(
            "10.0.0.50".parse().unwrap(),
            "10.96.0.1".parse().unwrap(),
            Protocol::Tcp,
            80,
        ),
        Entry::Prerouting,
    );
    let shares: Vec<(String, f64)> = t
        .outcomes
        .iter()
        .map(|o| (o.dnat.clone().unwrap(), o.probability))
        .collect();
    assert_eq!(
        shares,
        vec![("10.0.0.1:80".into(), 0.5), ("10.0.0.4:80".into(), 0.5)]
    );
}

#[test]
fn seed_002_script_traces() {
    let rs = common::load(&common::fixture("seeds/002-clusterip-nodeport-script.sh"));
    assert_eq!(rs.format, InputFormat::Script);
    let (reports, _) =
        kptrace::app::svc::analyse(&rs, "10.100.100.1:7070", &["192.168.1.6".parse().unwrap()]);
    assert_eq!(reports.len(), 1);
    for (probe, t) in &reports[0].probes {
        let dests: Vec<(String, f64)> = t
            .outcomes
            .iter()
            .map(|o| (o.dnat.clone().unwrap_or_default(), o.probability))
            .collect();
        assert_eq!(
            dests,
            vec![
                ("10.5.75.2:3000".into(), 0.5),
                ("10.5.88.2:3000".into(), 0.5)
            ],
            "{probe:?}"
        );
        // The node's own traffic is masqueraded by the hand-written `-I POSTROUTING 1 -s 192.168.1.6`.
        if probe.source == "192.168.1.6".parse::<std::net::IpAddr>().unwrap() {
            assert!(t.outcomes.iter().all(|o| o.masquerade));
        }
    }
}

#[test]
fn a_failing_command_is_an_error_at_its_line() {
    let text = "iptables -t nat -A NOPE -j ACCEPT\n";
    let err = kptrace::parse::read("s.sh", text.as_bytes().to_vec(), None)
        .err()
        .unwrap();
    assert_eq!(err.errors.len(), 1);
    let (line, col) = err.source.line_col(err.errors[0].span.start);
    assert_eq!((line, col), (1, 20));
}

#[test]
fn a_script_that_keeps_iptables_in_a_variable_reads_like_one_that_names_it() {
    let with_var = "#!/bin/sh\nIPT=/sbin/iptables\n$IPT -t nat -N KUBE-SERVICES\n${IPT} -t nat -A PREROUTING -j KUBE-SERVICES\n\"$IPT\" -P FORWARD DROP\n";
    let plain = "iptables -t nat -N KUBE-SERVICES\niptables -t nat -A PREROUTING -j KUBE-SERVICES\niptables -P FORWARD DROP\n";
    let read = |s: &str| {
        let rs = kptrace::parse::read("s", s.as_bytes().to_vec(), None)
            .unwrap_or_else(|f| panic!("{:?}", f.report()));
        kptrace::model::print::ruleset(&rs)
    };
    assert_eq!(read(with_var), read(plain));
    assert!(read(with_var).contains(":FORWARD DROP"));
}
