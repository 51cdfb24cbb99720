//! Properties of the tracer over generated rule sets: the shares of every outcome add up to 1
//! (drops, returns and fall-throughs included), jump cycles are named correctly and end the walk,
//! and a chain of jumps of any depth is followed to its end, once per chain.

mod common;

use kptrace::engine::{Engine, Entry, Packet};
use kptrace::model::Protocol;
use proptest::prelude::*;

fn load(text: &str) -> kptrace::model::Ruleset {
    match kptrace::parse::read("generated", text.as_bytes().to_vec(), None) {
        Ok(rs) => rs,
        Err(f) => panic!("{:?}\n{text}", f.report()),
    }
}

fn trace(rs: &kptrace::model::Ruleset, src: &str, dport: u16) -> kptrace::engine::Trace {
    let eng = Engine::new(rs, &["192.168.0.10".parse().unwrap()]);
    let pkt = Packet::new(
        src.parse().unwrap(),
        "10.96.0.1".parse().unwrap(),
        Protocol::Tcp,
        dport,
    );
    eng.trace(&pkt, Entry::Prerouting)
}

fn sum(t: &kptrace::engine::Trace) -> f64 {
    t.outcomes.iter().map(|o| o.probability).sum()
}

/// One rule of a generated Service chain.
#[derive(Clone, Debug)]
enum Step {
    /// `-m statistic --probability p -j <endpoint>`
    Branch(f64),
    /// The same, only for one source network (a rule that may or may not match this packet).
    Conditional(f64, bool),
    Drop,
    Return,
    /// A rule without a target: counts and goes on.
    Count,
    /// The last, unconditional endpoint.
    Last,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0.0f64..=1.0).prop_map(Step::Branch),
        2 => ((0.0f64..=1.0), any::<bool>()).prop_map(|(p, m)| Step::Conditional(p, m)),
        1 => Just(Step::Drop),
        1 => Just(Step::Return),
        1 => Just(Step::Count),
        1 => Just(Step::Last),
    ]
}

fn service(steps: &[Step]) -> String {
    let mut s = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KUBE-SVC-X - [0:0]\n",
    );
    for i in 0..steps.len() {
        s += &format!(":KUBE-SEP-{i} - [0:0]\n");
    }
    s += "-A PREROUTING -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X\n";
    for (i, st) in steps.iter().enumerate() {
        let sep = format!("KUBE-SEP-{i}");
        s += &match st {
            Step::Branch(p) => {
                format!("-A KUBE-SVC-X -m statistic --mode random --probability {p:.11} -j {sep}\n")
            }
            Step::Conditional(p, mine) => format!(
                "-A KUBE-SVC-X -s {} -m statistic --mode random --probability {p:.11} -j {sep}\n",
                if *mine { "10.0.0.0/8" } else { "172.16.0.0/12" }
            ),
            Step::Drop => "-A KUBE-SVC-X -p tcp -j DROP\n".into(),
            Step::Return => "-A KUBE-SVC-X -j RETURN\n".into(),
            Step::Count => "-A KUBE-SVC-X -p tcp\n".into(),
            Step::Last => format!("-A KUBE-SVC-X -j {sep}\n"),
        };
        s += &format!(
            "-A {sep} -p tcp -m tcp -j DNAT --to-destination 10.244.0.{}:80\n",
            i + 1
        );
    }
    s += "COMMIT\n";
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn shares_of_a_service_always_add_up_to_one(steps in prop::collection::vec(step(), 1..40)) {
        let rs = load(&service(&steps));
        for src in ["10.1.2.3", "172.16.5.5", "192.168.7.7"] {
            let t = trace(&rs, src, 80);
            prop_assert!((sum(&t) - 1.0).abs() < 1e-9, "{src}: {}", sum(&t));
            // Each endpoint's share is never more than the share that reached its rule.
            for o in &t.outcomes {
                prop_assert!(o.probability >= 0.0 && o.probability <= 1.0 + 1e-12);
            }
        }
        // A packet the Service does not match is untouched, with all of the share.
        let t = trace(&rs, "10.1.2.3", 81);
        prop_assert_eq!(t.outcomes.len(), 1);
        prop_assert!(t.outcomes[0].dnat.is_none());
    }

    #[test]
    fn jump_cycles_end_the_walk_and_name_a_real_cycle(
        edges in prop::collection::vec((0usize..8, 0usize..8, any::<bool>(), any::<bool>()), 1..24),
    ) {
        let mut s = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n");
        for c in 0..8 {
            s += &format!(":C{c} - [0:0]\n");
        }
        s += "-A PREROUTING -j C0\n";
        for (from, to, goto, conditional) in &edges {
            let cond = if *conditional { "-m statistic --mode random --probability 0.5 " } else { "" };
            let verb = if *goto { "-g" } else { "-j" };
            s += &format!("-A C{from} {cond}{verb} C{to}\n");
        }
        s += "COMMIT\n";
        let rs = load(&s);
        let t = trace(&rs, "10.1.2.3", 80);
        prop_assert!((sum(&t) - 1.0).abs() < 1e-9);
        let graph = kptrace::graph::ChainGraph::build(&rs);
        let cyclic: Vec<Vec<String>> = graph
            .cycles()
            .into_iter()
            .map(|c| {
                c.into_iter()
                    .map(|r| rs.tables[r.table].get(r.chain).name.to_string())
                    .collect()
            })
            .collect();
        for o in &t.outcomes {
            for d in &o.doubts {
                if let Some(rest) = d.reason.strip_prefix("jump cycle ") {
                    let names: Vec<&str> = rest.split(':').next().unwrap().split(" → ").collect();
                    prop_assert_eq!(names.first(), names.last());
                    // Every chain of the reported loop is in one strongly connected group.
                    prop_assert!(
                        cyclic.iter().any(|g| names.iter().all(|n| g.iter().any(|x| x == n))),
                        "{:?} not in {:?}", names, cyclic
                    );
                }
            }
        }
        if cyclic.is_empty() {
            prop_assert!(t.outcomes.iter().all(|o| o.doubts.is_empty()));
        }
    }

    #[test]
    fn a_chain_of_jumps_of_any_depth_is_followed_once_per_chain(depth in 1usize..3000) {
        let s = common::deep_chain(depth);
        let t = trace(&load(&s), "10.1.2.3", 80);
        prop_assert_eq!(t.outcomes.len(), 1);
        prop_assert_eq!(t.outcomes[0].dnat.as_deref(), Some("10.1.1.1:80"));
        let nat_steps = t.outcomes[0].path.iter().filter(|p| p.table == "nat" && p.chain != "POSTROUTING").count();
        prop_assert_eq!(nat_steps, depth + 1);
    }
}
