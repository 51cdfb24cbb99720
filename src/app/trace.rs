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
    let mut cat = crate::kube::Catalog::build(&rs);
    cat.find_cluster_cidrs(&rs);
    if node_ips.is_empty() {
        let revealed = cat.node_ips.clone();
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
    // Interfaces as `svc` takes them: a packet from the pod network arrives on the pod interface
    // and one from elsewhere on the uplink; the pod network is routed to the pod interface, the
    // rest to the uplink. Named by the user, read from the rules, or else interfaces no rule
    // names (said in a note). `--in-iface`/`--out-iface` set one packet's own.
    let (pod, uplink) = crate::kube::ifaces::choose(
        &rs,
        args.ifaces.pod_iface.as_deref(),
        args.ifaces.uplink.as_deref(),
    );
    let cidrs = cat.cluster_cidrs.clone();
    eng.set_routes(
        cidrs.iter().map(|n| (*n, pod.name.clone())).collect(),
        Some(uplink.name.clone()),
    );
    if let Some(ip) = node_ips.first() {
        eng.set_iface_addr(&uplink.name, *ip);
    }
    let pod_if = Some(pod.name.clone());
    let uplink_if = Some(uplink.name.clone());
    let mut used = |c: &crate::kube::ifaces::Chosen, who: &str| {
        if c.why != "given" {
            extra_notes.push(format!(
                "{who} taken to use interface `{}`: {}",
                c.name, c.why
            ));
        }
    };
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
            used(&pod, "the packet (from the pod network) is");
            pod_if.clone()
        } else {
            used(&uplink, "the packet (from outside the pod network) is");
            uplink_if.clone()
        }
    });
    if args.out_iface.is_none() && args.in_iface.is_none() && entry == Entry::Output {
        used(&uplink, "the node's default route is");
    }
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
