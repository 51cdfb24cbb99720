//! Cut marks in pastes (`...`, grep's `--`): rules may be missing where one stands, so an answer
//! through the gap is approximate and an answer past a chain cut at its end is not known; an
//! answer that never passes a cut stays exact.

use kptrace::engine::state::Verdict;
use kptrace::engine::{Engine, Entry, Packet};
use kptrace::model::Protocol;

fn trace(dump: &str, dst: &str) -> kptrace::engine::Trace {
    let rs = kptrace::parse::read("paste", dump.as_bytes().to_vec(), None)
        .unwrap_or_else(|f| panic!("{:?}", f.report()));
    let eng = Engine::new(&rs, &[]);
    eng.trace(
        &Packet::new(
            "10.0.0.1".parse().unwrap(),
            dst.parse().unwrap(),
            Protocol::Tcp,
            80,
        ),
        Entry::Prerouting,
    )
}

const CUT_BEFORE_RETURN: &str = "*nat
:PREROUTING ACCEPT [0:0]
:X - [0:0]
-A PREROUTING -j X
-A PREROUTING -p tcp -j DNAT --to-destination 10.1.1.1:80
-A X -d 10.9.9.9/32 -j ACCEPT
...
-A X -j RETURN
COMMIT
";

#[test]
fn a_return_after_a_cut_still_returns_and_the_answer_is_approximate() {
    let t = trace(CUT_BEFORE_RETURN, "10.2.2.2");
    assert_eq!(t.outcomes.len(), 1, "{:?}", t.outcomes);
    let o = &t.outcomes[0];
    assert_eq!(o.dnat.as_deref(), Some("10.1.1.1:80"));
    assert!(o.approximate);
    assert!(o
        .doubts
        .iter()
        .any(|d| d.reason.contains("elides rules of chain `X` at line 7")));
}

#[test]
fn an_answer_that_stops_before_the_cut_stays_exact() {
    let t = trace(CUT_BEFORE_RETURN, "10.9.9.9");
    assert_eq!(t.outcomes.len(), 1);
    assert!(!t.outcomes[0].approximate, "{:?}", t.outcomes[0].doubts);
    assert_eq!(t.outcomes[0].dnat, None);
}

#[test]
fn falling_off_a_chain_cut_at_its_end_is_not_known() {
    let dump = "*nat
:PREROUTING ACCEPT [0:0]
:X - [0:0]
-A PREROUTING -j X
-A PREROUTING -p tcp -j DNAT --to-destination 10.1.1.1:80
-A X -d 10.9.9.9/32 -j ACCEPT
...
COMMIT
";
    let t = trace(dump, "10.2.2.2");
    assert_eq!(t.outcomes.len(), 1);
    assert_eq!(t.outcomes[0].verdict, Verdict::Unknown);
    assert!(t.outcomes[0].doubts[0]
        .reason
        .contains("cuts chain `X` at line 7"));
}

#[test]
fn a_grep_that_cannot_show_the_pod_redirect_rule_makes_no_certain_drop() {
    // `grep testsvc` keeps KUBE-XLB-'s "has no local endpoints" drop but not the rule before it
    // whose comment does not name the Service ("Redirect pods trying to reach external
    // loadbalancer VIP to clusterIP"). A pod's traffic would meet that rule first on the node.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/valid/grep-xlb-without-its-pod-rule.txt"
    );
    let rs = kptrace::parse::read("grep", std::fs::read(path).unwrap(), None).unwrap();
    let (reports, _) = kptrace::app::svc::analyse(&rs, "default/testsvc", &[]);
    let r = &reports[0];
    let mut seen = 0;
    for (p, t) in &r.probes {
        if p.kind != kptrace::kube::EntryKind::NodePort {
            continue;
        }
        for o in t.outcomes.iter().filter(|o| o.verdict == Verdict::Drop) {
            seen += 1;
            assert!(o.approximate, "{p:?}: a certain drop through the gap");
            assert!(o.doubts.iter().any(|d| d.reason.contains("Redirect pods")));
        }
    }
    assert!(seen > 0);
    let text = kptrace::render::svc::human(&[(&rs, reports)], false, false);
    assert!(!text.contains("✗"), "{text}");
}
