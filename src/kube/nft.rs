//! What kube-proxy's nftables table tells about the cluster: the pod network its masquerade
//! rules test (`ip saddr != 10.0.0.0/8 jump mark-for-masquerade` in a `service-…` chain, `ip saddr
//! 10.0.0.0/8 goto service-…` in an `external-…` chain).

use crate::model::{Criterion, Ruleset, TargetKind};
use ipnet::IpNet;

/// The cluster CIDRs kube-proxy's nftables rules name.
pub fn cluster_cidrs(rs: &Ruleset) -> Vec<IpNet> {
    let mut out = Vec::new();
    for t in rs.tables.iter().filter(|t| t.nft.is_some()) {
        for c in &t.chains {
            let service = c.name.starts_with("service-");
            let external = c.name.starts_with("external-");
            if !service && !external {
                continue;
            }
            for r in rs.rules(c) {
                let to = match r.target.as_ref().map(|t| &t.kind) {
                    Some(TargetKind::Chain(to)) => to,
                    _ => continue,
                };
                for m in r.matches.iter() {
                    let Criterion::Source(net) = m.criterion else {
                        continue;
                    };
                    let masq = service && m.negated && &**to == "mark-for-masquerade";
                    let pods = external && !m.negated && to.starts_with("service-");
                    if masq || pods {
                        out.push(net);
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The addresses kube-proxy's nftables endpoint chains DNAT to (`dnat to 10.180.0.1:80`).
pub fn endpoint_addresses(rs: &Ruleset) -> Vec<std::net::IpAddr> {
    let mut out = Vec::new();
    for t in rs.tables.iter().filter(|t| t.nft.is_some()) {
        for c in t.chains.iter().filter(|c| c.name.starts_with("endpoint-")) {
            for r in rs.rules(c) {
                if let Some(TargetKind::Dnat { to: Some(to), .. }) =
                    r.target.as_ref().map(|t| &t.kind)
                {
                    if let Some((lo, _)) = to.addr {
                        out.push(lo);
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
