//! kube-proxy's, kubelet's (and flannel's) rules that show without the mark match they are always written with.
//!
//! An `iptables` older than the one that wrote the rules (kube-proxy's image ships its own) cannot
//! read back some matches the newer one stored natively in nftables, and prints the rule without
//! them: `KUBE-POSTROUTING`'s `-m mark ! --mark 0x4000/0x4000 -j RETURN` lists as a bare `RETURN`.
//! The kernel may still hold the match; a dump taken with that binary and restored does not. Rules
//! that would follow from the bare rule (nothing masqueraded, the rest of the chain unreachable)
//! are reported once, as that, instead of as each consequence.

use crate::model::criterion::Criterion;
use crate::model::{Rule, TargetKind};

/// The match kube-proxy or kubelet writes on rule `i` of chain `chain` that the rule shows
/// without, if it is one of theirs and lacks it.
pub fn lost_match(chain: &str, rules: &[&Rule], i: usize) -> Option<&'static str> {
    let rule = rules[i];
    let has_mark = rule
        .matches
        .iter()
        .any(|m| matches!(m.criterion, Criterion::Mark { .. }));
    if has_mark || !rule.is_unconditional() {
        return None;
    }
    let comment = rule.comment().unwrap_or("");
    match (chain, rule.target_kind()?) {
        // Since 1.20: `! --mark 0x4000/0x4000 -j RETURN`, then clear the bit, then MASQUERADE.
        ("KUBE-POSTROUTING", TargetKind::Return) => rules[i + 1..]
            .iter()
            .any(|r| {
                matches!(
                    r.target_kind(),
                    Some(TargetKind::Mark(_) | TargetKind::Masquerade { .. })
                )
            })
            .then_some("-m mark ! --mark 0x4000/0x4000"),
        // Before 1.20 the MASQUERADE itself tested the bit, with no RETURN before it.
        ("KUBE-POSTROUTING", TargetKind::Masquerade { .. })
            if comment.contains("requiring SNAT")
                && !rules[..i]
                    .iter()
                    .any(|r| matches!(r.target_kind(), Some(TargetKind::Return))) =>
        {
            Some("-m mark --mark 0x4000/0x4000")
        }
        ("KUBE-FORWARD", TargetKind::Accept) if comment == "kubernetes forwarding rules" => {
            Some("-m mark --mark 0x4000/0x4000")
        }
        // flannel's first masquerade rule skips what kube-proxy will masquerade.
        ("FLANNEL-POSTRTG", TargetKind::Return) if i == 0 && comment == "flanneld masq" => {
            Some("-m mark --mark 0x4000/0x4000")
        }
        ("KUBE-FIREWALL", TargetKind::Drop) if comment.contains("dropping marked packets") => {
            Some("-m mark --mark 0x8000/0x8000")
        }
        _ => None,
    }
}
