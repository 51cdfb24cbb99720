//! # orphan-chain
//!
//! ## What it flags
//! A user chain that nothing jumps to: kube-proxy's per-Service chains (`KUBE-SVC-`, `KUBE-SEP-`,
//! `KUBE-EXT-`, `KUBE-SVL-`, `KUBE-FW-`, `KUBE-XLB-`) always, and in a whole-node dump (one with
//! built-in hooks) any other user chain with rules.
//!
//! ## Why it matters
//! Its rules never run. For kube-proxy chains this is a leftover of a resync that failed half-way
//! (a stale endpoint or Service); for others, a hook that was never added — the firewall you think
//! you have is not there.
//!
//! ## Example
//! ```text
//! :KUBE-SEP-OLDPODXXXXXXXXXX - [0:0]
//! -A KUBE-SEP-OLDPODXXXXXXXXXX -p tcp -m tcp -j DNAT --to-destination 10.244.1.9:8080
//! (no rule jumps to KUBE-SEP-OLDPODXXXXXXXXXX)
//! ```
//!
//! ## Fix
//! Delete the chain (`iptables -t nat -F X; iptables -t nat -X X`) or add the jump it was meant to
//! have. kube-proxy's restore payloads, which never hook their entry chains, and grep'd fragments are
//! not checked for entry chains.

use super::prelude::*;

pub struct OrphanChain;

static META: Meta = Meta {
    name: "orphan-chain",
    code: "KP010",
    severity: Severity::Warning,
    summary: "a user chain nothing jumps to",
    source: include_str!("orphan_chain.rs"),
    scoped: true,
};

impl Rule for OrphanChain {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        if cx.rs.fragment {
            return;
        }
        for (table, chain, cref) in cx.chains() {
            if chain.builtin || cx.graph.in_degree(cref) > 0 {
                continue;
            }
            // kube-proxy's nftables table always holds its helper chains (`reject-chain`,
            // `mark-for-masquerade`…), used or not, and flushes a stale Service's chains a
            // second before it deletes them: only a per-Service chain with rules is stale.
            if table.nft.is_some() && !(chain.name.contains('/') && chain.rules.count() > 0) {
                continue;
            }
            let per_service = is_service_chain(&chain.name);
            if !per_service
                && (!cx.hooked || chain.rules.count() == 0 || chain.name.starts_with("KUBE-"))
            {
                continue;
            }
            out.push(
                Finding::new(
                    &META,
                    match chain.rules.count() {
                        0 => format!("nothing jumps to `{}` (an empty chain)", chain.name),
                        1 => format!("nothing jumps to `{}`: its rule never runs", chain.name),
                        n => format!("nothing jumps to `{}`: its {n} rules never run", chain.name),
                    },
                )
                .at(cx.chain_span(chain), "declared here, never jumped to")
                .in_chain(&table.name, &chain.name)
                .service(cx.service_of(&chain.name))
                .unless_hidden(cx.partial_anywhere())
                .help("delete the chain if it is stale, or add the jump it was meant to have"),
            );
        }
    }
}
