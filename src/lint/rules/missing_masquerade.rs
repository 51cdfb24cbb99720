//! # missing-masquerade
//!
//! ## What it flags
//! Packets get kube-proxy's masquerade mark (a jump to `KUBE-MARK-MASQ`, which sets `0x4000`), but
//! nothing in nat `POSTROUTING` masquerades packets that carry it: `KUBE-POSTROUTING` is missing or
//! not hooked from `POSTROUTING`, or it tests another bit than the one that was set (set `0x4000`,
//! tested `0x8000`), or tests it without the mask (`--mark 0x4000` matches only when no other bit is set).
//!
//! ## Why it matters
//! The mark is how kube-proxy asks for SNAT: for NodePort traffic, traffic from outside the cluster
//! CIDR, and hairpin traffic. Without the MASQUERADE, the endpoint answers the client directly with
//! its own address; the client drops the reply and the connection hangs.
//!
//! ## Example
//! ```text
//! -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
//! -A KUBE-POSTROUTING -m mark --mark 0x8000/0x8000 -j MASQUERADE
//! ```
//!
//! ## Fix
//! Make `KUBE-POSTROUTING` test the bit `KUBE-MARK-MASQ` sets (kube-proxy's `--iptables-masquerade-bit`
//! and kubelet's must agree), and hook it: `-A POSTROUTING -m comment --comment "kubernetes
//! postrouting rules" -j KUBE-POSTROUTING`.

use super::prelude::*;
use crate::engine::Engine;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub struct MissingMasquerade;

static META: Meta = Meta {
    name: "missing-masquerade",
    code: "KP001",
    severity: Severity::Error,
    summary: "the masquerade mark is set but POSTROUTING never masquerades it",
    source: include_str!("missing_masquerade.rs"),
    scoped: false,
};

impl Rule for MissingMasquerade {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let Some(nat) = cx.table("nat") else { return };
        // KUBE-POSTROUTING shown without its mark match: `iptables-version-skew` says what that
        // means, once.
        if let Some(post) = nat.chain("KUBE-POSTROUTING") {
            let rules: Vec<&IptRule> = cx.rules(post).collect();
            if (0..rules.len()).any(|i| {
                crate::lint::lost_match::lost_match("KUBE-POSTROUTING", &rules, i).is_some()
            }) {
                return;
            }
        }
        let v6 = cx.rs.family == crate::model::Family::Ipv6;
        let (src, dst): (IpAddr, IpAddr) = if v6 {
            (
                Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).into(),
                Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 1).into(),
            )
        } else {
            (
                Ipv4Addr::new(198, 18, 0, 1).into(),
                Ipv4Addr::new(198, 19, 0, 1).into(),
            )
        };
        let mut eng = Engine::new(cx.rs, &[]);
        if cx.opts.uplink.is_some() {
            eng.set_routes(Vec::new(), cx.opts.uplink.clone());
        }
        let unmarked = eng.postrouting_masquerade_share(0, src, dst);
        for chain in nat.chains.iter().filter(|c| c.name.contains("MARK-MASQ")) {
            let Some(cref) = cx.chain_ref("nat", &chain.name) else {
                continue;
            };
            // Nothing asks for masquerading (no Service needs it): not a problem.
            let Some(caller) = cx.graph.callers(cref).next() else {
                continue;
            };
            for (i, rule) in cx.rules(chain).enumerate() {
                let Some(TargetKind::Mark(op)) = rule.target_kind() else {
                    continue;
                };
                let mark = op.apply(0);
                let share = eng.postrouting_masquerade_share(mark, src, dst);
                if share >= 1.0 - 1e-12 || unmarked >= 1.0 - 1e-12 {
                    continue;
                }
                let (_, caller_chain) = cx.chain_of(caller);
                let (hit, first) = cx.hit_entries();
                let mut message = format!(
                    "`{}` sets mark {mark:#x}, but nat POSTROUTING masquerades {} of the packets that carry it",
                    chain.name,
                    if share == 0.0 { "none".to_string() } else { crate::model::share::share(share) }
                );
                if let Some(hit) = hit {
                    message += &format!(": {hit}: replies never reach clients outside the cluster");
                }
                let mut f = Finding::new(&META, message)
                    .at(chain.rules[i].span, format!("sets {mark:#x}"))
                    .in_chain("nat", &chain.name)
                    .service(first)
                    .help(fix(cx, mark));
                if let Some(tester) = mark_tester(cx) {
                    f = f.because(tester.0, tester.1);
                } else if let Some(first) = caller_chain.rules.first() {
                    f = f.because(first.span, "packets are marked from here");
                }
                out.push(f);
            }
        }
    }
}

/// What is missing between the mark and the MASQUERADE, for the help: the chain, its hook, the
/// test of the right bit, or the MASQUERADE rule; or else something before it changes the mark.
fn fix(cx: &Context, mark: u32) -> String {
    let nat = cx.table("nat");
    let Some(post) = nat.and_then(|n| n.chain("KUBE-POSTROUTING")) else {
        return "add kube-proxy's `KUBE-POSTROUTING` (`-m mark ! --mark 0x4000/0x4000 -j RETURN`, `-j MARK --xor-mark 0x4000`, `-j MASQUERADE`) and hook it from nat POSTROUTING".into();
    };
    let hooked = cx
        .chain_ref("nat", "KUBE-POSTROUTING")
        .is_some_and(|r| cx.graph.callers(r).next().is_some())
        || nat.is_some_and(|n| !n.shows_builtin("POSTROUTING"));
    if !hooked {
        return "hook KUBE-POSTROUTING: `-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING`".into();
    }
    let rules: Vec<&IptRule> = cx.rules(post).collect();
    let tests = rules.iter().any(|r| {
        r.conditions().any(|m| matches!(m.criterion, Criterion::Mark { value, mask } if mask & mark != 0 && (value & mark == mark || m.negated)))
    });
    if !tests {
        return format!("make KUBE-POSTROUTING test the bit this rule sets: `-m mark ! --mark {mark:#x}/{mark:#x} -j RETURN` (kube-proxy's and kubelet's masquerade bits must agree)");
    }
    if !rules.iter().any(|r| {
        matches!(
            r.target_kind(),
            Some(TargetKind::Masquerade { .. } | TargetKind::Snat { .. })
        )
    }) {
        return "KUBE-POSTROUTING tests the bit but has no MASQUERADE: add `-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE` at its end".into();
    }
    "a rule before KUBE-POSTROUTING changes the mark or ends the packet's way there (see mark-collision and unreachable-rule)".into()
}

/// The POSTROUTING-side rule that tests a mark, to show beside the one that sets it.
fn mark_tester(cx: &Context) -> Option<(crate::model::Span, String)> {
    let nat = cx.table("nat")?;
    let post = nat.chain("KUBE-POSTROUTING")?;
    for (i, rule) in cx.rules(post).enumerate() {
        for m in rule.conditions() {
            if let Criterion::Mark { value, mask } = m.criterion {
                return Some((post.rules[i].span, format!("tests {value:#x}/{mask:#x}")));
            }
        }
    }
    None
}
