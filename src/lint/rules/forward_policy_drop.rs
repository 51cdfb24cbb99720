//! # forward-policy-drop
//!
//! ## What it flags
//! filter `FORWARD` has policy `DROP` (Docker sets it, so do many host firewalls), and nothing on
//! the way accepts Service traffic forwarded to an endpoint: kube-proxy's
//! `KUBE-FORWARD … -m mark --mark 0x4000/0x4000 -j ACCEPT` is missing or not hooked, and no other
//! rule accepts it. The finding names the Services whose NodePort, load balancer or external IP
//! connections the policy drops, as `kptrace svc` traces them from outside the node.
//!
//! ## Why it matters
//! NodePort and load balancer connections are DNATed to an endpoint and forwarded; the policy drops
//! them. The Service "works only on the node running the pod" — or not at all from outside.
//!
//! ## Example
//! ```text
//! *filter
//! :FORWARD DROP [0:0]
//! -A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
//! -A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
//! ```
//!
//! ## Fix
//! Let kube-proxy restore `KUBE-FORWARD` (restart it), or accept the traffic yourself:
//! `-A FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT`, or accept the pod network
//! (`-A FORWARD -d <cluster CIDR> -j ACCEPT`), or set the policy to `ACCEPT`.

use super::prelude::*;
use crate::engine::state::Verdict;
use crate::kube::probe::{self, From};
use crate::kube::{Catalog, EntryKind};

pub struct ForwardPolicyDrop;

static META: Meta = Meta {
    name: "forward-policy-drop",
    code: "KP015",
    severity: Severity::Error,
    summary: "FORWARD's policy DROP drops Service traffic forwarded to endpoints",
    source: include_str!("forward_policy_drop.rs"),
    scoped: false,
};

/// Services traced at most: the policy drops all or most of them alike, and a large dump has
/// thousands.
const TRACED: usize = 64;

impl Rule for ForwardPolicyDrop {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let Some(filter) = cx.table("filter") else {
            return;
        };
        let Some(forward) = filter.chain("FORWARD") else {
            return;
        };
        if forward.policy != Some(crate::model::Policy::Drop) || !filter.shows_builtin("FORWARD") {
            return;
        }
        let mut cat = Catalog::build(cx.rs);
        let mut ports = Vec::new();
        let mut more = 0usize;
        for i in 0..cat.ports.len() {
            let external = cat.ports[i].entries.iter().any(|e| {
                matches!(
                    e.kind,
                    EntryKind::NodePort | EntryKind::LoadBalancer | EntryKind::ExternalIp
                )
            });
            if !external {
                continue;
            }
            if ports.len() == TRACED {
                more += 1;
                continue;
            }
            let mut sp = std::mem::take(&mut cat.ports[i]);
            cat.resolve(cx.rs, &mut sp);
            if !sp.endpoints.is_empty() {
                ports.push(sp);
            }
        }
        if ports.is_empty() {
            return;
        }
        let facts = crate::kube::node::NodeFacts {
            node_ips: Vec::new(),
            pod_iface: cx.opts.pod_iface.clone(),
            uplink: cx.opts.uplink.clone(),
        };
        let node = crate::kube::node::Node::new(cx.rs, &mut cat, &ports, &facts);
        let mut dropped = Vec::new();
        for sp in &ports {
            let plans = probe::plan(cx.rs, &cat, sp, node.node_ip, &node.clients);
            let external = |k: EntryKind| {
                matches!(
                    k,
                    EntryKind::NodePort | EntryKind::LoadBalancer | EntryKind::ExternalIp
                )
            };
            for p in plans
                .iter()
                .filter(|p| p.from == From::Outside && external(p.kind))
            {
                let mut pkt = crate::engine::Packet::new(p.source, p.address, p.protocol, p.port);
                pkt.in_iface = p.in_iface.clone();
                let t = node.eng.trace(&pkt, p.hook);
                // Dropped by the policy in every world the input leaves open.
                let by_policy = |o: &crate::engine::Outcome| {
                    o.verdict == Verdict::Drop
                        && o.verdict_rule.is_none()
                        && o.path.last().is_some_and(|s| {
                            s.table == "filter"
                                && s.chain == "FORWARD"
                                && s.action.starts_with("policy")
                        })
                };
                let share: f64 = t
                    .outcomes
                    .iter()
                    .filter(|o| o.conditions.is_empty() && by_policy(o))
                    .map(|o| o.probability)
                    .sum();
                if share > 1e-9 {
                    let entry = match p.kind {
                        EntryKind::NodePort => format!("NodePort {}", p.port),
                        EntryKind::LoadBalancer => {
                            format!("load balancer {}:{}", p.address, p.port)
                        }
                        _ => format!("external IP {}:{}", p.address, p.port),
                    };
                    dropped.push((entry, sp.display_name(), share));
                    break;
                }
            }
        }
        if dropped.is_empty() {
            return;
        }
        let (entry, name, share) = &dropped[0];
        let all = share >= &(1.0 - 1e-9);
        let mut message = format!(
            "{entry} of {name}: {} connections from outside are dropped by filter FORWARD's policy DROP after DNAT to an endpoint; nothing accepts Service traffic",
            if all { "new" } else { "some new" },
        );
        if dropped.len() > 1 || more > 0 {
            message += &format!(
                " ({} more Service port{} alike{})",
                dropped.len() - 1,
                if dropped.len() == 2 { "" } else { "s" },
                if more > 0 {
                    format!(", {more} not traced")
                } else {
                    String::new()
                }
            );
        }
        let mut f = Finding::new(&META, message)
            .at(cx.chain_span(forward), "policy DROP")
            .in_chain("filter", "FORWARD")
            .service(Some(name.clone()))
            .help("kube-proxy accepts its forwarded traffic in `KUBE-FORWARD` (`-m mark --mark 0x4000/0x4000 -j ACCEPT`): restart kube-proxy to restore it, or accept the pod network in FORWARD");
        if let Some(kf) = filter.chain("KUBE-FORWARD") {
            f = f.because(
                cx.chain_span(kf),
                "no rule here accepts new Service connections",
            );
        }
        out.push(f);
    }
}
