//! # nodeports-not-last
//!
//! ## What it flags
//! Rules after the `-j KUBE-NODEPORTS` jump in nat `KUBE-SERVICES`.
//!
//! ## Why it matters
//! kube-proxy writes that jump last ("NOTE: this must be the last rule in this chain"): it catches
//! every packet to a node address. A Service rule after it never sees traffic to a node address
//! whose port is also a node port, and the order shows the chain was edited outside kube-proxy.
//!
//! ## Example
//! ```text
//! -A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
//! -A KUBE-SERVICES -d 10.96.0.30/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-Y
//! ```
//!
//! ## Fix
//! Move the KUBE-NODEPORTS jump to the end (or let kube-proxy rewrite the chain).

use super::prelude::*;

pub struct NodeportsNotLast;

static META: Meta = Meta {
    name: "nodeports-not-last",
    code: "KP011",
    severity: Severity::Warning,
    summary: "rules after the KUBE-NODEPORTS jump in KUBE-SERVICES",
    source: include_str!("nodeports_not_last.rs"),
    scoped: false,
};

impl Rule for NodeportsNotLast {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check_chain(&self, cx: &ChainContext, out: &mut Vec<Finding>) {
        // Read in the sweep: a large dump's KUBE-SERVICES holds 100,000 rules.
        if !cx.is("nat") || &*cx.chain.name != "KUBE-SERVICES" {
            return;
        }
        let Some(at) = cx
            .rules()
            .position(|r| r.jump_target() == Some("KUBE-NODEPORTS"))
        else {
            return;
        };
        let after = cx.rules.len() - at - 1;
        if after == 0 {
            return;
        }
        out.push(
            Finding::new(
                &META,
                format!(
                    "{after} rule{} after the KUBE-NODEPORTS jump in KUBE-SERVICES",
                    if after == 1 { "" } else { "s" }
                ),
            )
            .at(cx.slots[at + 1].span, "after the KUBE-NODEPORTS jump")
            .because(cx.slots[at].span, "kube-proxy writes this jump last")
            .in_chain("nat", "KUBE-SERVICES")
            .help("move the KUBE-NODEPORTS jump to the end of KUBE-SERVICES"),
        );
    }
}
