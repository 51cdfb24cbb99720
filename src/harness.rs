//! Entry points that take arbitrary bytes and run a whole pipeline on them, checking what must hold
//! whatever the input: no panic, every error renders, shares add up to 1, printing a parsed dump
//! and reading it back gives the same rules. The fuzz targets in `fuzz/` call these, and so does
//! the stable smoke test (`tests/fuzz_smoke.rs`), on mutations of the fixtures.

use crate::engine::{Engine, Entry, Packet};
use crate::model::{InputFormat, Protocol, Ruleset};
use std::net::IpAddr;

/// The first byte picks the input form (so one corpus exercises detection and every parser);
/// the rest is the input.
fn split(data: &[u8]) -> (Option<InputFormat>, Vec<u8>) {
    match data.split_first() {
        None => (None, Vec::new()),
        Some((b, rest)) => {
            let fmt = match b % 4 {
                0 => None,
                1 => Some(InputFormat::Save),
                2 => Some(InputFormat::Script),
                _ => Some(InputFormat::Listing),
            };
            (fmt, rest.to_vec())
        }
    }
}

fn read(data: &[u8]) -> Option<Ruleset> {
    let (fmt, bytes) = split(data);
    match crate::parse::read("fuzz", bytes, fmt) {
        Ok(rs) => {
            rs.parse_all();
            let late = rs.take_errors();
            if !late.is_empty() {
                let _ = format!("{:?}", crate::error::report(&rs.source, late));
                return None;
            }
            Some(rs)
        }
        Err(f) => {
            // The error must render (spans inside the text, snippets that fit).
            let _ = format!("{:?}", f.report());
            None
        }
    }
}

/// Every chain of a rule set with its policy and rules, printed: what the rules mean, whatever
/// order the chains were declared in.
fn chains(rs: &Ruleset) -> std::collections::BTreeMap<(String, String), Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    for t in &rs.tables {
        for c in &t.chains {
            let mut v = vec![format!("policy {:?}", c.policy)];
            v.extend((0..c.rules.len()).map(|i| crate::model::print::rule_spec(rs.rule(c, i))));
            out.insert((t.name.to_string(), c.name.to_string()), v);
        }
    }
    out
}

/// Parses in the form the first byte picks; the result printed in save form and read again holds
/// the same chains with the same rules.
pub fn parse(data: &[u8]) {
    let Some(rs) = read(data) else {
        return;
    };
    // The printer writes iptables-save text; nftables input has no printer to round-trip through.
    if matches!(rs.format, InputFormat::Nft | InputFormat::NftJson) {
        return;
    }
    let printed = crate::model::print::ruleset(&rs);
    if printed.trim().is_empty() {
        // Nothing but notes (a script of shell lines, say): nothing to print back.
        return;
    }
    let again = match crate::parse::read("printed", printed.clone().into_bytes(), None) {
        Ok(r) => r,
        Err(f) => panic!(
            "kptrace's own printout does not parse: {:?}\n{printed}",
            f.report()
        ),
    };
    again.parse_all();
    let late = again.take_errors();
    if !late.is_empty() {
        panic!(
            "kptrace's own printout does not parse: {:?}\n{printed}",
            crate::error::report(&again.source, late)
        );
    }
    let (before, after) = (chains(&rs), chains(&again));
    for (k, v) in &before {
        assert_eq!(
            Some(v),
            after.get(k),
            "chain {k:?} changed in print → parse"
        );
    }
    let extra: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert!(extra.is_empty(), "print → parse added chains {extra:?}");
}

/// Parses, then traces packets derived from the input through every hook, and every Service the
/// rules hold through `svc`'s probes. Shares always add up to 1.
pub fn trace(data: &[u8]) {
    let Some(rs) = read(data) else {
        return;
    };
    let node: IpAddr = "192.168.0.10".parse().unwrap();
    let eng = Engine::new(&rs, &[node]);
    let seed = data
        .iter()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(*b as u32));
    let dsts: Vec<IpAddr> = rs
        .tables
        .iter()
        .flat_map(|t| t.chains.iter().map(move |c| (t, c)))
        .flat_map(|(_, c)| (0..c.rules.len().min(4)).map(move |i| (c, i)))
        .filter_map(|(c, i)| {
            rs.rule(c, i)
                .matches
                .iter()
                .find_map(|m| match &m.criterion {
                    crate::model::Criterion::Destination(n) => Some(n.addr()),
                    _ => None,
                })
        })
        .take(8)
        .chain(std::iter::once(node))
        .collect();
    for (k, dst) in dsts.into_iter().enumerate() {
        let src: IpAddr = if dst.is_ipv6() {
            "fd00::7".parse().unwrap()
        } else {
            std::net::Ipv4Addr::from(0x0a00_0000 | (seed.rotate_left(k as u32) & 0xffff)).into()
        };
        for proto in [Protocol::Tcp, Protocol::Udp] {
            let pkt = Packet::new(src, dst, proto, (seed >> 8) as u16 | 1);
            for entry in [Entry::Prerouting, Entry::Output] {
                let t = eng.trace(&pkt, entry);
                for sum in t.world_totals(12).unwrap_or_default() {
                    assert!(
                        (sum - 1.0).abs() < 1e-6,
                        "shares sum to {sum} for {pkt:?} at {entry:?}"
                    );
                }
            }
        }
    }
    let cat = crate::kube::Catalog::build(&rs);
    let mut names: Vec<String> = cat.ports.iter().map(|p| p.display_name()).collect();
    names.truncate(4);
    for q in names {
        let (reports, _) = crate::app::svc::analyse(&rs, &q, &[node]);
        for r in &reports {
            for (p, t) in &r.probes {
                for sum in t.world_totals(12).unwrap_or_default() {
                    assert!((sum - 1.0).abs() < 1e-6, "{q}: {p:?} shares sum to {sum}");
                }
            }
        }
        let _ = crate::render::svc::json(&q, &[(&rs, reports)]);
    }
}

/// Parses, lints with every rule and renders the findings in every output format.
pub fn lint(data: &[u8]) {
    let Some(rs) = read(data) else {
        return;
    };
    let findings = crate::lint::run(&rs, &crate::lint::Options::default());
    let files = [crate::render::lint::FileFindings {
        source: rs.source.clone(),
        findings,
        notes: rs.notes.iter().map(|n| n.message.clone()).collect(),
    }];
    let mut summary = crate::render::lint::Summary::default();
    summary.count(&files[0].findings);
    let _ = crate::render::lint::human(&files, &summary);
    let _ = crate::render::lint::json(&files, &summary);
    let sarif = crate::render::lint::sarif(&files);
    assert!(serde_json::from_str::<serde_json::Value>(&sarif).is_ok());
    for collapse in [true, false] {
        let picture = crate::render::picture::Picture::ruleset(&rs, collapse);
        let _ = crate::render::dot::dot(&picture);
        let _ = crate::render::mermaid::mermaid(&picture);
    }
}
