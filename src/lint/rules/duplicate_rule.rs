//! # duplicate-rule
//!
//! ## What it flags
//! The same rule twice in one chain.
//!
//! ## Why it matters
//! The second copy can only matter if the first one did not end the chain, and then it runs twice
//! (a MARK applied twice, an `--xor-mark` undone). Usually it shows a script that ran twice with
//! `-A` instead of `-C … || -A`. kube-proxy never writes duplicates.
//!
//! ## Example
//! ```text
//! -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
//! -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
//! ```
//!
//! ## Fix
//! Delete the second copy (`iptables -D CHAIN <n>`), and make the script that adds it idempotent.

use super::prelude::*;
use crate::model::Span;
use rustc_hash::FxHashMap;

pub struct DuplicateRule;

static META: Meta = Meta {
    name: "duplicate-rule",
    code: "KP012",
    severity: Severity::Warning,
    summary: "the same rule twice in a chain",
    source: include_str!("duplicate_rule.rs"),
    scoped: true,
};

impl Rule for DuplicateRule {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check_chain(&self, cx: &ChainContext, out: &mut Vec<Finding>) {
        let chain = cx.chain;
        if cx.slots.len() < 2 {
            return;
        }
        // Compare the text iptables-save printed: it normalises every rule, so equal rules
        // print equally. Rules built by kptrace (no text) compare by their printed form.
        let from_text = |slot: &crate::model::RuleSlot| {
            slot.body_start > slot.span.start || cx.rs.format == crate::model::InputFormat::Save
        };
        let text = |i: usize| -> std::borrow::Cow<str> {
            let slot = &cx.slots[i];
            if from_text(slot) {
                cx.rs
                    .source
                    .slice(Span {
                        start: slot.body_start,
                        end: slot.span.end,
                    })
                    .into()
            } else {
                // A rule with a part the listing could not show (a host name's address, an
                // interface `-L` without `-v` leaves out) compares with nothing: libvirt's
                // `-o virbr0 -j REJECT` and `-i virbr0 -j REJECT` list as the same row. An empty
                // text is never reported.
                let rule = cx.rule(i);
                if rule
                    .matches
                    .iter()
                    .any(|m| matches!(m.criterion, Criterion::Hidden(_)))
                {
                    return "".into();
                }
                crate::model::print::rule_spec(rule).into()
            }
        };
        let report = |out: &mut Vec<Finding>, i: usize, first: usize| {
            out.push(
                Finding::new(
                    &META,
                    format!("the same rule appears twice in `{}`", chain.name),
                )
                .at(cx.slots[i].span, "duplicate")
                .because(cx.slots[first].span, "first here")
                .in_chain(&cx.table.name, &chain.name)
                .for_its_service()
                .about(cx.rule(i).jump_target().unwrap_or_default())
                .help("delete the second copy"),
            );
        };
        let n = cx.slots.len();
        if n <= 16 && cx.slots.iter().all(from_text) {
            // Each rule against the ones before it, reading the text only of rules as long as
            // each other: a chain's rules nearly always differ in length (an endpoint chain's
            // two never match), so most chains are checked without reading any text.
            let len = |i: usize| cx.slots[i].span.end.saturating_sub(cx.slots[i].body_start);
            for i in 1..n {
                if len(i) == 0 {
                    continue;
                }
                if let Some(first) = (0..i).find(|&j| len(j) == len(i) && text(j) == text(i)) {
                    report(out, i, first);
                }
            }
            return;
        }
        // Long chains, and rules printed from another form: through a map of their texts.
        let texts: Vec<std::borrow::Cow<str>> = (0..n).map(text).collect();
        let mut seen: FxHashMap<&str, usize> = FxHashMap::default();
        for (i, t) in texts.iter().enumerate() {
            if t.is_empty() {
                continue;
            }
            match seen.entry(t) {
                std::collections::hash_map::Entry::Occupied(e) => report(out, i, *e.get()),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(i);
                }
            }
        }
    }
}
