//! # empty-service-chain
//!
//! ## What it flags
//! A `KUBE-SVC-`, `KUBE-SVL-` or `KUBE-EXT-` chain from which no path leads to a DNAT, while no
//! filter rule rejects or drops the Service's traffic ("has no endpoints").
//!
//! ## Why it matters
//! kube-proxy either balances a Service over its endpoints or rejects its traffic with ICMP port
//! unreachable so clients fail fast. A Service chain that does neither lets connections go to the
//! cluster IP itself, where they hang until the client times out.
//!
//! ## Example
//! ```text
//! -A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X
//! -A KUBE-SVC-X ! -s 10.0.0.0/8 -d 10.96.0.20/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ
//! (no endpoint rules, and no "has no endpoints" REJECT in filter)
//! ```
//!
//! ## Fix
//! Check the Service's endpoints (`kubectl get endpointslices -l kubernetes.io/service-name=…`) and
//! let kube-proxy resync; its rules for a Service without endpoints are a filter REJECT, not an empty chain.

use super::prelude::*;
use crate::graph::ChainRef;
use crate::model::ChainId;

pub struct EmptyServiceChain;

static META: Meta = Meta {
    name: "empty-service-chain",
    code: "KP009",
    severity: Severity::Warning,
    summary: "a Service chain that DNATs nowhere while nothing rejects its traffic",
    source: include_str!("empty_service_chain.rs"),
    scoped: false,
};

/// Whether some path from `start` reaches a DNAT rule (None: a chain on the way is not in the
/// input). Follows the chain graph: no rule is read again.
fn dnats_somewhere(cx: &Context, start: ChainRef) -> Option<bool> {
    let mut unknown = false;
    let found = cx.graph.any_reachable(start, |r| {
        unknown |= cx.chain_of(r).1.is_opaque();
        cx.dnats(r)
    });
    (found || !unknown).then_some(found)
}

impl Rule for EmptyServiceChain {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let Some(table) = cx.rs.tables.iter().position(|t| &*t.name == "nat") else {
            return;
        };
        let nat = &cx.rs.tables[table];
        // A jump to a chain the dump does not declare (kubelet's, or cut off) is not "nowhere".
        let dangles: rustc_hash::FxHashSet<ChainRef> =
            cx.graph.dangling.iter().map(|(from, _, _)| *from).collect();
        use rayon::prelude::*;
        let ids: Vec<ChainId> = nat.chain_ids().collect();
        out.par_extend(ids.into_par_iter().with_min_len(1024).filter_map(|id| {
            let chain = nat.get(id);
            let service_chain = ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-"]
                .iter()
                .any(|p| chain.name.starts_with(p));
            let cref = ChainRef { table, chain: id };
            if !service_chain || chain.is_opaque() || dangles.contains(&cref) {
                return None;
            }
            if dnats_somewhere(cx, cref) != Some(false) {
                return None;
            }
            let port = cx.port_of(&chain.name);
            if port.is_some_and(|p| !p.no_endpoint_rules.is_empty()) {
                return None;
            }
            Some(
                Finding::new(&META, format!("`{}` leads to no endpoint, and no filter rule rejects its traffic", chain.name))
                    .at(cx.chain_span(chain), "no DNAT is reachable from this chain")
                    .in_chain("nat", &chain.name)
                    .service(port.map(|p| p.display_name()))
                    .unless_hidden(cx.partial_anywhere())
                    .help("kube-proxy rejects traffic of a Service without endpoints in filter KUBE-SERVICES (`… has no endpoints -j REJECT`); check the Service's endpoints and let kube-proxy resync"),
            )
        }));
    }
}
