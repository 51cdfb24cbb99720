//! `kptrace svc`: every way into a Service, what each reaches, with what share, and masquerading.

use super::input::{self, FormatChoice};
use super::Failure;
use crate::cli::{Format, SvcArgs};
use crate::model::Ruleset;
use std::process::ExitCode;

pub use crate::kube::analysis::{analyse, analyse_with, NodeFacts, PortReport};

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
        endpoints: args.endpoints,
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
        Format::Human => crate::render::svc::human(&all, args.all_paths, args.endpoints),
    };
    anstream::print!("{out}");
    let fails = all
        .iter()
        .flat_map(|(_, reports)| reports)
        .any(crate::render::svc::fails);
    // Freeing a large rule set piece by piece only delays the exit.
    std::mem::forget(sets);
    // docs/exit-codes.md: 3 when some way in certainly fails, so scripts can tell a broken Service
    // from a missing one (1) and from bad input (2).
    Ok(if fails {
        ExitCode::from(super::EXIT_FAILS)
    } else {
        ExitCode::SUCCESS
    })
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
