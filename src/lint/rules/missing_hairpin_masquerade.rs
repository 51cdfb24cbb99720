//! # missing-hairpin-masquerade
//!
//! ## What it flags
//! A `KUBE-SEP-` chain that DNATs to a pod without first marking traffic whose source is that same
//! pod (`-s <podIP> -j KUBE-MARK-MASQ`).
//!
//! ## Why it matters
//! When a pod reaches itself through its own Service (hairpin), the DNAT sends the packet back to
//! the pod with its own address as the source; the pod's reply never passes the node to be un-NATed,
//! and the connection fails. Masquerading the hairpin case makes the reply come back through the node.
//!
//! ## Example
//! ```text
//! -A KUBE-SEP-JY4YVH4LP7UWS56K -p tcp -m tcp -j DNAT --to-destination 10.254.6.217:80
//! ```
//!
//! ## Fix
//! Put `-A KUBE-SEP-… -s 10.254.6.217/32 -j KUBE-MARK-MASQ` before the DNAT rule (kube-proxy always
//! writes it; its absence usually means the rules were edited by hand).

use super::prelude::*;
use crate::model::target::NatRange;

pub struct MissingHairpinMasquerade;

static META: Meta = Meta {
    name: "missing-hairpin-masquerade",
    code: "KP002",
    severity: Severity::Warning,
    summary: "an endpoint chain DNATs to a pod without masquerading the pod's own traffic",
    source: include_str!("missing_hairpin_masquerade.rs"),
    scoped: false,
};

fn dnat_ip(to: &Option<Box<NatRange>>) -> Option<std::net::IpAddr> {
    to.as_ref().and_then(|r| r.addr.map(|(lo, _)| lo))
}

impl Rule for MissingHairpinMasquerade {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check_chain(&self, cx: &ChainContext, out: &mut Vec<Finding>) {
        let chain = cx.chain;
        if cx.is("nat") && chain.name.starts_with("KUBE-SEP-") {
            let mut marked = Vec::new();
            for (i, rule) in cx.rules().enumerate() {
                match rule.target_kind() {
                    Some(TargetKind::Chain(t)) if t.contains("MARK-MASQ") => {
                        if let Some((false, net)) = rule.source() {
                            marked.push(net);
                        } else if rule.source().is_none() {
                            // Marks everything: hairpin included.
                            marked.push("0.0.0.0/0".parse().unwrap());
                            marked.push("::/0".parse().unwrap());
                        }
                    }
                    Some(TargetKind::Dnat { to, .. }) => {
                        let Some(ip) = dnat_ip(to) else { continue };
                        if !marked.iter().any(|n| n.contains(&ip)) {
                            out.push(
                                Finding::new(
                                    &META,
                                    format!("`{}` DNATs to {ip} but does not masquerade traffic from {ip} itself", chain.name),
                                )
                                .at(cx.slots[i].span, "no hairpin masquerade before this DNAT")
                                .in_chain("nat", &chain.name)
                                .for_its_service()
                                .unless_hidden(cx.rs.partial("nat", &chain.name))
                                .help(format!("add `-A {} -s {ip}/32 -j KUBE-MARK-MASQ` before the DNAT rule", chain.name)),
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
