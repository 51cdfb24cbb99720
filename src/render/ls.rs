//! Renders `kptrace ls`: a table for people, a `services` array for machines.

use super::style::{paint, Cells, BAD, BOLD, DIM};
use crate::kube::{Catalog, EntryKind, ServicePort};
use crate::model::Ruleset;
use serde::Serialize;

fn sorted(cat: &Catalog) -> Vec<&ServicePort> {
    use rayon::prelude::*;
    let mut v: Vec<&ServicePort> = cat.ports.iter().collect();
    // The cluster IP is looked up only to break a tie: ports have distinct names.
    v.par_sort_by(|a, b| {
        (a.service.is_none(), &a.service, &a.port_name)
            .cmp(&(b.service.is_none(), &b.service, &b.port_name))
            .then_with(|| a.cluster_ip().cmp(&b.cluster_ip()))
    });
    v
}

/// New connections counted by the port's endpoint DNAT rules, when the input has counters.
fn counted(sp: &ServicePort) -> Option<u64> {
    Some(sp.counted_packets()?.iter().map(|(_, n)| n).sum())
}

/// One Service port as `ls -f json` and `svc -f json` show it (docs/json.md). Fields in the order
/// of their names, as every JSON object kptrace writes.
#[derive(Serialize)]
pub struct PortJson<'a> {
    cluster_ip: Option<String>,
    counted_packets: Option<u64>,
    endpoints: usize,
    external_ips: Vec<String>,
    /// `ipv4` or `ipv6`: the family of the dump the port is in.
    family: crate::model::Family,
    /// The dump the port is in, as named on the command line (`-` for standard input).
    input: &'a str,
    load_balancer_ips: Vec<String>,
    local_endpoints: Option<usize>,
    no_endpoints_rule: bool,
    no_local_endpoints_rule: bool,
    node_port: Option<u16>,
    port: Option<u16>,
    port_name: Option<&'a str>,
    protocol: Option<String>,
    service: Option<&'a str>,
    session_affinity_seconds: Option<u32>,
    svc_chain: Option<&'a str>,
}

pub fn port_json<'a>(rs: &'a Ruleset, sp: &'a ServicePort) -> PortJson<'a> {
    let ips = |k| -> Vec<String> { sp.addresses(k).iter().map(|a| a.to_string()).collect() };
    PortJson {
        service: sp.service.as_deref(),
        port_name: sp.port_name.as_deref(),
        protocol: sp.protocol.map(|p| p.to_string()),
        cluster_ip: sp.cluster_ip().map(|(a, _)| a.to_string()),
        port: sp.cluster_ip().map(|(_, p)| p).or_else(|| {
            sp.entries
                .iter()
                .find(|e| e.kind != EntryKind::NodePort)
                .map(|e| e.port)
        }),
        node_port: sp.node_port(),
        load_balancer_ips: ips(EntryKind::LoadBalancer),
        external_ips: ips(EntryKind::ExternalIp),
        endpoints: sp.endpoints.len(),
        local_endpoints: (sp.external_local || sp.svl_chain.is_some())
            .then_some(sp.local_endpoints.len()),
        svc_chain: sp.svc_chain.as_deref(),
        session_affinity_seconds: sp.affinity_seconds,
        no_endpoints_rule: sp.no_endpoints_rule(false),
        no_local_endpoints_rule: sp.no_endpoints_rule(true),
        family: rs.family,
        input: &rs.source.name,
        counted_packets: counted(sp),
    }
}

pub fn json(sets: &[Ruleset], cats: &[Catalog]) -> String {
    #[derive(Serialize)]
    struct Listing<'a> {
        schema_version: u32,
        notes: Vec<&'a str>,
        services: Vec<PortJson<'a>>,
    }
    let services = sets
        .iter()
        .zip(cats)
        .flat_map(|(rs, cat)| sorted(cat).into_iter().map(move |sp| port_json(rs, sp)))
        .collect();
    let notes = sets
        .iter()
        .flat_map(|rs| rs.notes.iter().map(|n| n.message.as_str()))
        .collect();
    serde_json::to_string_pretty(&Listing {
        schema_version: super::SCHEMA_VERSION,
        notes,
        services,
    })
    .unwrap()
        + "\n"
}

/// The cells of a port's row of the listing; `count`, when the listing has a column of counts.
fn row(cells: &mut Cells, sp: &ServicePort, count: Option<Option<u64>>) {
    const NONE: &str = "–";
    match &sp.service {
        Some(s) => {
            cells.push(s);
            cells.push(sp.port_name.as_deref().unwrap_or(NONE));
        }
        None => {
            cells.push(sp.display_name());
            cells.push(NONE);
        }
    }
    match sp.protocol {
        Some(p) => cells.push(p),
        None => cells.push(NONE),
    }
    match sp.cluster_ip() {
        Some((a, p)) => cells.push(crate::kube::host_port(a, p)),
        None => cells.push(NONE),
    }
    match sp.node_port() {
        Some(p) => cells.push(p),
        None => cells.push(NONE),
    }
    let mut ext: Vec<String> = sp
        .addresses(EntryKind::LoadBalancer)
        .iter()
        .map(|a| format!("{a} (LB)"))
        .collect();
    ext.extend(
        sp.addresses(EntryKind::ExternalIp)
            .iter()
            .map(|a| a.to_string()),
    );
    if ext.is_empty() {
        cells.push(NONE);
    } else {
        cells.push(ext.join(", "));
    }
    if sp.endpoints.is_empty() && !sp.no_endpoint_rules.is_empty() {
        cells.push(paint(BAD, "0 ✗ no endpoints"));
    } else if sp.external_local || sp.svl_chain.is_some() {
        cells.push(format_args!(
            "{} ({} local)",
            sp.endpoints.len(),
            sp.local_endpoints.len()
        ));
    } else {
        cells.push(sp.endpoints.len());
    }
    match count {
        Some(Some(n)) => cells.push(n),
        Some(None) => cells.push(NONE),
        None => {}
    }
    cells.push(sp.svc_chain.as_deref().unwrap_or(NONE));
}

pub fn human(sets: &[Ruleset], cats: &[Catalog]) -> String {
    let mut out = String::new();
    for (rs, cat) in sets.iter().zip(cats) {
        let ports = sorted(cat);
        let n_services = {
            let mut names: Vec<std::borrow::Cow<str>> = ports
                .iter()
                .map(|p| match &p.service {
                    Some(s) => s.as_str().into(),
                    None => p.display_name().into(),
                })
                .collect();
            names.sort();
            names.dedup();
            names.len()
        };
        out += &paint(
            BOLD,
            format!(
                "{}: {} Service{}, {} port{}, {} rules",
                rs.source.name,
                n_services,
                if n_services == 1 { "" } else { "s" },
                ports.len(),
                if ports.len() == 1 { "" } else { "s" },
                cat.rules
            ),
        );
        out.push('\n');
        if ports.is_empty() {
            out += "no Services found (no KUBE-SERVICES / KUBE-NODEPORTS rules that lead to a Service chain)\n";
        } else {
            let counts: Vec<Option<u64>> = ports.iter().map(|sp| counted(sp)).collect();
            let with_counters = counts.iter().any(Option::is_some);
            let mut header = vec![
                "service",
                "port name",
                "proto",
                "cluster IP",
                "NodePort",
                "LB / external",
                "endpoints",
            ];
            if with_counters {
                // nat rules see a connection's first packet only: these are new connections.
                header.push("conns");
            }
            header.push("chain");
            use rayon::prelude::*;
            const ROWS: usize = 1024;
            let rows: Vec<Cells> = ports
                .par_chunks(ROWS)
                .zip(counts.par_chunks(ROWS))
                .map(|(ports, counts)| {
                    let mut cells = Cells::default();
                    for (sp, count) in ports.iter().zip(counts) {
                        row(&mut cells, sp, with_counters.then_some(*count));
                    }
                    cells
                })
                .collect();
            // On a narrow screen the chain name goes first, then the protocol and the counters:
            // the Service, its addresses and its endpoints stay.
            let chain = header.len() - 1;
            let mut droppable = vec![chain, 2];
            if with_counters {
                droppable.push(7);
            }
            super::style::listing_fit(&mut out, &header, &rows, &droppable);
        }
        for n in &rs.notes {
            out += &paint(DIM, format!("note: {}\n", n.message));
        }
    }
    out
}
