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
};

impl Rule for UnknownModule {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        // module → (count, first rule span, table, chain)
        let mut seen: BTreeMap<String, (usize, crate::model::Span, String, String)> =
            BTreeMap::new();
        for (table, chain, _) in cx.chains() {
            for (i, rule) in cx.rules(chain).enumerate() {
                let mut names: Vec<String> = rule
                    .matches
                    .iter()
                    .filter_map(|m| match &m.criterion {
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
                    let e = seen.entry(n).or_insert((
                        0,
                        chain.rules[i].span,
                        table.name.to_string(),
                        chain.name.to_string(),
                    ));
                    e.0 += 1;
                }
            }
        }
        for (name, (count, span, table, chain)) in seen {
            out.push(
                Finding::new(&META, format!("`{name}` ({count} rule{}) is not modelled: traces through it are approximate", if count == 1 { "" } else { "s" }))
                    .at(span, "first use")
                    .in_chain(&table, &chain),
            );
        }
    }
}
