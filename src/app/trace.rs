//! `kptrace trace`: one packet through the rules.

use super::input::{self, FormatChoice};
use crate::cli::{Format, Hook, Proto, TraceArgs};
use crate::engine::{Engine, Entry, Packet};
use crate::model::Protocol;
use std::process::ExitCode;

pub fn protocol(p: Proto) -> Protocol {
    match p {
        Proto::Tcp => Protocol::Tcp,
        Proto::Udp => Protocol::Udp,
        Proto::Sctp => Protocol::Sctp,
        Proto::Icmp => Protocol::Icmp,
    }
}

pub fn run(args: &TraceArgs, fmt: FormatChoice) -> super::Result<ExitCode> {
    let rs = input::load(args.file.as_deref(), fmt)?;
    let mut node_ips = args.node.node_ips.clone();
    let mut extra_notes = Vec::new();
    let named = args.ifaces.pod_iface.is_some() || args.ifaces.uplink.is_some();
    let cat = (node_ips.is_empty() || named).then(|| {
        let mut c = crate::kube::Catalog::build(&rs);
        c.find_cluster_cidrs(&rs);
        c
    });
    if node_ips.is_empty() {
        let revealed = cat.as_ref().map(|c| c.node_ips.clone()).unwrap_or_default();
        if !revealed.is_empty() {
            extra_notes.push(format!(
                "node addresses taken from the rules (give --node-ip to set them): {}",
                revealed
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            node_ips = revealed;
        }
    }
    let mut eng = Engine::new(&rs, &node_ips);
    // Named interfaces route the pod network and everything else, as on the node; a packet from
    // a pod arrives on the pod interface, one from elsewhere on the uplink.
    let cidrs = cat.map(|c| c.cluster_cidrs).unwrap_or_default();
    let pod_if = args
        .ifaces
        .pod_iface
        .as_deref()
        .map(|p| p.replace('+', "0"));
    let uplink = args.ifaces.uplink.as_deref().map(|p| p.replace('+', "0"));
    if named {
        let routes = match &pod_if {
            Some(p) => cidrs.iter().map(|n| (*n, p.clone())).collect(),
            None => Vec::new(),
        };
        eng.set_routes(routes, uplink.clone());
    }
    let entry = match args.hook {
        Some(Hook::Prerouting) => Entry::Prerouting,
        Some(Hook::Output) => Entry::Output,
        None if eng.is_local(args.src) => Entry::Output,
        None => Entry::Prerouting,
    };
    let mut pkt = Packet::new(
        args.src,
        args.dst,
        protocol(args.proto),
        args.dport.unwrap_or(0),
    );
    pkt.sport = args.sport;
    pkt.in_iface = args.in_iface.clone().or_else(|| {
        if entry == Entry::Output {
            return None;
        }
        if cidrs.iter().any(|n| n.contains(&args.src)) {
            pod_if.clone()
        } else {
            uplink.clone()
        }
    });
    pkt.out_iface = args.out_iface.clone();
    pkt.mark = args.mark;
    let mut trace = eng.trace(&pkt, entry);
    trace.notes.extend(extra_notes);
    input::check_late_errors(&rs)?;
    let out = match args.format {
        Format::Json => serde_json::to_string_pretty(&trace).unwrap() + "\n",
        Format::Human => crate::render::trace::human(&trace),
    };
    anstream::print!("{out}");
    // Freeing a large rule set piece by piece only delays the exit.
    std::mem::forget(rs);
    Ok(ExitCode::SUCCESS)
}
