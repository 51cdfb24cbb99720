//! The cluster [`crate::synth`] draws, as kube-proxy's nftables mode (1.34+ layout) writes it:
//! the `add table/chain/set/map/rule/element …` transaction `nft -f` reads. For tests (the
//! generator's truth against `svc`) and benchmarks (`gendump --mode nftables`).

use crate::synth::{Cluster, Port, Service, CLUSTER_CIDR, NODE_IP};
use data_encoding::BASE32;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// `HASH-ns/name/proto/port`, HASH the first 8 characters of base32(sha256) of the rest.
fn base(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!("{}-{text}", &BASE32.encode(&digest)[..8])
}

/// The name kube-proxy gives a port's chains after their prefix (`service-`, `external-`…).
pub fn port_base(svc: &Service, port: &Port) -> String {
    let pname = port.name.rsplit(':').next().unwrap_or("");
    base(&format!(
        "{}/{}/{}/{pname}",
        svc.namespace,
        svc.name,
        port.proto.name()
    ))
}

/// An endpoint's chain: `endpoint-HASH-ns/name/proto/port__IP/PORT`.
pub fn endpoint_chain(svc: &Service, port: &Port, ip: std::net::Ipv4Addr, tport: u16) -> String {
    let pname = port.name.rsplit(':').next().unwrap_or("");
    format!(
        "endpoint-{}",
        base(&format!(
            "{}/{}/{}/{pname}__{ip}/{tport}",
            svc.namespace,
            svc.name,
            port.proto.name()
        ))
    )
}

const T: &str = "ip kube-proxy";

/// The whole table, declarations first (as `nft -f` needs them), then rules and elements.
pub fn write(cluster: &Cluster) -> String {
    let mut decl = String::with_capacity(cluster.services.len() * 2048);
    let mut body = String::with_capacity(cluster.services.len() * 4096);
    let d = &mut decl;
    let _ = writeln!(d, "add table {T} {{ comment \"rules for kube-proxy\" ; }}");
    for (name, ty, comment) in [
        ("cluster-ips", "ipv4_addr", "Active ClusterIPs"),
        (
            "nodeport-ips",
            "ipv4_addr",
            "IPs that accept NodePort traffic",
        ),
    ] {
        let _ = writeln!(
            d,
            "add set {T} {name} {{ type {ty} ; comment \"{comment}\" ; }}"
        );
    }
    for (name, ty, comment) in [
        (
            "firewall-ips",
            "ipv4_addr . inet_proto . inet_service",
            "destinations that are subject to LoadBalancerSourceRanges",
        ),
        (
            "no-endpoint-nodeports",
            "inet_proto . inet_service",
            "vmap to drop or reject packets to service nodeports with no endpoints",
        ),
        (
            "no-endpoint-services",
            "ipv4_addr . inet_proto . inet_service",
            "vmap to drop or reject packets to services with no endpoints",
        ),
        (
            "service-ips",
            "ipv4_addr . inet_proto . inet_service",
            "ClusterIP, ExternalIP and LoadBalancer IP traffic",
        ),
        (
            "service-nodeports",
            "inet_proto . inet_service",
            "NodePort traffic",
        ),
    ] {
        let _ = writeln!(
            d,
            "add map {T} {name} {{ type {ty} : verdict ; comment \"{comment}\" ; }}"
        );
    }
    for (name, spec) in [
        (
            "filter-prerouting-pre-dnat",
            "type filter hook prerouting priority -110",
        ),
        (
            "filter-output-pre-dnat",
            "type filter hook output priority -110",
        ),
        ("filter-forward", "type filter hook forward priority 0"),
        ("filter-input", "type filter hook input priority 0"),
        ("filter-output", "type filter hook output priority 0"),
        ("nat-output", "type nat hook output priority -100"),
        ("nat-postrouting", "type nat hook postrouting priority 100"),
        ("nat-prerouting", "type nat hook prerouting priority -100"),
    ] {
        let _ = writeln!(d, "add chain {T} {name} {{ {spec} ; }}");
    }
    for name in [
        "cluster-ips-check",
        "firewall-check",
        "mark-for-masquerade",
        "masquerading",
        "nodeport-endpoints-check",
        "reject-chain",
        "services",
        "service-endpoints-check",
    ] {
        let _ = writeln!(d, "add chain {T} {name}");
    }
    let b = &mut body;
    for (chain, rule) in [
        ("cluster-ips-check", "ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\""),
        ("cluster-ips-check", "ip daddr { 172.20.0.0/16 } drop comment \"Drop traffic to unallocated ClusterIPs\""),
        ("filter-prerouting-pre-dnat", "ct state new jump firewall-check"),
        ("filter-forward", "ct state new jump service-endpoints-check"),
        ("filter-forward", "ct state new jump cluster-ips-check"),
        ("filter-input", "ct state new jump nodeport-endpoints-check"),
        ("filter-input", "ct state new jump service-endpoints-check"),
        ("filter-output", "ct state new jump service-endpoints-check"),
        ("filter-output", "ct state new jump cluster-ips-check"),
        ("filter-output-pre-dnat", "ct state new jump firewall-check"),
        ("firewall-check", "ip daddr . meta l4proto . th dport vmap @firewall-ips"),
        ("mark-for-masquerade", "mark set mark or 0x4000"),
        ("masquerading", "mark and 0x4000 == 0 return"),
        ("masquerading", "mark set mark xor 0x4000"),
        ("masquerading", "masquerade fully-random"),
        ("nat-output", "jump services"),
        ("nat-postrouting", "jump masquerading"),
        ("nat-prerouting", "jump services"),
        ("nodeport-endpoints-check", "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports"),
        ("reject-chain", "reject"),
        ("services", "ip daddr . meta l4proto . th dport vmap @service-ips"),
        ("services", "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"),
        ("service-endpoints-check", "ip daddr . meta l4proto . th dport vmap @no-endpoint-services"),
    ] {
        let _ = writeln!(b, "add rule {T} {chain} {rule}");
    }
    let _ = writeln!(b, "add element {T} nodeport-ips {{ {NODE_IP} }}");
    for svc in &cluster.services {
        for port in &svc.ports {
            write_port(&mut decl, &mut body, svc, port);
        }
    }
    decl + &body
}

fn write_port(d: &mut String, b: &mut String, svc: &Service, port: &Port) {
    let pb = port_base(svc, port);
    let (service, external, local, firewall) = (
        format!("service-{pb}"),
        format!("external-{pb}"),
        format!("local-{pb}"),
        format!("firewall-{pb}"),
    );
    let proto = port.proto.name();
    let cip = svc.cluster_ip;
    let comment = format!(
        "{}/{}:{}",
        svc.namespace,
        svc.name,
        port.name.rsplit(':').next().unwrap_or("")
    );
    let _ = writeln!(b, "add element {T} cluster-ips {{ {cip} }}");
    let eps = &port.endpoints;
    let locals: Vec<_> = eps.iter().filter(|e| e.local).collect();
    let external_way = port.node_port.is_some() || svc.load_balancer_ip.is_some();
    // The no-endpoint maps' elements, `verdict` for each: the cluster IP's (when given), the
    // NodePort's, the load balancer's.
    let no_endpoints = |b: &mut String, cluster: Option<std::net::Ipv4Addr>, verdict: &str| {
        let service = |b: &mut String, ip: std::net::Ipv4Addr| {
            let _ = writeln!(
                b,
                "add element {T} no-endpoint-services {{ {ip} . {proto} . {} comment \"{comment}\" : {verdict} }}",
                port.port
            );
        };
        if let Some(ip) = cluster {
            service(b, ip);
        }
        if let Some(np) = port.node_port {
            let _ = writeln!(
                b,
                "add element {T} no-endpoint-nodeports {{ {proto} . {np} comment \"{comment}\" : {verdict} }}"
            );
        }
        if let Some(lb) = svc.load_balancer_ip {
            service(b, lb);
        }
    };
    if eps.is_empty() {
        no_endpoints(b, Some(cip), "goto reject-chain");
        return;
    }
    let _ = writeln!(d, "add chain {T} {service}");
    let _ = writeln!(
        b,
        "add rule {T} {service} ip daddr {cip} {proto} dport {} ip saddr != {CLUSTER_CIDR} jump mark-for-masquerade",
        port.port
    );
    let ep_chains: Vec<String> = eps
        .iter()
        .map(|e| endpoint_chain(svc, port, e.ip, e.port))
        .collect();
    for (e, c) in eps.iter().zip(&ep_chains) {
        let _ = writeln!(d, "add chain {T} {c}");
        if svc.affinity {
            let set = format!("affinity-{}", &c["endpoint-".len()..]);
            let _ = writeln!(
                d,
                "add set {T} {set} {{ type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }}"
            );
            let _ = writeln!(b, "add rule {T} {service} ip saddr @{set} goto {c}");
            let _ = writeln!(
                b,
                "add rule {T} {c} ip saddr {} jump mark-for-masquerade",
                e.ip
            );
            let _ = writeln!(b, "add rule {T} {c} update @{set} {{ ip saddr }}");
        } else {
            let _ = writeln!(
                b,
                "add rule {T} {c} ip saddr {} jump mark-for-masquerade",
                e.ip
            );
        }
        let _ = writeln!(
            b,
            "add rule {T} {c} meta l4proto {proto} dnat to {}:{}",
            e.ip, e.port
        );
    }
    let numgen = |chains: &[&String]| -> String {
        let items: Vec<String> = chains
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{i} : goto {c}"))
            .collect();
        format!(
            "numgen random mod {} vmap {{ {} }}",
            chains.len(),
            items.join(" , ")
        )
    };
    let all: Vec<&String> = ep_chains.iter().collect();
    let _ = writeln!(b, "add rule {T} {service} {}", numgen(&all));
    let _ = writeln!(
        b,
        "add element {T} service-ips {{ {cip} . {proto} . {} : goto {service} }}",
        port.port
    );
    if !external_way {
        return;
    }
    let _ = writeln!(d, "add chain {T} {external}");
    if svc.local_policy {
        let _ = writeln!(b, "add rule {T} {external} ip saddr {CLUSTER_CIDR} goto {service} comment \"short-circuit pod traffic\"");
        let _ = writeln!(b, "add rule {T} {external} fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"");
        let _ = writeln!(b, "add rule {T} {external} fib saddr type local goto {service} comment \"short-circuit local traffic\"");
        if locals.is_empty() {
            no_endpoints(b, None, "drop");
        } else {
            let _ = writeln!(d, "add chain {T} {local}");
            let _ = writeln!(b, "add rule {T} {external} goto {local}");
            let lc: Vec<&String> = eps
                .iter()
                .zip(&ep_chains)
                .filter(|(e, _)| e.local)
                .map(|(_, c)| c)
                .collect();
            let _ = writeln!(b, "add rule {T} {local} {}", numgen(&lc));
        }
    } else {
        let _ = writeln!(b, "add rule {T} {external} jump mark-for-masquerade");
        let _ = writeln!(b, "add rule {T} {external} goto {service}");
    }
    if let Some(np) = port.node_port {
        let _ = writeln!(
            b,
            "add element {T} service-nodeports {{ {proto} . {np} : goto {external} }}"
        );
    }
    if let Some(lb) = svc.load_balancer_ip {
        let _ = writeln!(
            b,
            "add element {T} service-ips {{ {lb} . {proto} . {} : goto {external} }}",
            port.port
        );
        if !svc.source_ranges.is_empty() {
            let _ = writeln!(d, "add chain {T} {firewall}");
            let _ = writeln!(
                b,
                "add rule {T} {firewall} ip saddr != {{ {} }} drop",
                svc.source_ranges.join(", ")
            );
            let _ = writeln!(
                b,
                "add element {T} firewall-ips {{ {lb} . {proto} . {} : goto {firewall} }}",
                port.port
            );
        }
    }
}
