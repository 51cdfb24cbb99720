//! A Service's answer: every way in, traced from every kind of client on the node the rules
//! describe. What `svc` prints and `graph --svc` draws; below the command line, so any front end
//! can ask it.

use super::probe::{self, Probe};
use super::{Catalog, ServicePort};
use crate::engine::{Packet, Trace};
use crate::model::Ruleset;
use std::net::IpAddr;

/// One Service port's answer.
pub struct PortReport {
    pub port: ServicePort,
    pub probes: Vec<(Probe, Trace)>,
    pub node_ip: IpAddr,
    pub notes: Vec<String>,
}

pub use super::node::NodeFacts;

/// Traces every probe of the ports matching `query` in one rule set.
pub fn analyse(rs: &Ruleset, query: &str, node_ips: &[IpAddr]) -> (Vec<PortReport>, Vec<String>) {
    analyse_with(
        rs,
        query,
        &NodeFacts {
            node_ips: node_ips.to_vec(),
            ..NodeFacts::default()
        },
    )
}

/// [`analyse`], with the interfaces the caller names.
pub fn analyse_with(rs: &Ruleset, query: &str, node: &NodeFacts) -> (Vec<PortReport>, Vec<String>) {
    let mut cat = Catalog::for_query(rs, query);
    let mut hits = cat.find(query);
    if hits.is_empty() {
        cat = Catalog::build(rs);
        hits = cat.find(query);
    }
    if hits.is_empty() {
        return (Vec::new(), cat.suggest(query));
    }
    let mut ports = Vec::new();
    for i in hits {
        let mut sp = std::mem::take(&mut cat.ports[i]);
        cat.resolve(rs, &mut sp);
        ports.push(sp);
    }
    let super::node::Node {
        eng,
        node_ip,
        clients,
        notes,
    } = super::node::Node::new(rs, &mut cat, &ports, node);
    let reports = ports
        .into_iter()
        .map(|sp| {
            let probes = probe::plan(rs, &cat, &sp, node_ip, &clients)
                .into_iter()
                .map(|p| {
                    let mut pkt = Packet::new(p.source, p.address, p.protocol, p.port);
                    pkt.in_iface = p.in_iface.clone();
                    let t = eng.trace(&pkt, p.hook);
                    (p, t)
                })
                .collect();
            let mut notes = notes.clone();
            notes.extend(super::nft::pinned_clients(rs, &sp));
            PortReport {
                port: sp,
                probes,
                node_ip,
                notes,
            }
        })
        .collect();
    (reports, Vec::new())
}
