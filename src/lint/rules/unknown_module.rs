//! # unknown-module
//!
//! ## What it flags
//! A match module or target that kptrace keeps but cannot evaluate (for example `-m string`,
//! `-m hashlimit`, `-j NFQUEUE`, `-j CT`). One finding per module, with the number of rules using it.
//!
//! ## Why it matters
//! Answers about packets that meet such a rule are approximate: kptrace follows both ways ("may
//! match") and marks the outcome `~`. Knowing which modules are involved tells you how far to trust
//! a trace.
//!
//! ## Example
//! ```text
//! -A INPUT -p tcp -m hashlimit --hashlimit-above 10/sec --hashlimit-name x -j DROP
//! ```
//!
//! ## Fix
//! Nothing to fix in the rules. If the module matters to your Services, open an issue so the engine
//! learns it.

use super::prelude::*;
use std::collections::BTreeMap;

pub struct UnknownModule;

static META: Meta = Meta {
    name: "unknown-module",
    code: "KP014",
    severity: Severity::Note,
    summary: "a match or target kptrace cannot evaluate: answers through it are approximate",
    source: include_str!("unknown_module.rs"),
    scoped: true,
};

impl Rule for UnknownModule {
    fn meta(&self) -> &'static Meta {
        &META
    }

    /// One finding per rule that uses an unmodelled module or target, named after it; `check`
    /// merges them into one per name.
    fn check_chain(&self, cx: &ChainContext, out: &mut Vec<Finding>) {
        for (i, rule) in cx.rules().enumerate() {
            let mut names: Vec<String> = rule
                .matches
                .iter()
                .filter_map(|m| match &m.criterion {
                    // nfacct only counts (kube-proxy's own accounting); it always matches.
                    Criterion::Other(o) if &*o.module == "nfacct" => None,
                    Criterion::Other(o) => Some(format!("-m {}", o.module)),
                    _ => None,
                })
                .collect();
            if let Some(TargetKind::Other { name, .. }) = rule.target_kind() {
                // Targets that do not change where a packet goes cost the engine nothing.
                if !crate::engine::walk::harmless(name) {
                    names.push(format!("-j {name}"));
                }
            }
            names.dedup();
            for n in names {
                out.push(
                    Finding::new(&META, n)
                        .at(cx.slots[i].span, "first use")
                        .in_chain(&cx.table.name, &cx.chain.name),
                );
            }
        }
    }

    fn check(&self, _cx: &Context, out: &mut Vec<Finding>) {
        // name → (rules, first use), in the order of tables and chains
        let mut seen: BTreeMap<String, (usize, Finding)> = BTreeMap::new();
        for f in out.drain(..) {
            seen.entry(f.message.clone()).or_insert((0, f)).0 += 1;
        }
        for (name, (count, mut f)) in seen {
            f.message = format!(
                "`{name}` ({count} rule{}) is not modelled: traces through it are approximate",
                if count == 1 { "" } else { "s" }
            );
            out.push(f);
        }
    }
}
