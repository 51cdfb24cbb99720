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
    // Without the cluster CIDR, nftables endpoints' addresses stand for the pod network (as `svc`
    // takes the endpoints' networks), so they are not taken to be reached through the uplink.
    let mut pod_nets = cidrs.clone();
    if pod_nets.is_empty() {
        let eps = crate::kube::nft::endpoint_addresses(&rs);
        if !eps.is_empty() {
            extra_notes.push(
                "cluster CIDR not found in the rules: the endpoints' addresses are taken to be on the pod interface".into(),
            );
        }
        pod_nets.extend(eps.into_iter().map(ipnet::IpNet::from));
    }
    eng.set_routes(
        pod_nets.iter().map(|n| (*n, pod.name.clone())).collect(),
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
    // What the destination is, for people who typed an address: a Service's entry and its ports.
    let at_dst: Vec<(String, &'static str, u16, Protocol)> = cat
        .ports
        .iter()
        .flat_map(|p| {
            p.entries
                .iter()
                .filter(|e| e.address == Some(args.dst))
                .map(move |e| {
                    let proto = e.protocol.or(p.protocol).unwrap_or(Protocol::Tcp);
                    (p.display_name(), e.kind.label(), e.port, proto)
                })
        })
        .collect();
    let describe = |list: &[(String, &'static str, u16, Protocol)]| -> String {
        let mut by_svc: Vec<(String, &str, Vec<String>)> = Vec::new();
        for (svc, kind, port, proto) in list {
            let svc = svc.split(':').next().unwrap_or(svc).to_string();
            let p = format!("{port}/{proto}");
            match by_svc.iter_mut().find(|(s, k, _)| *s == svc && k == kind) {
                Some(x) => {
                    if !x.2.contains(&p) {
                        x.2.push(p)
                    }
                }
                None => by_svc.push((svc, kind, vec![p])),
            }
        }
        by_svc
            .iter()
            .map(|(s, k, ports)| {
                format!(
                    "the {k} of {s}, port{} {}",
                    if ports.len() == 1 { "" } else { "s" },
                    ports.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let wanted = args.proto.map(protocol);
    let mut dst_notes: Vec<String> = Vec::new();
    let (dport, proto) = match args.dport {
        Some(p) => {
            let proto = wanted
                .or_else(|| at_dst.iter().find(|e| e.2 == p).map(|e| e.3))
                .unwrap_or(Protocol::Tcp);
            if !at_dst.is_empty() && !at_dst.iter().any(|e| e.2 == p && e.3 == proto) {
                dst_notes.push(format!(
                    "{} is {}: port {p}/{proto} is not one of its ports",
                    args.dst,
                    describe(&at_dst)
                ));
            }
            (p, proto)
        }
        None => {
            let fits: Vec<&(String, &'static str, u16, Protocol)> = at_dst
                .iter()
                .filter(|e| wanted.is_none_or(|w| w == e.3))
                .collect();
            let mut ports: Vec<(u16, Protocol)> = fits.iter().map(|e| (e.2, e.3)).collect();
            ports.sort_by_key(|p| (p.0, p.1.to_string()));
            ports.dedup();
            match ports.as_slice() {
                [(p, proto)] => {
                    dst_notes.push(format!(
                        "--dport not given: {p}/{proto}, as {} is {}",
                        args.dst,
                        describe(&at_dst)
                    ));
                    (*p, *proto)
                }
                [] if at_dst.is_empty() => {
                    return Err(super::Failure::Input(miette::miette!(
                        help =
                            "the destination port decides which rules match: give `--dport PORT`",
                        "no `--dport`, and `{}` is no Service address in the input",
                        args.dst
                    )))
                }
                _ => {
                    return Err(super::Failure::Input(miette::miette!(
                        help = "give `--dport PORT` (and `-p udp` for a UDP port)",
                        "no `--dport`: `{}` is {}",
                        args.dst,
                        describe(&at_dst)
                    )))
                }
            }
        }
    };
    let mut pkt = Packet::new(args.src, args.dst, proto, dport);
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
    // What the destination is comes first: it is what a wrong port gets wrong.
    let mut notes = dst_notes;
    notes.append(&mut trace.notes);
    notes.extend(extra_notes);
    trace.notes = notes;
    input::check_late_errors(&rs)?;
    let out = match args.format {
        Format::Json => crate::render::trace::json(&trace),
        Format::Human => crate::render::trace::human(&trace),
    };
    anstream::print!("{out}");
    // Every way the connection can end is a drop or a reject: nothing is accepted.
    let refused = !trace.outcomes.is_empty()
        && trace.outcomes.iter().all(|o| {
            matches!(
                o.verdict,
                crate::engine::state::Verdict::Drop | crate::engine::state::Verdict::Reject
            )
        });
    // Freeing a large rule set piece by piece only delays the exit.
    std::mem::forget(rs);
    Ok(if refused {
        ExitCode::from(super::EXIT_FAILS)
    } else {
        ExitCode::SUCCESS
    })
}
