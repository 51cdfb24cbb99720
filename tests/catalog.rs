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

/// Generated dumps of `services` Services, in the kernel's option order and in kube-proxy's.
fn generated(services: usize, counters: bool) -> impl Iterator<Item = Ruleset> {
    [
        kptrace::synth::Order::Kernel,
        kptrace::synth::Order::KubeProxy,
    ]
    .into_iter()
    .map(move |order| {
        let (_, text) = kptrace::synth::generate(&kptrace::synth::Options {
            services,
            order,
            counters,
            ..Default::default()
        });
        kptrace::parse::read("generated", text.into_bytes(), None).unwrap()
    })
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

/// Every conformance dump, then the named fixtures, each with its name.
fn conformance_and(fixtures: &[&str]) -> Vec<(Ruleset, String)> {
    let conformance = common::conformance_dumps()
        .into_iter()
        .map(|path| (common::load(&path), path.display().to_string()));
    let named = fixtures
        .iter()
        .map(|name| (common::load(&common::fixture(name)), name.to_string()));
    conformance.chain(named).collect()
}

#[test]
fn the_narrow_catalogue_agrees_with_the_full_one() {
    let mut hits = 0;
    let dumps = conformance_and(&[
        "seeds/001-nginx-svc.rules",
        "seeds/003-nginx-demo-nodeport-session.txt",
        "seeds/004-testsvc-lb-listing.txt",
        "seeds/002-clusterip-nodeport-script.sh",
    ]);
    for (rs, name) in dumps {
        hits += check(&rs, &name);
    }
    for rs in generated(600, false) {
        hits += check(&rs, "generated");
    }
    assert!(
        hits > 2000,
        "only {hits} queries found by the narrow catalogue"
    );
}

/// What `ls` and `lint` say of a port, from either way of resolving it.
fn summary(p: &kptrace::kube::ServicePort) -> String {
    let chains = |eps: &[kptrace::kube::Endpoint]| -> Vec<String> {
        eps.iter()
            .map(|e| format!("{}:{:?}", e.chain, e.packets))
            .collect()
    };
    format!(
        "{} {:?} {:?} {:?} {:?} {:?} {:?} local={} {:?} eps={:?} local_eps={:?}",
        p.key,
        p.service,
        p.port_name,
        p.svc_chain,
        p.ext_chain,
        p.svl_chain,
        p.xlb_chain,
        p.external_local,
        p.affinity_seconds,
        chains(&p.endpoints),
        chains(&p.local_endpoints),
    )
}

fn resolve_both_ways(rs: &Ruleset, what: &str) -> usize {
    // One sweep over the whole dump, keeping facts of each chain…
    let swept = Catalog::build_resolved(rs);
    // …and port by port, reading each port's chains as `svc` does.
    let mut one_by_one = Catalog::build(rs);
    let mut ports = std::mem::take(&mut one_by_one.ports);
    for p in &mut ports {
        one_by_one.resolve(rs, p);
    }
    assert_eq!(swept.ports.len(), ports.len(), "{what}");
    for (a, b) in swept.ports.iter().zip(&ports) {
        assert_eq!(summary(a), summary(b), "{what}");
    }
    assert_eq!(swept.cluster_cidrs, one_by_one.cluster_cidrs, "{what}");
    ports.iter().map(|p| p.endpoints.len()).sum()
}

#[test]
fn the_whole_dump_catalogue_resolves_every_port_as_svc_does() {
    let mut endpoints = 0;
    let dumps = conformance_and(&[
        "seeds/001-nginx-svc.rules",
        "seeds/003-nginx-demo-nodeport-session.txt",
        "valid/counters-30-services.rules",
        "valid/hand-named-service-chain.rules",
    ]);
    for (rs, name) in dumps {
        endpoints += resolve_both_ways(&rs, &name);
    }
    for rs in generated(400, true) {
        endpoints += resolve_both_ways(&rs, "generated");
    }
    assert!(endpoints > 1000, "only {endpoints} endpoints compared");
}

/// `ls` and `lint` on a large dump must not hold every parsed rule: the sweep reads each chain's
/// rules for the visit and drops them.
#[test]
fn the_whole_dump_catalogue_keeps_no_rule_parsed() {
    let (_, text) = kptrace::synth::generate(&kptrace::synth::Options {
        services: 300,
        ..Default::default()
    });
    let rs = kptrace::parse::read("generated", text.into_bytes(), None).unwrap();
    let cat = Catalog::build_resolved(&rs);
    assert!(cat.ports.iter().any(|p| !p.endpoints.is_empty()));
    let findings = kptrace::lint::run(&rs, &Default::default());
    let mut pending = 0;
    for t in &rs.tables {
        for c in &t.chains {
            // A chain whose rules are still an unread run of lines: nothing parsed, nothing kept.
            // Endpoint and balancing chains are the bulk of a dump: none may stay parsed. (The
            // few hook and helper chains that whole-dump checks trace through may.)
            let bulk = ["KUBE-SEP-", "KUBE-SVC-", "KUBE-SVL-"]
                .iter()
                .any(|p| c.name.starts_with(p));
            if bulk && c.rules.count() > 0 {
                assert!(
                    c.rules.run_lines().is_some(),
                    "{} {}: rules kept after a whole-dump pass ({} findings)",
                    t.name,
                    c.name,
                    findings.len()
                );
                pending += 1;
            }
        }
    }
    assert!(pending > 1000, "{pending}");
}

/// `svc` reads one Service's chains and the few chains other tools own, never every endpoint
/// chain of the dump (looking for interface names once did, and took 50,000-Service `svc` from
/// 0.2 s to 0.8 s).
#[test]
fn svc_of_one_service_leaves_the_other_services_chains_unread() {
    let (_, text) = kptrace::synth::generate(&kptrace::synth::Options {
        services: 300,
        ..Default::default()
    });
    let rs = kptrace::parse::read("generated", text.into_bytes(), None).unwrap();
    let cat = Catalog::build(&rs);
    let q = cat.ports[0].display_name();
    let (reports, _) = kptrace::app::svc::analyse(&rs, &q, &[]);
    assert!(!reports.is_empty());
    let (mut read, mut bulk) = (0, 0);
    for t in &rs.tables {
        for c in t.chains.iter().filter(|c| c.name.starts_with("KUBE-SEP-")) {
            bulk += 1;
            if c.rules.count() > 0 && c.rules.run_lines().is_none() {
                read += 1;
            }
        }
    }
    let own = reports[0].port.endpoints.len() + reports[0].port.local_endpoints.len();
    assert!(bulk > 500, "{bulk}");
    assert!(
        read <= own + 10,
        "{read} of {bulk} endpoint chains were read for one Service of {own} endpoints"
    );
}
