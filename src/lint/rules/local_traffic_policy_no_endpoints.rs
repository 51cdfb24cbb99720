//! # local-traffic-policy-no-endpoints
//!
//! ## What it flags
//! A Service with `externalTrafficPolicy: Local` that has endpoints, but none on this node.
//!
//! ## Why it matters
//! This is how Local policy is meant to work, not a fault: NodePort and load balancer traffic that
//! arrives at this node is dropped (the load balancer's health check on the health-check node port
//! fails here, so it should send no traffic). It is worth seeing when a client says "the NodePort
//! works on node A but not on node B".
//!
//! ## Example
//! ```text
//! -A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 3001 -j DROP
//! ```
//!
//! ## Fix
//! None needed if the load balancer honours the health check. Otherwise schedule an endpoint on
//! this node, or use `externalTrafficPolicy: Cluster` (at the cost of the client's source address).

use super::prelude::*;

pub struct LocalTrafficPolicyNoEndpoints;

static META: Meta = Meta {
    name: "local-traffic-policy-no-endpoints",
    code: "KP013",
    severity: Severity::Note,
    summary: "externalTrafficPolicy Local with no endpoint on this node: external traffic here is dropped",
    source: include_str!("local_traffic_policy_no_endpoints.rs"),
    scoped: false,
};

impl Rule for LocalTrafficPolicyNoEndpoints {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        for p in &cx.catalog.ports {
            if !p.external_local || p.endpoints.is_empty() || !p.local_endpoints.is_empty() {
                continue;
            }
            let chain = p.external_chain().unwrap_or_default().to_string();
            let span = p
                .no_endpoint_rules
                .first()
                .and_then(|(c, line, _)| {
                    cx.rs
                        .chain("filter", c)
                        .and_then(|ch| ch.rules.iter().find(|s| s.line == *line))
                        .map(|s| s.span)
                })
                .or_else(|| cx.rs.chain("nat", &chain).map(|c| cx.chain_span(c)))
                .unwrap_or_default();
            out.push(
                Finding::new(&META, format!("{}: externalTrafficPolicy Local and none of its {} endpoint{} is on this node; NodePort and load balancer traffic arriving here is dropped", p.display_name(), p.endpoints.len(), if p.endpoints.len() == 1 { "" } else { "s" }))
                    .at(span, "external traffic stops here")
                    .in_chain("nat", &chain)
                    .service(Some(p.display_name())),
            );
        }
    }
}
