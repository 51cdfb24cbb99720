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
        let texts: Vec<std::borrow::Cow<str>> = cx
            .slots
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                if slot.body_start > slot.span.start
                    || cx.rs.format == crate::model::InputFormat::Save
                {
                    cx.rs
                        .source
                        .slice(Span {
                            start: slot.body_start,
                            end: slot.span.end,
                        })
                        .into()
                } else {
                    crate::model::print::rule_spec(cx.rule(i)).into()
                }
            })
            .collect();
        // Each rule against the ones before it: most chains hold a few rules, where that beats
        // hashing every rule's text; long chains go through a map.
        let texts = &texts;
        let mut seen: FxHashMap<&str, usize> = FxHashMap::default();
        let mut first_copy = |i: usize| {
            if texts.len() <= 16 {
                return (0..i).find(|&j| texts[j] == texts[i]);
            }
            match seen.entry(&texts[i]) {
                std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(i);
                    None
                }
            }
        };
        for (i, slot) in cx.slots.iter().enumerate() {
            if texts[i].is_empty() {
                continue;
            }
            if let Some(first) = first_copy(i) {
                out.push(
                    Finding::new(
                        &META,
                        format!("the same rule appears twice in `{}`", chain.name),
                    )
                    .at(slot.span, "duplicate")
                    .because(cx.slots[first].span, "first here")
                    .in_chain(&cx.table.name, &chain.name)
                    .for_its_service()
                    .help("delete the second copy"),
                );
            }
        }
    }
}
