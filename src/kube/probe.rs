//! Representative packets for a Service: one for each way in (cluster IP, NodePort, external IP,
//! load balancer) and each kind of client that kube-proxy treats differently (a pod, the node itself,
//! a client outside the cluster, an endpoint reaching itself, a load-balancer client inside or outside
//! the allowed source ranges).

use super::{Catalog, EntryKind, ServicePort};
use crate::engine::Entry as Hook;
use crate::model::{Protocol, Ruleset};
use ipnet::IpNet;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum From {
    Pod,
    Node,
    Outside,
    Hairpin,
}

impl From {
    pub fn label(self) -> &'static str {
        match self {
            From::Pod => "pod",
            From::Node => "node",
            From::Outside => "outside",
            From::Hairpin => "hairpin",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Probe {
    pub kind: EntryKind,
    /// The address the client sends to (for a NodePort, the node address used).
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub from: From,
    pub source: IpAddr,
    pub hook: Hook,
    /// What makes this source special, e.g. "in source range 203.0.113.0/25".
    pub detail: Option<String>,
    /// The interface the packet arrives on (none for the node's own traffic).
    pub in_iface: Option<String>,
}

impl Probe {
    /// How people name the way in: `cluster IP 10.96.0.10:53`, `NodePort 192.0.2.10:30080`.
    pub fn entry_label(&self) -> String {
        format!(
            "{} {}",
            self.kind.label(),
            super::host_port(self.address, self.port)
        )
    }

    /// The client: `pod`, `node`, `outside (in source range 203.0.113.0/25)`, `hairpin`.
    pub fn from_label(&self) -> String {
        match &self.detail {
            Some(d) if self.from == From::Outside => format!("outside ({d})"),
            _ => self.from.label().to_string(),
        }
    }
}

/// The interfaces clients use (see [`super::ifaces`]).
#[derive(Clone, Debug)]
pub struct Clients {
    pub pod_iface: String,
    pub uplink: String,
}

/// The smallest network holding every endpoint address (at most a /24's worth narrower than
/// /16 is never taken: a pod network is at least that wide), for a pod client when the rules do
/// not show the cluster CIDR.
pub fn endpoint_network(eps: &[IpAddr]) -> Option<IpNet> {
    let first = *eps.first()?;
    let max = if first.is_ipv6() { 64 } else { 16 };
    (0..=max).rev().find_map(|len| {
        let net = IpNet::new(first, len).ok()?.trunc();
        eps.iter().all(|e| net.contains(e)).then_some(net)
    })
}

/// Addresses from the documentation ranges: no real cluster uses them, so they stand for "anyone".
const OUTSIDE_V4: &[&str] = &[
    "203.0.113.77",
    "198.51.100.77",
    "192.0.2.77",
    "100.64.77.77",
];
const OUTSIDE_V6: &[&str] = &["2001:db8:ffff::77", "2001:db8:eeee::77"];
const NODE_V4: &[&str] = &["192.0.2.10", "198.51.100.10", "203.0.113.10"];
const NODE_V6: &[&str] = &["2001:db8:ffff::10", "2001:db8:eeee::10"];

fn first_free(cands: &[&str], avoid: &[IpNet]) -> IpAddr {
    cands
        .iter()
        .map(|c| c.parse::<IpAddr>().unwrap())
        .find(|ip| !avoid.iter().any(|n| n.contains(ip)))
        .unwrap_or_else(|| cands[0].parse().unwrap())
}

/// A node address for a rule set whose node addresses were not given nor revealed.
pub fn placeholder_node(v6: bool, avoid: &[IpNet]) -> IpAddr {
    first_free(if v6 { NODE_V6 } else { NODE_V4 }, avoid)
}

/// Every network the Service's rules mention as a source (so "outside" is not inside any of them).
fn source_nets(rs: &Ruleset, sp: &ServicePort) -> Vec<IpNet> {
    let mut nets = Vec::new();
    let Some(nat) = rs.table("nat") else {
        return nets;
    };
    for c in [
        &sp.svc_chain,
        &sp.ext_chain,
        &sp.fw_chain,
        &sp.xlb_chain,
        &sp.svl_chain,
    ]
    .into_iter()
    .flatten()
    {
        if let Some(chain) = nat.chain(c) {
            for r in rs.rules(chain) {
                if let Some((_, n)) = r.source() {
                    nets.push(n);
                }
            }
        }
    }
    nets
}

/// Allowed source ranges of a load balancer (`-s RANGE -j KUBE-EXT-…` / `KUBE-XLB` / `KUBE-SVC`).
fn allowed_ranges(rs: &Ruleset, sp: &ServicePort) -> Vec<IpNet> {
    let Some(fw) = sp
        .fw_chain
        .as_ref()
        .and_then(|c| rs.table("nat").and_then(|t| t.chain(c)))
    else {
        return Vec::new();
    };
    rs.rules(fw)
        .filter_map(|r| match (r.source(), r.jump_target()) {
            (Some((false, n)), Some(t)) if !t.starts_with("KUBE-MARK-") => Some(n),
            _ => None,
        })
        .collect()
}

fn host_in(net: IpNet, avoid: &[IpAddr]) -> IpAddr {
    net.hosts()
        .take(1000)
        .find(|h| !avoid.contains(h))
        .unwrap_or(net.addr())
}

pub fn endpoint_ips(sp: &ServicePort) -> Vec<IpAddr> {
    sp.endpoints
        .iter()
        .filter_map(|e| e.address.as_deref())
        .filter_map(|a| {
            let a = a.trim_start_matches('[');
            let host = a.rsplit_once([']', ':']).map(|(h, _)| h).unwrap_or(a);
            host.trim_end_matches(']').parse().ok()
        })
        .collect()
}

pub fn plan(
    rs: &Ruleset,
    cat: &Catalog,
    sp: &ServicePort,
    node_ip: IpAddr,
    clients: &Clients,
) -> Vec<Probe> {
    let v6 = sp
        .entries
        .iter()
        .filter_map(|e| e.address)
        .any(|a| a.is_ipv6());
    let endpoint_ips = endpoint_ips(sp);
    let mut cidrs: Vec<IpNet> = cat
        .cluster_cidrs
        .iter()
        .copied()
        .filter(|n| n.addr().is_ipv6() == v6)
        .collect();
    if cidrs.is_empty() {
        // The pod row stays: a pod from the endpoints' network (the caller says so in a note).
        cidrs.extend(endpoint_network(&endpoint_ips));
    }
    let mut avoid = source_nets(rs, sp);
    avoid.extend(cidrs.iter().copied());
    avoid.extend(endpoint_ips.iter().map(|i| IpNet::from(*i)));
    let outside = first_free(if v6 { OUTSIDE_V6 } else { OUTSIDE_V4 }, &avoid);
    let pod = cidrs.first().map(|c| {
        let mut skip = endpoint_ips.clone();
        skip.push(node_ip);
        // A pod other than the endpoints, with an address a person recognises as made up (x.x.x.10).
        c.hosts()
            .skip(9)
            .take(1000)
            .find(|h| !skip.contains(h))
            .unwrap_or_else(|| host_in(*c, &skip))
    });
    let ranges = allowed_ranges(rs, sp);
    let protocol = sp.protocol.unwrap_or(Protocol::Tcp);
    let mut probes = Vec::new();
    let mut entries = sp.entries.clone();
    entries.sort_by_key(|e| e.kind);
    for e in &entries {
        let address = match (e.kind, e.address) {
            (EntryKind::NodePort, _) => node_ip,
            (_, Some(a)) => a,
            _ => continue,
        };
        let protocol = e.protocol.unwrap_or(protocol);
        let mk = |from, source, hook, detail: Option<String>| Probe {
            kind: e.kind,
            address,
            port: e.port,
            protocol,
            from,
            source,
            hook,
            detail,
            in_iface: match from {
                From::Pod | From::Hairpin => Some(clients.pod_iface.clone()),
                From::Outside => Some(clients.uplink.clone()),
                From::Node => None,
            },
        };
        if let Some(pod) = pod {
            probes.push(mk(From::Pod, pod, Hook::Prerouting, None));
        }
        probes.push(mk(From::Node, node_ip, Hook::Output, None));
        if e.kind == EntryKind::LoadBalancer && !ranges.is_empty() {
            for r in ranges.iter().take(2) {
                let src = host_in(*r, &endpoint_ips);
                probes.push(mk(
                    From::Outside,
                    src,
                    Hook::Prerouting,
                    Some(format!("in source range {r}")),
                ));
            }
            if !ranges.iter().any(|r| r.contains(&outside)) {
                probes.push(mk(
                    From::Outside,
                    outside,
                    Hook::Prerouting,
                    Some("not in any source range".into()),
                ));
            }
        } else {
            probes.push(mk(From::Outside, outside, Hook::Prerouting, None));
        }
        if e.kind == EntryKind::ClusterIp {
            if let Some(ep) = endpoint_ips.first() {
                probes.push(mk(
                    From::Hairpin,
                    *ep,
                    Hook::Prerouting,
                    Some(format!("endpoint {} to its own Service", ep)),
                ));
            }
        }
    }
    probes
}
