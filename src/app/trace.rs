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
    if node_ips.is_empty() {
        let revealed = crate::kube::Catalog::build(&rs).node_ips;
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
    let eng = Engine::new(&rs, &node_ips);
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
    pkt.in_iface = args.in_iface.clone();
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
