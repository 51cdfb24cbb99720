//! Printing a model back in iptables-save form and reading it again gives the same model.

mod common;

use kptrace::model::print;
use kptrace::model::Ruleset;
use proptest::prelude::*;

fn same(a: &Ruleset, b: &Ruleset) -> Result<(), String> {
    let names = |rs: &Ruleset| {
        rs.tables
            .iter()
            .map(|t| t.name.to_string())
            .collect::<Vec<_>>()
    };
    if names(a) != names(b) {
        return Err(format!("tables {:?} vs {:?}", names(a), names(b)));
    }
    for (ta, tb) in a.tables.iter().zip(&b.tables) {
        for ca in &ta.chains {
            let cb = tb
                .chain(&ca.name)
                .ok_or(format!("chain {} lost", ca.name))?;
            if ca.policy != cb.policy || ca.rules.len() != cb.rules.len() {
                return Err(format!("chain {} differs", ca.name));
            }
            for (ra, rb) in a.rules(ca).zip(b.rules(cb)) {
                if !print::same_rule(ra, rb) || ra.counters != rb.counters {
                    return Err(format!(
                        "{} line {}: {:?}\n vs {:?}",
                        ca.name, ra.line, ra, rb
                    ));
                }
            }
        }
    }
    Ok(())
}

fn reparse(rs: &Ruleset) -> Ruleset {
    let text = print::ruleset(rs);
    match kptrace::parse::read("printed", text.clone().into_bytes(), None) {
        Ok(r) => r,
        Err(f) => panic!("{:?}\n{text}", f.report()),
    }
}

#[test]
fn every_fixture_round_trips() {
    let mut files = common::conformance_dumps();
    for dir in ["seeds", "valid"] {
        for e in std::fs::read_dir(common::fixture(dir)).unwrap() {
            let p = e.unwrap().path();
            let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
            if !matches!(ext, "sh" | "md") && !p.to_string_lossy().contains("listing") {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 40);
    for f in files {
        let rs = common::load(&f);
        // The printer writes iptables-save text: nftables input has none to round-trip through.
        if matches!(
            rs.format,
            kptrace::model::InputFormat::Nft | kptrace::model::InputFormat::NftJson
        ) {
            continue;
        }
        let again = reparse(&rs);
        if let Err(e) = same(&rs, &again) {
            panic!("{}: {e}", f.display());
        }
    }
}

fn ip() -> impl Strategy<Value = String> {
    (any::<[u8; 4]>(), 0u8..=32)
        .prop_map(|(o, l)| format!("{}.{}.{}.{}/{l}", o[0], o[1], o[2], o[3]))
}

fn criterion() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<bool>(), ip()).prop_map(|(n, a)| format!("{}-s {a}", if n { "! " } else { "" })),
        (any::<bool>(), ip()).prop_map(|(n, a)| format!("{}-d {a}", if n { "! " } else { "" })),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| format!("-p tcp -m tcp --dport {}:{}", a.min(b), a.max(b))),
        (any::<u32>(), any::<u32>()).prop_map(|(v, m)| format!("-m mark ! --mark {v:#x}/{m:#x}")),
        (0u32..=0x8000_0000).prop_map(|t| format!(
            "-m statistic --mode random --probability {:.11}",
            t as f64 / 2147483648.0
        )),
        "[a-z0-9/ :\"\\\\-]{0,40}".prop_map(|c| format!("-m comment --comment {}", print::quote(&c))),
        Just("-m addrtype --dst-type LOCAL".to_string()),
        Just("-m conntrack --ctstate NEW,ESTABLISHED".to_string()),
        Just("-m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-X --mask 255.255.255.255 --rsource".to_string()),
        Just("-m nfacct --nfacct-name some_counter".to_string()),
    ]
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-j KUBE-MARK-MASQ".to_string()),
        Just("-g KUBE-SVC-X".to_string()),
        Just("-j RETURN".to_string()),
        Just("-j REJECT --reject-with icmp-port-unreachable".to_string()),
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(o, p)| format!(
            "-j DNAT --to-destination {}.{}.{}.{}:{p}",
            o[0], o[1], o[2], o[3]
        )),
        any::<u32>().prop_map(|m| format!("-j MARK --or-mark {m:#x}")),
        Just("-j MASQUERADE --random-fully".to_string()),
    ]
}

proptest! {
    #[test]
    fn generated_rules_round_trip(rules in prop::collection::vec((prop::collection::vec(criterion(), 0..5), target()), 1..20)) {
        let mut text = String::from("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-X - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n");
        for (crits, t) in &rules {
            text += &format!("-A KUBE-SERVICES {} {t}\n", crits.join(" "));
        }
        text += "COMMIT\n";
        let rs = kptrace::parse::read("gen", text.clone().into_bytes(), None)
            .unwrap_or_else(|f| panic!("{:?}\n{text}", f.report()));
        rs.parse_all();
        prop_assert!(rs.take_errors().is_empty(), "{}", text);
        let again = reparse(&rs);
        prop_assert!(same(&rs, &again).is_ok(), "{:?}", same(&rs, &again));
    }
}
