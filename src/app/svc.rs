//! `kptrace svc`: every way into a Service, what each reaches, with what share, and masquerading.

use super::input::{self, FormatChoice};
use super::Failure;
use crate::cli::{Format, SvcArgs};
use crate::engine::{Engine, Packet, Trace};
use crate::kube::probe::{self, Probe};
use crate::kube::{Catalog, ServicePort};
use crate::model::Ruleset;
use std::net::IpAddr;
use std::process::ExitCode;

/// One Service port's answer.
pub struct PortReport {
    pub port: ServicePort,
    pub probes: Vec<(Probe, Trace)>,
    pub node_ip: IpAddr,
    pub notes: Vec<String>,
}

/// What the caller knows of the node beyond the rules.
#[derive(Clone, Debug, Default)]
pub struct NodeFacts {
    pub node_ips: Vec<IpAddr>,
    pub pod_iface: Option<String>,
    pub uplink: Option<String>,
}

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
    let node_ips = &node.node_ips;
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
    // What the input does not show of these Services (a paste without their entry rules).
    let mut notes = std::mem::take(&mut cat.notes);
    let mut nodes: Vec<IpAddr> = node_ips.to_vec();
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
        crate::kube::ifaces::choose(rs, node.pod_iface.as_deref(), node.uplink.as_deref());
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
    for sp in &ports {
        for ep in sp.endpoints.iter().chain(sp.local_endpoints.iter()) {
            eng.learn_affinity(&ep.chain, sp.affinity_seconds);
        }
    }
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
            PortReport {
                port: sp,
                probes,
                node_ip,
                notes: notes.clone(),
            }
        })
        .collect();
    (reports, Vec::new())
}

pub fn run(args: &SvcArgs, fmt: FormatChoice) -> super::Result<ExitCode> {
    let sets = input::load_all(&args.files, fmt)?;
    let mut all: Vec<(&Ruleset, Vec<PortReport>)> = Vec::new();
    let mut suggestions = Vec::new();
    for rs in &sets {
        let node = NodeFacts {
            node_ips: args.node.node_ips.clone(),
            pod_iface: args.ifaces.pod_iface.clone(),
            uplink: args.ifaces.uplink.clone(),
        };
        let (reports, sugg) = analyse_with(rs, &args.service, &node);
        input::check_late_errors(rs)?;
        suggestions.extend(sugg);
        if !reports.is_empty() {
            all.push((rs, reports));
        }
    }
    if all.is_empty() {
        return Err(not_found(&args.service, suggestions));
    }
    let out = match args.format {
        Format::Json => crate::render::svc::json(&args.service, &all),
        Format::Human => crate::render::svc::human(&all, args.all_paths),
    };
    anstream::print!("{out}");
    // Freeing a large rule set piece by piece only delays the exit.
    std::mem::forget(sets);
    Ok(ExitCode::SUCCESS)
}

/// "No such Service", with the closest names the input does hold.
pub fn not_found(query: &str, mut suggestions: Vec<String>) -> Failure {
    suggestions.sort();
    suggestions.dedup();
    let mut msg = format!("no Service `{query}` in the input");
    if !suggestions.is_empty() {
        msg += &format!(
            "; did you mean {}?",
            suggestions
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    msg += "\nhelp: `kptrace ls` lists the Services; a Service can also be named by cluster IP:port or by its KUBE-SVC- chain";
    Failure::No(msg)
}
