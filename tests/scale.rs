//! Every Service of a generated 10,000-Service dump traces to exactly the endpoints, shares,
//! masquerading and drops its rules imply.
//!
//! The expectations come from the generator's own description of the cluster and the probability
//! texts it printed, converted here the way the kernel stores them (`round(p·2³¹)/2³¹`) and multiplied
//! down the ladder — independently of kptrace's parser and engine.

use kptrace::engine::state::Verdict;
use kptrace::engine::{Engine, Entry, Packet, Trace};
use kptrace::model::Protocol;
use kptrace::synth::{self, Cluster, Endpoint, Options, Order, Port, Proto, Service, NODE_IP};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

const POD: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Inside the `192.0.2.0/25` source range the generator gives half of the filtered load balancers.
const ALLOWED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 5);

fn kernel_probability(text: &str) -> f64 {
    let p: f64 = text.parse().unwrap();
    (p * 2147483648.0).round() / 2147483648.0
}

/// Shares of a statistic ladder: p₁, (1−p₁)p₂, …, and the rest for the last rule.
fn ladder(probabilities: &[Option<&str>]) -> Vec<f64> {
    let mut rest = 1.0;
    probabilities
        .iter()
        .map(|p| match p {
            Some(t) => {
                let k = kernel_probability(t);
                let share = rest * k;
                rest *= 1.0 - k;
                share
            }
            None => std::mem::replace(&mut rest, 0.0),
        })
        .collect()
}

#[derive(Debug, PartialEq)]
enum Expect {
    /// destination → share, and whether the source is masqueraded
    Endpoints(BTreeMap<String, f64>, bool),
    Verdict(Verdict),
}

fn endpoints_expect(eps: &[&Endpoint], probs: &[Option<&str>], masq: bool) -> Expect {
    let shares = ladder(probs);
    Expect::Endpoints(
        eps.iter()
            .zip(shares)
            .map(|(e, s)| (format!("{}:{}", e.ip, e.port), s))
            .collect(),
        masq,
    )
}

fn all_endpoints(port: &Port, masq: bool) -> Expect {
    let eps: Vec<&Endpoint> = port.endpoints.iter().collect();
    let probs: Vec<Option<&str>> = eps.iter().map(|e| e.probability.as_deref()).collect();
    endpoints_expect(&eps, &probs, masq)
}

/// What traffic from outside the cluster meets at a NodePort or load balancer IP.
fn external_expect(svc: &Service, port: &Port) -> Expect {
    if port.endpoints.is_empty() {
        return Expect::Verdict(Verdict::Reject);
    }
    if svc.local_policy {
        let local: Vec<&Endpoint> = port.endpoints.iter().filter(|e| e.local).collect();
        if local.is_empty() {
            return Expect::Verdict(Verdict::Drop);
        }
        let probs: Vec<Option<&str>> = port
            .local_probabilities
            .iter()
            .map(|p| p.as_deref())
            .collect();
        // Local policy keeps the client's address.
        return endpoints_expect(&local, &probs, false);
    }
    all_endpoints(port, true)
}

fn observed(t: &Trace) -> Expect {
    if t.outcomes.iter().all(|o| o.dnat.is_none()) && t.outcomes.len() == 1 {
        return Expect::Verdict(t.outcomes[0].verdict);
    }
    let masq = t.outcomes.iter().all(|o| o.masquerade);
    let any_masq = t.outcomes.iter().any(|o| o.masquerade);
    assert_eq!(masq, any_masq, "mixed masquerade in {:?}", t.outcomes);
    Expect::Endpoints(
        t.outcomes
            .iter()
            .map(|o| {
                (
                    o.dnat.clone().unwrap_or_else(|| format!("{:?}", o.verdict)),
                    o.probability,
                )
            })
            .collect(),
        masq,
    )
}

fn same(got: &Expect, want: &Expect) -> bool {
    match (got, want) {
        (Expect::Endpoints(g, gm), Expect::Endpoints(w, wm)) => {
            gm == wm
                && g.len() == w.len()
                && g.iter()
                    .zip(w)
                    .all(|((gk, gv), (wk, wv))| gk == wk && (gv - wv).abs() <= 1e-12)
        }
        _ => got == want,
    }
}

fn proto(p: Proto) -> Protocol {
    match p {
        Proto::Tcp => Protocol::Tcp,
        Proto::Udp => Protocol::Udp,
    }
}

/// Every probe of every Service port: (description, packet, entry, expectation).
fn probes(cluster: &Cluster) -> Vec<(String, Packet, Entry, Expect)> {
    let mut v = Vec::new();
    for svc in &cluster.services {
        for port in &svc.ports {
            let p = proto(port.proto);
            let cip = IpAddr::V4(svc.cluster_ip);
            let none = port.endpoints.is_empty();
            let name = |what: &str| format!("{} {what}", port.name);
            v.push((
                name("cluster IP from a pod"),
                Packet::new(IpAddr::V4(POD), cip, p, port.port),
                Entry::Prerouting,
                if none {
                    Expect::Verdict(Verdict::Reject)
                } else {
                    all_endpoints(port, false)
                },
            ));
            v.push((
                name("cluster IP from the node"),
                Packet::new(IpAddr::V4(NODE_IP), cip, p, port.port),
                Entry::Output,
                if none {
                    Expect::Verdict(Verdict::Reject)
                } else {
                    all_endpoints(port, true)
                },
            ));
            if let Some(np) = port.node_port {
                v.push((
                    name("NodePort from outside"),
                    Packet::new(IpAddr::V4(OUTSIDE), IpAddr::V4(NODE_IP), p, np),
                    Entry::Prerouting,
                    external_expect(svc, port),
                ));
            }
            if let Some(lb) = svc.load_balancer_ip {
                let filtered = !svc.source_ranges.is_empty();
                v.push((
                    name("load balancer from outside"),
                    Packet::new(IpAddr::V4(OUTSIDE), IpAddr::V4(lb), p, port.port),
                    Entry::Prerouting,
                    if filtered && !none {
                        Expect::Verdict(Verdict::Drop)
                    } else {
                        external_expect(svc, port)
                    },
                ));
                if filtered {
                    v.push((
                        name("load balancer from an allowed source"),
                        Packet::new(IpAddr::V4(ALLOWED), IpAddr::V4(lb), p, port.port),
                        Entry::Prerouting,
                        external_expect(svc, port),
                    ));
                }
            }
        }
    }
    v
}

fn check(services: usize, order: Order) {
    let (cluster, text) = synth::generate(&Options {
        services,
        order,
        ..Options::default()
    });
    let rs = kptrace::parse::read("generated", text.into_bytes(), None)
        .unwrap_or_else(|f| panic!("{:?}", f.report()));
    let mut eng = Engine::new(&rs, &[IpAddr::V4(NODE_IP)]);
    for svc in cluster.services.iter().filter(|s| s.affinity) {
        for e in svc.ports.iter().flat_map(|p| p.endpoints.iter()) {
            eng.learn_affinity(&e.chain, Some(synth::AFFINITY_SECONDS));
        }
    }
    let probes = probes(&cluster);
    let failures: Vec<String> = probes
        .par_iter()
        .filter_map(|(what, pkt, entry, want)| {
            let t = eng.trace(pkt, *entry);
            if t.approximate() {
                return Some(format!("{what}: approximate answer {:?}", t.outcomes));
            }
            let got = observed(&t);
            (!same(&got, want)).then(|| format!("{what}: got {got:?}, want {want:?}"))
        })
        .collect();
    assert!(rs.take_errors().is_empty());
    assert!(
        failures.is_empty(),
        "{} of {} probes disagree; first: {:#?}",
        failures.len(),
        probes.len(),
        &failures[..failures.len().min(5)]
    );
    // The mix the generator promises is actually exercised.
    let count = |f: &dyn Fn(&Service) -> bool| cluster.services.iter().filter(|s| f(s)).count();
    assert!(count(&|s| s.local_policy) > 0 && count(&|s| !s.source_ranges.is_empty()) > 0);
    assert!(count(&|s| s.affinity) > 0 && count(&|s| s.ports[0].endpoints.is_empty()) > 0);
    assert!(count(&|s| s.ports[0].endpoints.len() > 50) > 0 || services < 5000);
}

#[test]
fn every_service_of_a_10k_dump_traces_exactly_kernel_order() {
    check(10_000, Order::Kernel);
}

#[test]
fn every_service_of_a_2k_dump_traces_exactly_kube_proxy_order() {
    check(2_000, Order::KubeProxy);
}

#[test]
fn svc_of_a_service_without_endpoints_keeps_its_pod_row() {
    // The cluster CIDR is the node's, not the Service's: a Service without endpoints has no
    // KUBE-SVC- chain to carry it, and `svc` still shows a pod client, rejected as the rules say.
    let (cluster, text) = synth::generate(&Options {
        services: 300,
        ..Options::default()
    });
    let rs = kptrace::parse::read("generated", text.into_bytes(), None).unwrap();
    let mut checked = 0;
    for svc in cluster
        .services
        .iter()
        .filter(|s| s.ports[0].endpoints.is_empty())
        .take(5)
    {
        let q = svc.ports[0].name.clone();
        let (reports, _) = kptrace::app::svc::analyse(&rs, &q, &[IpAddr::V4(NODE_IP)]);
        let r = reports.first().unwrap_or_else(|| panic!("{q}: not found"));
        let (p, t) = r
            .probes
            .iter()
            .find(|(p, _)| p.from == kptrace::kube::probe::From::Pod)
            .unwrap_or_else(|| panic!("{q}: no pod row"));
        let cidr: ipnet::IpNet = synth::CLUSTER_CIDR.parse().unwrap();
        assert!(
            cidr.contains(&p.source),
            "{q}: pod source {} outside the cluster CIDR",
            p.source
        );
        assert_eq!(t.outcomes.len(), 1, "{q}: {:#?}", t.outcomes);
        assert_eq!(t.outcomes[0].verdict, Verdict::Reject, "{q}");
        checked += 1;
    }
    assert!(checked > 0);
}
