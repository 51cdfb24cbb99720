//! The narrow catalogue `svc` builds from the rules that mention its query finds exactly what
//! the full catalogue finds, whenever it finds anything (otherwise `svc` falls back to the full
//! one): for every Service port of the generated dumps, the conformance dumps and the seeds, and
//! every way of naming it.

mod common;

use kptrace::kube::{Catalog, EntryKind};
use kptrace::model::Ruleset;

fn keys(cat: &Catalog, q: &str) -> Vec<String> {
    let mut v: Vec<String> = cat
        .find(q)
        .into_iter()
        .map(|i| cat.ports[i].key.clone())
        .collect();
    v.sort();
    v
}

fn check(rs: &Ruleset, what: &str) -> usize {
    let full = Catalog::build(rs);
    let mut queries = Vec::new();
    for p in &full.ports {
        if let Some(s) = &p.service {
            queries.push(s.clone());
            if let Some(n) = &p.port_name {
                queries.push(format!("{s}:{n}"));
            }
        }
        if let Some((ip, port)) = p.cluster_ip() {
            queries.push(kptrace::kube::host_port(ip, port));
            queries.push(ip.to_string());
        }
        if let Some(np) = p.node_port() {
            queries.push(np.to_string());
        }
        for a in p.addresses(EntryKind::LoadBalancer) {
            queries.push(a.to_string());
        }
        if let Some(c) = &p.svc_chain {
            queries.push(c.clone());
        }
    }
    queries.sort();
    queries.dedup();
    let mut narrow_hits = 0;
    for q in &queries {
        let narrow = Catalog::for_query(rs, q);
        let got = keys(&narrow, q);
        if !got.is_empty() {
            narrow_hits += 1;
            assert_eq!(got, keys(&full, q), "{what}: query `{q}`");
        }
    }
    narrow_hits
}

#[test]
fn the_narrow_catalogue_agrees_with_the_full_one() {
    let mut hits = 0;
    for path in common::conformance_dumps() {
        hits += check(&common::load(&path), &path.display().to_string());
    }
    for seed in [
        "001-nginx-svc.rules",
        "003-nginx-demo-nodeport-session.txt",
        "004-testsvc-lb-listing.txt",
        "002-clusterip-nodeport-script.sh",
    ] {
        hits += check(
            &common::load(&common::fixture(&format!("seeds/{seed}"))),
            seed,
        );
    }
    for order in [
        kptrace::synth::Order::Kernel,
        kptrace::synth::Order::KubeProxy,
    ] {
        let (_, text) = kptrace::synth::generate(&kptrace::synth::Options {
            services: 600,
            order,
            ..Default::default()
        });
        let rs = kptrace::parse::read("generated", text.into_bytes(), None).unwrap();
        hits += check(&rs, "generated");
    }
    assert!(
        hits > 2000,
        "only {hits} queries found by the narrow catalogue"
    );
}
