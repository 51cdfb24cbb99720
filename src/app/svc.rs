//! `kptrace svc`: every way into a Service, what each reaches, with what share, and masquerading.

use super::input::{self, FormatChoice};
use super::Failure;
use crate::cli::{Format, SvcArgs};
use crate::engine::{Packet, Trace};
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

pub use crate::kube::node::NodeFacts;

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
    let crate::kube::node::Node {
        eng,
        node_ip,
        clients,
        notes,
    } = crate::kube::node::Node::new(rs, &mut cat, &ports, node);
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
    // `kptrace svc node.rules`: a file where the Service should be.
    if args.files.is_empty() && std::path::Path::new(&args.service).is_file() {
        return Err(Failure::Input(miette::miette!(
            help = format!(
                "name the Service first: `kptrace svc NAMESPACE/NAME {0}`; `kptrace ls {0}` lists them",
                args.service
            ),
            "`{}` is a file, and no Service is named",
            args.service
        )));
    }
    let query = match &args.namespace {
        Some(ns) if !args.service.contains('/') => format!("{ns}/{}", args.service),
        _ => args.service.clone(),
    };
    let args = &SvcArgs {
        service: query,
        files: args.files.clone(),
        namespace: None,
        format: args.format,
        node: args.node.clone(),
        ifaces: args.ifaces.clone(),
        all_paths: args.all_paths,
    };
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
