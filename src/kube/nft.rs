//! Services recovered from kube-proxy's nftables table: the `service-ips`, `service-nodeports`
//! and `no-endpoint-*` maps name the ways in; `service-HASH-ns/name/proto/port` chains the port;
//! their `numgen … vmap` the endpoints (`endpoint-HASH-…__IP/PORT`); `external-`, `local-` and
//! `firewall-` chains the external traffic policy and source ranges. Also the pod network its
//! masquerade rules test (`ip saddr != 10.0.0.0/8 jump mark-for-masquerade` in a `service-…`
//! chain, `ip saddr 10.0.0.0/8 goto service-…` in an `external-…` chain).

use super::service::{Endpoint, Entry, EntryKind, ServicePort};
use crate::model::nft::{Atom, MapVerdict, NftTable, SetRef, VmapKey};
use crate::model::{Criterion, Protocol, Ruleset, Table, TargetKind};
use ipnet::IpNet;
use std::collections::BTreeMap;

/// `service-HASH-ns/name/proto/port` (and `external-`, `local-`, `firewall-`): (prefix,
/// `ns/name`, protocol, port name) — the port name is empty for an unnamed port.
pub fn split_chain_name(name: &str) -> Option<(&str, &str, Protocol, &str)> {
    let (prefix, rest) = name.split_once('-')?;
    if !matches!(prefix, "service" | "external" | "local" | "firewall") {
        return None;
    }
    let (_hash, rest) = rest.split_once('-')?;
    let mut parts = rest.splitn(4, '/');
    let ns = parts.next()?;
    let svc = parts.next()?;
    let proto = Protocol::parse(parts.next()?)?;
    let port = parts.next()?;
    let ns_name = &rest[..ns.len() + 1 + svc.len()];
    Some((prefix, ns_name, proto, port))
}

/// An endpoint of a Service chain: its chain (≤ 1.35), or the address a `dnat … numgen … map`
/// rewrites to (≥ 1.36, no endpoint chains).
enum Found {
    Chain(String),
    Address(std::net::IpAddr, u16),
}

/// The address and port a DNAT rewrites to, when it names both.
fn nat_to(to: &crate::model::target::NatRange) -> Option<Found> {
    match (to.addr, to.ports) {
        (Some((ip, _)), Some(p)) => Some(Found::Address(ip, p.lo)),
        _ => None,
    }
}

/// The endpoints a chain's `numgen … vmap` (or plain jumps, or `dnat … numgen … map`) lead to.
fn endpoint_chains(rs: &Ruleset, t: &Table, chain: &str) -> Vec<Found> {
    let Some(c) = t.chain(chain) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // Read for the catalogue and dropped: a whole-table listing reads every Service's chains.
    for r in rs.peek_rules(c).iter() {
        match r.target.as_ref().map(|t| &t.kind) {
            Some(TargetKind::Vmap(v)) if matches!(v.key, VmapKey::Numgen { .. }) => {
                if let SetRef::Inline(els) = &v.map {
                    for e in els.iter() {
                        match &e.verdict {
                            Some(MapVerdict::Goto(c) | MapVerdict::Jump(c)) => {
                                out.push(Found::Chain(c.to_string()))
                            }
                            Some(MapVerdict::Nat(to)) => out.extend(nat_to(to)),
                            _ => {}
                        }
                    }
                }
            }
            Some(TargetKind::Chain(c)) if c.starts_with("endpoint-") => {
                out.push(Found::Chain(c.to_string()))
            }
            // One endpoint written as a plain DNAT (≥ 1.37 for single-endpoint Services).
            Some(TargetKind::Dnat { to: Some(to), .. }) => out.extend(nat_to(to)),
            _ => {}
        }
    }
    out
}

/// `ip . PORT` from an endpoint chain's DNAT, or from its name's `__IP/PORT`.
fn endpoint_address(rs: &Ruleset, t: &Table, chain: &str) -> Option<String> {
    if let Some(c) = t.chain(chain) {
        for r in rs.peek_rules(c).iter() {
            if let Some(TargetKind::Dnat { to: Some(to), .. }) = r.target.as_ref().map(|t| &t.kind)
            {
                if let (Some((ip, _)), Some(p)) = (to.addr, to.ports) {
                    return Some(crate::model::print::host_port(ip, p.lo));
                }
            }
        }
    }
    let (_, tail) = chain.rsplit_once("__")?;
    let (ip, port) = tail.rsplit_once('/')?;
    // IPv6 endpoints have their colons written as dots in chain names.
    let ip: std::net::IpAddr = ip
        .parse()
        .ok()
        .or_else(|| ip.replace('.', ":").parse().ok())?;
    Some(crate::model::print::host_port(ip, port.parse().ok()?))
}

fn element_key3(key: &[Atom]) -> Option<(std::net::IpAddr, Protocol, u16)> {
    match key {
        [Atom::Net(n), Atom::Proto(p), Atom::Num(port, _)] => Some((n.addr(), *p, *port as u16)),
        [Atom::Net(n), Atom::Proto(p), Atom::Port(r)] => Some((n.addr(), *p, r.lo)),
        _ => None,
    }
}

fn element_key2(key: &[Atom]) -> Option<(Protocol, u16)> {
    match key {
        [Atom::Proto(p), Atom::Num(port, _)] => Some((*p, *port as u16)),
        [Atom::Proto(p), Atom::Port(r)] => Some((*p, r.lo)),
        _ => None,
    }
}

/// Every Service port kube-proxy's nftables tables hold; with `needles`, only those whose chain
/// names hold one (`ns/name` of a query), so a query on a large table reads one Service.
pub fn ports(rs: &Ruleset, needles: Option<&[String]>) -> Vec<ServicePort> {
    let mut out: BTreeMap<String, ServicePort> = BTreeMap::new();
    for t in rs.tables.iter() {
        let Some(nft) = t.nft.as_deref() else {
            continue;
        };
        read_table(rs, t, nft, needles, &mut out);
    }
    out.into_values().collect()
}

fn read_table(
    rs: &Ruleset,
    t: &Table,
    nft: &NftTable,
    needles: Option<&[String]>,
    out: &mut BTreeMap<String, ServicePort>,
) {
    let wanted = |name: &str| needles.is_none_or(|n| n.iter().any(|x| name.contains(x.as_str())));
    // A port is known by the name its chains share after the prefix.
    fn port<'o>(
        out: &'o mut BTreeMap<String, ServicePort>,
        chain: &str,
    ) -> Option<&'o mut ServicePort> {
        let (_, svc, proto, pname) = split_chain_name(chain)?;
        let (_, rest) = chain.split_once('-')?;
        let sp = out.entry(rest.to_string()).or_insert_with(|| ServicePort {
            service: Some(svc.to_string()),
            port_name: (!pname.is_empty()).then(|| pname.to_string()),
            protocol: Some(proto),
            key: format!("nft:{rest}"),
            ..ServicePort::default()
        });
        Some(sp)
    }
    for c in &t.chains {
        let name: &str = &c.name;
        let Some((prefix, ..)) = split_chain_name(name) else {
            continue;
        };
        if !wanted(name) {
            continue;
        }
        let Some(sp) = port(out, name) else { continue };
        let slot = match prefix {
            "service" => &mut sp.svc_chain,
            "external" => &mut sp.ext_chain,
            "local" => &mut sp.svl_chain,
            _ => &mut sp.fw_chain,
        };
        *slot = Some(name.to_string());
    }
    let cluster_ips: std::collections::HashSet<std::net::IpAddr> = nft
        .sets
        .get("cluster-ips")
        .map(|s| {
            s.elements
                .iter()
                .filter_map(|e| match e.key.first() {
                    Some(Atom::Net(n)) => Some(n.addr()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let firewalled: std::collections::HashSet<(std::net::IpAddr, Protocol, u16)> = nft
        .sets
        .get("firewall-ips")
        .map(|s| {
            s.elements
                .iter()
                .filter_map(|e| element_key3(&e.key))
                .collect()
        })
        .unwrap_or_default();
    if let Some(m) = nft.sets.get("service-ips") {
        for e in &m.elements {
            let (Some((ip, proto, p)), Some(MapVerdict::Goto(to) | MapVerdict::Jump(to))) =
                (element_key3(&e.key), &e.verdict)
            else {
                continue;
            };
            if !wanted(to) {
                continue;
            }
            let kind = if cluster_ips.contains(&ip) || to.starts_with("service-") {
                EntryKind::ClusterIp
            } else if firewalled.contains(&(ip, proto, p)) {
                EntryKind::LoadBalancer
            } else {
                EntryKind::ExternalIp
            };
            if let Some(sp) = port(out, to) {
                sp.entries.push(Entry::read(
                    kind,
                    Some(ip),
                    p,
                    Some(proto),
                    "service-ips",
                    e.line,
                    to.to_string(),
                ));
            }
        }
    }
    if let Some(m) = nft.sets.get("service-nodeports") {
        for e in &m.elements {
            let (Some((proto, p)), Some(MapVerdict::Goto(to) | MapVerdict::Jump(to))) =
                (element_key2(&e.key), &e.verdict)
            else {
                continue;
            };
            if !wanted(to) {
                continue;
            }
            if let Some(sp) = port(out, to) {
                sp.entries.push(Entry::read(
                    EntryKind::NodePort,
                    None,
                    p,
                    Some(proto),
                    "service-nodeports",
                    e.line,
                    to.to_string(),
                ));
            }
        }
    }
    // Ports without endpoints: their addresses are in the no-endpoint maps, named by comment.
    // The ports read so far by what a comment names (`ns/name:port`, and the protocol).
    let mut named: std::collections::HashMap<(String, String, Protocol), String> = out
        .iter()
        .filter_map(|(k, sp)| {
            let key = (
                sp.service.clone()?,
                sp.port_name.clone().unwrap_or_default(),
                sp.protocol?,
            );
            Some((key, k.clone()))
        })
        .collect();
    for (map, nodeport) in [
        ("no-endpoint-services", false),
        ("no-endpoint-nodeports", true),
    ] {
        let Some(m) = nft.sets.get(map) else { continue };
        for e in &m.elements {
            let Some(comment) = e.comment.as_deref() else {
                continue;
            };
            let (svc, pname) = comment.split_once(':').unwrap_or((comment, ""));
            let local = matches!(e.verdict, Some(MapVerdict::Drop));
            let entry = if nodeport {
                element_key2(&e.key).map(|(proto, p)| (None, proto, p))
            } else {
                element_key3(&e.key).map(|(ip, proto, p)| (Some(ip), proto, p))
            };
            let Some((ip, proto, p)) = entry else {
                continue;
            };
            // The port the comment names, if its chains exist; else one of its own.
            let at = named
                .entry((svc.to_string(), pname.to_string(), proto))
                .or_insert_with(|| format!("noep:{svc}:{pname}:{proto}"))
                .clone();
            let sp = out.entry(at.clone()).or_insert_with(|| ServicePort {
                service: Some(svc.to_string()),
                port_name: (!pname.is_empty()).then(|| pname.to_string()),
                protocol: Some(proto),
                key: at,
                ..ServicePort::default()
            });
            let tail = if local {
                "has no local endpoints"
            } else {
                "has no endpoints"
            };
            sp.no_endpoint_rules
                .push((map.to_string(), e.line, tail.to_string()));
            let kind = match ip {
                None => EntryKind::NodePort,
                Some(a) if cluster_ips.contains(&a) => EntryKind::ClusterIp,
                Some(a) if firewalled.contains(&(a, proto, p)) => EntryKind::LoadBalancer,
                Some(_) => EntryKind::ExternalIp,
            };
            let exists = sp
                .entries
                .iter()
                .any(|x| x.kind == kind && x.address == ip && x.port == p);
            if !exists && !local {
                sp.entries.push(Entry::read(
                    kind,
                    ip,
                    p,
                    Some(proto),
                    "no-endpoint-services",
                    e.line,
                    map.to_string(),
                ));
            }
        }
    }
    // Each port's chains read on all cores: a whole-table listing reads every Service's.
    use rayon::prelude::*;
    let mut ports: Vec<&mut ServicePort> = out.values_mut().collect();
    ports.par_iter_mut().with_min_len(64).for_each(|sp| {
        let sp = &mut **sp;
        sp.entries.sort_by_key(|e| (e.kind, e.address, e.port));
        sp.entries
            .dedup_by(|a, b| a.kind == b.kind && a.address == b.address && a.port == b.port);
        // A catalogue of the whole table counts endpoints without their addresses, as for
        // iptables dumps: reading them is parsing every endpoint chain of the table.
        let ep = |found: &Found| match found {
            Found::Chain(chain) => Endpoint {
                chain: chain.as_str().into(),
                address: needles
                    .is_some()
                    .then(|| endpoint_address(rs, t, chain))
                    .flatten()
                    .map(Into::into),
                from_comment: false,
                packets: None,
            },
            // No chain of its own: named by its address, which is what tells it apart.
            Found::Address(ip, port) => {
                let at = crate::model::print::host_port(*ip, *port);
                Endpoint {
                    chain: at.as_str().into(),
                    address: Some(at.into()),
                    from_comment: false,
                    packets: None,
                }
            }
        };
        if sp.endpoints.is_empty() {
            if let Some(c) = &sp.svc_chain {
                sp.endpoints = endpoint_chains(rs, t, c).iter().map(&ep).collect();
            }
        }
        if sp.local_endpoints.is_empty() {
            if let Some(c) = &sp.svl_chain {
                sp.local_endpoints = endpoint_chains(rs, t, c).iter().map(&ep).collect();
            }
        }
        // externalTrafficPolicy Local: the external chain short-circuits pods and the node, and
        // sends the rest to the local endpoints (or drops them when there are none).
        if let Some(ext) = sp.ext_chain.as_deref().and_then(|c| t.chain(c)) {
            sp.external_local = rs
                .peek_rules(ext)
                .iter()
                .any(|r| r.comment() == Some("short-circuit pod traffic"))
                || sp.svl_chain.is_some();
        }
    });
}

/// The cluster CIDRs kube-proxy's nftables rules name. Every Service's chains test the same
/// local-traffic detector, each table's own family's: the first chains of a table that show it
/// tell, so a 50,000-Service table costs a few hundred rules here.
pub fn cluster_cidrs(rs: &Ruleset) -> Vec<IpNet> {
    const SAMPLE: usize = 500;
    const ENOUGH: usize = 16;
    let mut out = Vec::new();
    for t in rs.tables.iter().filter(|t| t.nft.is_some()) {
        // ≥ 1.36 marks traffic from outside the pod network in `services` itself:
        // `ip daddr @cluster-ips ip saddr != 10.244.0.0/16 meta mark set meta mark | 0x4000`.
        if let Some(c) = t.chain("services") {
            for r in rs.peek_rules(c).iter() {
                if !matches!(r.target_kind(), Some(TargetKind::Mark(_))) {
                    continue;
                }
                for m in r.matches.iter() {
                    if let (Criterion::Source(net), true) = (&m.criterion, m.negated) {
                        out.push(*net);
                    }
                }
            }
        }
        let (mut seen, mut showing) = (0, 0);
        for c in &t.chains {
            let service = c.name.starts_with("service-");
            let external = c.name.starts_with("external-");
            if !service && !external {
                continue;
            }
            if seen == SAMPLE || showing == ENOUGH {
                break;
            }
            seen += 1;
            let before = out.len();
            for r in rs.peek_rules(c).iter().take(3) {
                let to = match r.target.as_ref().map(|t| &t.kind) {
                    Some(TargetKind::Chain(to)) => to,
                    _ => continue,
                };
                for m in r.matches.iter() {
                    let Criterion::Source(net) = m.criterion else {
                        continue;
                    };
                    let masq = service && m.negated && &**to == "mark-for-masquerade";
                    let pods = external && !m.negated && to.starts_with("service-");
                    if masq || pods {
                        out.push(net);
                    }
                }
            }
            if out.len() > before {
                showing += 1;
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The addresses kube-proxy's nftables endpoint chains DNAT to (`dnat to 10.180.0.1:80`), and
/// (≥ 1.36) its Service chains' `dnat … numgen … map` values.
pub fn endpoint_addresses(rs: &Ruleset) -> Vec<std::net::IpAddr> {
    let mut out = Vec::new();
    for t in rs.tables.iter().filter(|t| t.nft.is_some()) {
        for c in t.chains.iter().filter(|c| c.name.starts_with("service-")) {
            for f in endpoint_chains(rs, t, &c.name) {
                if let Found::Address(ip, _) = f {
                    out.push(ip);
                }
            }
        }
        for c in t.chains.iter().filter(|c| c.name.starts_with("endpoint-")) {
            for r in rs.rules(c) {
                if let Some(TargetKind::Dnat { to: Some(to), .. }) =
                    r.target.as_ref().map(|t| &t.kind)
                {
                    if let Some((lo, _)) = to.addr {
                        out.push(lo);
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// What kube-proxy's affinity sets show of a port with session affinity: each live member of an
/// endpoint's `affinity-…` set (`elements = { 10.0.0.7 timeout 3h expires 2h59m }`) is a client
/// whose new connections the kernel sends to that endpoint until the entry lapses. One sentence
/// per client, naming the endpoint by its address when the rules show it (the set is named
/// after the endpoint's chain, so it need not be named again).
pub fn pinned_clients(rs: &Ruleset, sp: &ServicePort) -> Vec<String> {
    let mut out = Vec::new();
    for t in rs.tables.iter() {
        let Some(nft) = t.nft.as_deref() else {
            continue;
        };
        for ep in sp.endpoints.iter().chain(&sp.local_endpoints) {
            let Some(rest) = ep.chain.strip_prefix("endpoint-") else {
                continue;
            };
            let Some(set) = nft.sets.get(format!("affinity-{rest}").as_str()) else {
                continue;
            };
            let to = ep
                .address
                .as_deref()
                .map(str::to_string)
                .or_else(|| endpoint_address(rs, t, &ep.chain))
                .unwrap_or_else(|| ep.chain.to_string());
            for e in &set.elements {
                let Some(Atom::Net(client)) = e.key.first() else {
                    continue;
                };
                let until = e
                    .expires
                    .as_deref()
                    .map(|x| format!(" ({x} left when listed)"))
                    .unwrap_or_default();
                out.push(format!(
                    "session affinity pins client {} to {to}{until}",
                    client.addr()
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
