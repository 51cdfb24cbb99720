//! # chain-loop
//!
//! ## What it flags
//! Chains that jump into each other in a cycle (`A → B → A`), or a chain that jumps to itself.
//!
//! ## Why it matters
//! The kernel refuses to load a rule set with a loop (`iptables-restore: … Too many levels of
//! links`), so a dump with one cannot be the kernel's state: it was edited or assembled wrongly.
//!
//! ## Example
//! ```text
//! -A KUBE-SVC-A -j KUBE-SEP-B
//! -A KUBE-SEP-B -j KUBE-SVC-A
//! ```
//!
//! ## Fix
//! Remove the jump that closes the loop. kptrace traces such input without hanging (each path is cut
//! at a depth limit), but the answers are about a rule set the kernel would not accept.

use super::prelude::*;

pub struct ChainLoop;

static META: Meta = Meta {
    name: "chain-loop",
    code: "KP005",
    severity: Severity::Error,
    summary: "chains that jump into each other in a cycle",
    source: include_str!("chain_loop.rs"),
    scoped: false,
};

impl Rule for ChainLoop {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        for cycle in cx.graph.cycles() {
            let mut names: Vec<(String, &crate::model::Chain, &crate::model::Table)> = cycle
                .iter()
                .map(|r| {
                    let (t, c) = cx.chain_of(*r);
                    (c.name.to_string(), c, t)
                })
                .collect();
            names.sort_by(|a, b| a.0.cmp(&b.0));
            let members: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
            let (_, first, table) = names[0];
            // Point at the jump that leaves the first chain for another member of the loop.
            let jump = first.rules.iter().enumerate().find(|(i, _)| {
                cx.rule(first, *i)
                    .jump_target()
                    .is_some_and(|t| members.contains(&t))
            });
            let mut f = Finding::new(&META, format!("jump loop: {}", members.join(" → ")))
                .in_chain(&table.name, &first.name);
            for m in &members {
                f = f.about(*m);
            }
            if let Some((_, slot)) = jump {
                f = f.at(slot.span, "this jump closes a loop");
            }
            for (_, c, _) in names.iter().skip(1) {
                if let Some(slot) = c.rules.iter().enumerate().find(|(i, _)| {
                    cx.rule(c, *i)
                        .jump_target()
                        .is_some_and(|t| members.contains(&t))
                }) {
                    f = f.because(slot.1.span, "part of the loop");
                }
            }
            out.push(f.help("remove one of the jumps; the kernel refuses rule sets with loops"));
        }
    }
}
