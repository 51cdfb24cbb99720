//! # unreachable-rule
//!
//! ## What it flags
//! A rule no packet can reach, because an earlier rule of the same chain matches every packet and
//! ends the chain: an unconditional `ACCEPT`, `DROP`, `REJECT`, `RETURN`, `DNAT`, goto, or a jump to
//! a chain that always ends the traversal itself.
//!
//! ## Why it matters
//! The rule looks active but never is: an endpoint that never gets traffic, a drop that never drops.
//! It usually means rules were appended (`-A`) where they needed inserting (`-I`).
//!
//! ## Example
//! ```text
//! -A KUBE-SVC-X -j KUBE-SEP-A
//! -A KUBE-SVC-X -j KUBE-SEP-B        <- never reached
//! ```
//!
//! ## Fix
//! Move the rule before the one that shadows it, or give the earlier rule a condition. kube-proxy's
//! legacy `KUBE-FW-` chains end in a `-j KUBE-MARK-DROP` that is unreachable when the load balancer
//! has no source ranges; that pattern is not reported.

use super::prelude::*;
use crate::model::Chain;
use rustc_hash::FxHashMap;

pub struct UnreachableRule;

static META: Meta = Meta {
    name: "unreachable-rule",
    code: "KP006",
    severity: Severity::Warning,
    summary: "a rule shadowed by an earlier rule that matches everything and ends the chain",
    source: include_str!("unreachable_rule.rs"),
    scoped: true,
};

/// Whether every packet entering `chain` leaves the traversal in it (never falls off its end or
/// returns), memoised per chain; `depth` stops runaway recursion on loops.
fn always_ends<'a>(
    cx: &ChainContext<'a>,
    chain: &'a Chain,
    memo: &mut FxHashMap<*const Chain, bool>,
    depth: usize,
) -> bool {
    let key = chain as *const Chain;
    if let Some(&v) = memo.get(&key) {
        return v;
    }
    if depth > 32 {
        return false;
    }
    memo.insert(key, false);
    let mut ends = false;
    let rules = cx.rules_of(chain);
    let all: Vec<&IptRule> = rules.iter().map(|r| &**r).collect();
    for (i, rule) in rules.iter().enumerate() {
        // kube-proxy's rule shown without its mark match: conditional in the kernel.
        let lost = crate::lint::lost_match::lost_match(&chain.name, &all, i).is_some();
        // A RETURN or goto that some packets take leaves this chain for its caller: the chain
        // does not end every packet's traversal (KUBE-POSTROUTING's first rule, ufw-not-local).
        let leaves = matches!(rule.target_kind(), Some(TargetKind::Return))
            || rule.target.as_ref().is_some_and(|t| t.goto);
        if lost || !rule.is_unconditional() {
            if leaves {
                break;
            }
            continue;
        }
        // An unconditional goto ends this chain, but where the target falls off its end the
        // packet returns to this chain's caller: it ends every packet only if the target does.
        if let Some(t) = rule.target.as_ref().filter(|t| t.goto) {
            if let TargetKind::Chain(name) = &t.kind {
                ends = cx
                    .table
                    .chain(name)
                    .is_some_and(|c| always_ends(cx, c, memo, depth + 1));
            }
            break;
        }
        if ends_here(cx, rule, memo, depth) {
            ends = true;
            break;
        }
        if matches!(rule.target_kind(), Some(TargetKind::Return)) {
            break;
        }
    }
    memo.insert(key, ends);
    ends
}

/// Whether `rule` ends the traversal of every packet it matches. Reads the chains it jumps to:
/// rarely more than one, as an unconditional jump before a chain's last rule is rare.
fn ends_here<'a>(
    cx: &ChainContext<'a>,
    rule: &IptRule,
    memo: &mut FxHashMap<*const Chain, bool>,
    depth: usize,
) -> bool {
    let Some(t) = &rule.target else { return false };
    match &t.kind {
        TargetKind::Accept
        | TargetKind::Drop
        | TargetKind::Reject { .. }
        | TargetKind::Dnat { .. }
        | TargetKind::Snat { .. }
        | TargetKind::Masquerade { .. }
        | TargetKind::Redirect { .. } => true,
        TargetKind::Chain(name) => {
            // A goto never comes back to this chain, whatever the target does.
            t.goto
                || cx
                    .table
                    .chain(name)
                    .is_some_and(|c| c.rules.count() > 0 && always_ends(cx, c, memo, depth + 1))
        }
        _ => false,
    }
}

impl Rule for UnreachableRule {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check_chain(&self, cx: &ChainContext, out: &mut Vec<Finding>) {
        let mut memo = FxHashMap::default();
        let chain = cx.chain;
        let n = cx.rules.len();
        let all: Vec<&IptRule> = cx.rules().collect();
        for i in 0..n.saturating_sub(1) {
            let rule = cx.rule(i);
            if !rule.is_unconditional() {
                continue;
            }
            // kube-proxy's rule shown without its mark match has it in the kernel, as far as the
            // dump can tell: `iptables-version-skew` reports it.
            if crate::lint::lost_match::lost_match(&chain.name, &all, i).is_some() {
                continue;
            }
            let returns = matches!(rule.target_kind(), Some(TargetKind::Return));
            if !returns && !ends_here(cx, rule, &mut memo, 0) {
                continue;
            }
            // kube-proxy's legacy KUBE-FW- chains: `-j KUBE-XLB/SVC` then `-j KUBE-MARK-DROP`.
            let next = cx.rule(i + 1);
            if chain.name.starts_with("KUBE-FW-")
                && next.jump_target() == Some("KUBE-MARK-DROP")
                && i + 2 == n
            {
                break;
            }
            let shadowed = n - i - 1;
            let mut f = Finding::new(
                &META,
                format!(
                    "{} in `{}` can never be reached: the rule before {} every packet",
                    if shadowed == 1 {
                        "1 rule".to_string()
                    } else {
                        format!("{shadowed} rules")
                    },
                    chain.name,
                    if returns {
                        "returns"
                    } else {
                        "ends the chain for"
                    }
                ),
            )
            .at(cx.slots[i + 1].span, "never reached")
            .because(cx.slots[i].span, "matches every packet and ends the chain")
            .in_chain(&cx.table.name, &chain.name)
            .for_its_service()
            .help("move the shadowed rules before this one, or give it a condition");
            // The chains the shadowing and the shadowed rules lead to: a Service's path when
            // one of them is kube-proxy's.
            for j in i..n {
                if let Some(t) = cx.rule(j).jump_target() {
                    f = f.about(t);
                }
            }
            out.push(f);
            break;
        }
    }
}
