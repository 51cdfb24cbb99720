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
use crate::model::Chain;

pub struct EmptyServiceChain;

static META: Meta = Meta {
    name: "empty-service-chain",
    code: "KP009",
    severity: Severity::Warning,
    summary: "a Service chain that DNATs nowhere while nothing rejects its traffic",
    source: include_str!("empty_service_chain.rs"),
};

/// Whether some path from the chain `cx` looks at reaches a DNAT rule (None: a chain on the way is
/// not in the input). Depth-first with an early exit: a Service chain's last endpoint usually
/// answers at once, so this reads one endpoint chain besides the chain itself.
fn dnats_somewhere<'a>(cx: &ChainContext<'a>) -> Option<bool> {
    // Pushes the chains `rules` jump to; true when one of them DNATs.
    let step = |rules: &mut dyn Iterator<Item = &IptRule>, stack: &mut Vec<&'a Chain>| {
        for rule in rules {
            match rule.target_kind() {
                Some(TargetKind::Dnat { .. }) => return true,
                Some(TargetKind::Chain(name)) => stack.extend(cx.table.chain(name)),
                _ => {}
            }
        }
        false
    };
    let mut stack = Vec::new();
    if step(&mut cx.rules(), &mut stack) {
        return Some(true);
    }
    let mut seen = rustc_hash::FxHashSet::default();
    seen.insert(cx.chain as *const Chain);
    let mut unknown = false;
    while let Some(c) = stack.pop() {
        if !seen.insert(c as *const Chain) {
            continue;
        }
        if c.is_opaque() {
            unknown = true;
        }
        if step(&mut cx.rs.peek_rules(c).iter().map(|r| &**r), &mut stack) {
            return Some(true);
        }
    }
    (!unknown).then_some(false)
}

impl Rule for EmptyServiceChain {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check_chain(&self, cx: &ChainContext, out: &mut Vec<Finding>) {
        let chain = cx.chain;
        if !cx.is("nat")
            || !["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-"]
                .iter()
                .any(|p| chain.name.starts_with(p))
            || chain.is_opaque()
        {
            return;
        }
        // A jump to a chain the dump does not declare (kubelet's, or cut off) is not "nowhere".
        if cx
            .rules()
            .any(|r| r.jump_target().is_some_and(|t| cx.table.id(t).is_none()))
        {
            return;
        }
        if dnats_somewhere(cx) != Some(false) {
            return;
        }
        out.push(
            Finding::new(&META, format!("`{}` leads to no endpoint, and no filter rule rejects its traffic", chain.name))
                .at(chain.decl.unwrap_or(crate::model::Span::NONE), "no DNAT is reachable from this chain")
                .in_chain("nat", &chain.name)
                .for_its_service()
                .help("kube-proxy rejects traffic of a Service without endpoints in filter KUBE-SERVICES (`… has no endpoints -j REJECT`); check the Service's endpoints and let kube-proxy resync"),
        );
    }

    /// A Service whose filter rules reject its traffic for want of endpoints is not "nowhere".
    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        out.retain(|f| {
            f.chain
                .as_deref()
                .and_then(|c| cx.port_of(c))
                .is_none_or(|p| p.no_endpoint_rules.is_empty())
        });
    }
}
