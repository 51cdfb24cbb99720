//! The node a dump was taken on, as far as its rules and the user tell: its address, the
//! interfaces pods and outside clients use, the routes between them, and an engine set up to trace
//! on it. `svc` and `lint` read an input the same way through it.

use super::probe::{self, Clients};
use super::{Catalog, ServicePort};
use crate::engine::Engine;
use crate::model::Ruleset;
use std::net::IpAddr;

/// What the caller knows of the node beyond the rules.
#[derive(Clone, Debug, Default)]
pub struct NodeFacts {
    pub node_ips: Vec<IpAddr>,
    pub pod_iface: Option<String>,
    pub uplink: Option<String>,
}

/// An engine for the node, and what was assumed to set it up.
pub struct Node<'a> {
    pub eng: Engine<'a>,
    /// The node address probes use (the user's, the rules', or a placeholder the notes name).
    pub node_ip: IpAddr,
    pub clients: Clients,
    /// What was taken from the rules or assumed, for the reader.
    pub notes: Vec<String>,
}

impl<'a> Node<'a> {
    /// Sets the node up for tracing `ports` (resolved Service ports of `cat`).
    pub fn new(
        rs: &'a Ruleset,
        cat: &mut Catalog,
        ports: &[ServicePort],
        node: &NodeFacts,
    ) -> Node<'a> {
        // What the input does not show of these Services (a paste without their entry rules).
        let mut notes = std::mem::take(&mut cat.notes);
        let mut nodes: Vec<IpAddr> = node.node_ips.clone();
        if nodes.is_empty() && !cat.node_ips.is_empty() {
            nodes = cat.node_ips.clone();
            notes.push(format!(
                "node address taken from the rules: {} (give --node-ip to choose)",
                nodes[0]
            ));
        }
        let v6 = ports
            .iter()
            .flat_map(|p| p.entries.iter())
            .filter_map(|e| e.address)
            .any(|a| a.is_ipv6());
        let node_ip = match nodes.iter().find(|n| n.is_ipv6() == v6) {
            Some(n) => *n,
            None => {
                let n = probe::placeholder_node(v6, &cat.cluster_cidrs);
                notes.push(format!(
                    "node address not known: {n} stands for it (give --node-ip for the real one)"
                ));
                nodes.push(n);
                n
            }
        };
        cat.find_cluster_cidrs(rs);
        if cat.cluster_cidrs.is_empty() {
            notes.push(
                "cluster CIDR not found in the rules (no `! -s <CIDR>` masquerade rule): the pod client is taken from the endpoints' network"
                    .into(),
            );
        }
        let (pod, uplink) =
            super::ifaces::choose(rs, node.pod_iface.as_deref(), node.uplink.as_deref());
        for (who, c) in [("pods", &pod), ("outside clients", &uplink)] {
            if c.why != "given" {
                notes.push(format!(
                    "{who} are taken to use interface `{}`: {}",
                    c.name, c.why
                ));
            }
        }
        let clients = probe::Clients {
            pod_iface: pod.name.clone(),
            uplink: uplink.name.clone(),
        };
        let mut eng = Engine::new(rs, &nodes);
        // Packets to the pod network leave by the pod interface, anything else by the uplink.
        // Without the cluster CIDR, the endpoints' networks stand for the pod network (as for the
        // pod client), so endpoints are not taken to be reached through the uplink.
        let mut pod_nets = cat.cluster_cidrs.clone();
        if pod_nets.is_empty() {
            pod_nets.extend(
                ports
                    .iter()
                    .filter_map(|sp| probe::endpoint_network(&probe::endpoint_ips(sp))),
            );
        }
        eng.set_routes(
            pod_nets.iter().map(|n| (*n, pod.name.clone())).collect(),
            Some(uplink.name.clone()),
        );
        // The node's address is its uplink's (the route to a cluster IP leaves there, so the node's
        // own connections start from it).
        eng.set_iface_addr(&uplink.name, node_ip);
        for sp in ports {
            for ep in sp.endpoints.iter().chain(sp.local_endpoints.iter()) {
                eng.learn_affinity(&ep.chain, sp.affinity_seconds);
            }
        }
        Node {
            eng,
            node_ip,
            clients,
            notes,
        }
    }
}
