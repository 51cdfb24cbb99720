//! The Kubernetes view: Services, their entry points and endpoints, recovered from kube-proxy's rules.
//!
//! Comments name Services when present; chain names group a Service port's chains (KUBE-SVC-, -EXT-,
//! -SVL-, -FW-, -XLB- share a hash); and when neither helps (comments turned off, hand-written rules
//! with names like `KUBE-SVC-1`), a Service port is keyed by the chain its cluster IP jumps to.

pub mod comment;
pub mod probe;
pub mod service;

use crate::model::criterion::{Dir, MultiDir};
use crate::model::*;
use ipnet::IpNet;
use rustc_hash::FxHashMap;
pub use service::{Endpoint, Entry, EntryKind, ServicePort};
use std::net::IpAddr;

/// `ip:port`, with IPv6 in brackets.
pub fn host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

const FAMILY_PREFIXES: &[&str] = &[
    "KUBE-SVC-",
    "KUBE-EXT-",
    "KUBE-SVL-",
    "KUBE-FW-",
    "KUBE-XLB-",
];

/// The hash part of a kube-proxy per-service chain name.
pub fn chain_hash(name: &str) -> Option<&str> {
    FAMILY_PREFIXES
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .filter(|h| {
            h.len() == 16
                && h.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
}

fn group_key(target: &str) -> String {
    match chain_hash(target) {
        Some(h) => format!("hash:{h}"),
        None => format!("chain:{target}"),
    }
}

/// Chains that are part of a Service's path but not Services or endpoints themselves.
pub fn is_helper_chain(name: &str) -> bool {
    name.starts_with("KUBE-MARK-") || name == "KUBE-NODEPORTS" || name == "KUBE-POSTROUTING"
}

/// All Service ports a rule set shows.
#[derive(Debug, Default)]
pub struct Catalog {
    pub ports: Vec<ServicePort>,
    /// Cluster (pod) CIDRs, from kube-proxy's `! -s CIDR … -j KUBE-MARK-MASQ` and `-s CIDR` pod rules.
    pub cluster_cidrs: Vec<IpNet>,
    /// Node addresses the rules name (`--nodeport-addresses`).
    pub node_ips: Vec<IpAddr>,
    /// Group key → index in `ports`, so building stays linear in the number of Services.
    index: FxHashMap<String, usize>,
    /// When set, only rules whose text holds one of these (or that every Service needs) are read.
    needles: Option<Vec<String>>,
}

fn dport(rule: &Rule) -> Option<u16> {
    rule.matches.iter().find_map(|m| match &m.criterion {
        Criterion::Port {
            dir: Dir::Dst,
            range,
        } if !m.negated && range.lo == range.hi => Some(range.lo),
        Criterion::Multiport {
            dir: MultiDir::Dst,
            ports,
        } if !m.negated && ports.len() == 1 && ports[0].lo == ports[0].hi => Some(ports[0].lo),
        _ => None,
    })
}

fn protocol(rule: &Rule) -> Option<Protocol> {
    rule.matches.iter().find_map(|m| match m.criterion {
        Criterion::Protocol(p) if !m.negated => Some(p),
        _ => None,
    })
}

fn host(net: IpNet) -> Option<IpAddr> {
    (net.prefix_len() == net.max_prefix_len()).then(|| net.addr())
}

fn is_local_addrtype(rule: &Rule) -> bool {
    rule.matches.iter().any(|m| {
        !m.negated
            && matches!(&m.criterion, Criterion::AddrType { dir: Dir::Dst, kinds } if kinds.contains(&criterion::AddrKind::Local))
    })
}

impl Catalog {
    /// Reads the Services of `rs`. With `resolve`, also their endpoints (for every port); without,
    /// call [`Catalog::resolve`] on the ports you need.
    /// The catalogue of the ports a query can name, reading only the rules whose text mentions
    /// it: `svc` on a 50,000-Service dump need not parse 70,000 entry rules to find one
    /// Service's. Rules that name the query carry it in their comment, address, port or chain,
    /// so the result is the full catalogue's `find(query)` whenever that finds anything; when
    /// the narrow one finds nothing (comments turned off, a typo) the caller builds the full one.
    pub fn for_query(rs: &Ruleset, query: &str) -> Catalog {
        let q = query.trim();
        let needle = if q.contains('/') {
            // `ns/name` or `ns/name:port`
            q.split(':').next().unwrap_or(q)
        } else if let Some(rest) = q.strip_prefix('[') {
            // `[v6]:port`
            rest.split(']').next().unwrap_or(q)
        } else if q.matches(':').count() == 1 {
            // `ip:port`
            q.split(':').next().unwrap_or(q)
        } else {
            q
        };
        let mut cat = Catalog {
            needles: Some(vec![needle.to_string()]),
            ..Catalog::default()
        };
        cat.scan(rs, false);
        cat
    }

    /// The rules of `chain` this catalogue reads: all of them, or with needles, those whose text
    /// holds one, plus the node-port jump and masquerade rules every Service port needs.
    fn rules_of<'a>(
        &self,
        rs: &'a Ruleset,
        chain: &'a Chain,
    ) -> impl Iterator<Item = &'a Rule> + 'a {
        let needles = self.needles.clone();
        let text: &'a str = &rs.source.text;
        (0..chain.rules.len())
            .filter(move |&i| {
                let Some(needles) = &needles else {
                    return true;
                };
                let sp = chain.rules[i].span;
                let line = text.get(sp.start as usize..sp.end as usize).unwrap_or("");
                // Rules built from other forms (listings, scripts) may not carry their text.
                line.is_empty()
                    || line.contains("KUBE-NODEPORTS")
                    || line.contains("-j KUBE-MARK-")
                    || needles.iter().any(|n| line.contains(n.as_str()))
            })
            .map(move |i| rs.rule(chain, i))
    }

    pub fn build(rs: &Ruleset, resolve: bool) -> Catalog {
        let mut cat = Catalog::default();
        cat.scan(rs, resolve);
        cat
    }

    fn scan(&mut self, rs: &Ruleset, resolve: bool) {
        let cat = self;
        if let Some(nat) = rs.table("nat") {
            cat.scan_nat(rs, nat);
        }
        if let Some(filter) = rs.table("filter") {
            cat.scan_filter(rs, filter);
        }
        if resolve {
            use rayon::prelude::*;
            let cidrs: Vec<IpNet> = cat
                .ports
                .par_iter_mut()
                .with_min_len(256)
                .flat_map_iter(|p| Self::resolve_port(rs, p))
                .collect();
            cat.cluster_cidrs.extend(cidrs);
        }
        cat.cluster_cidrs.sort();
        cat.cluster_cidrs.dedup();
    }

    fn group(&mut self, key: String) -> &mut ServicePort {
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                let i = self.ports.len();
                self.index.insert(key.clone(), i);
                self.ports.push(ServicePort {
                    key,
                    ..Default::default()
                });
                i
            }
        };
        &mut self.ports[i]
    }

    fn name_from(sp: &mut ServicePort, rule: &Rule) {
        if sp.service.is_some() {
            return;
        }
        if let Some(c) = rule.comment().and_then(comment::parse) {
            sp.service = Some(c.port.service);
            sp.port_name = c.port.port;
        }
    }

    fn scan_nat(&mut self, rs: &Ruleset, nat: &Table) {
        if let Some(services) = nat.chain("KUBE-SERVICES") {
            for rule in self.rules_of(rs, services) {
                let Some(target) = rule.jump_target() else {
                    continue;
                };
                if target == "KUBE-NODEPORTS" {
                    if let Some((false, net)) = rule.destination() {
                        if let Some(ip) = host(net) {
                            self.node_ips.push(ip);
                        }
                    }
                    continue;
                }
                if target.starts_with("KUBE-MARK-") {
                    // The pre-1.24 cluster-IP masquerade rule: `! -s <cluster CIDR> -d <cluster IP>`.
                    if let Some((true, net)) = rule.source() {
                        self.cluster_cidrs.push(net);
                    }
                    continue;
                }
                let Some((false, dst)) = rule.destination() else {
                    continue;
                };
                let (Some(address), Some(port)) = (host(dst), dport(rule)) else {
                    continue;
                };
                let tail = rule
                    .comment()
                    .and_then(comment::parse)
                    .map(|c| c.tail)
                    .unwrap_or_default();
                let kind = if tail.ends_with("external IP") {
                    EntryKind::ExternalIp
                } else if tail.ends_with("loadbalancer IP") || target.starts_with("KUBE-FW-") {
                    EntryKind::LoadBalancer
                } else if tail.ends_with("cluster IP") {
                    EntryKind::ClusterIp
                } else if target.starts_with("KUBE-EXT-") || target.starts_with("KUBE-XLB-") {
                    EntryKind::ExternalIp
                } else {
                    EntryKind::ClusterIp
                };
                let entry = Entry {
                    kind,
                    address: Some(address),
                    port,
                    protocol: protocol(rule),
                    chain: "KUBE-SERVICES".into(),
                    line: rule.line,
                    target: target.to_string(),
                };
                let sp = self.group(group_key(target));
                Self::name_from(sp, rule);
                sp.protocol = sp.protocol.or(entry.protocol);
                if !sp
                    .entries
                    .iter()
                    .any(|e| e.kind == kind && e.address == entry.address && e.port == port)
                {
                    sp.entries.push(entry);
                }
            }
        }
        if let Some(nodeports) = nat.chain("KUBE-NODEPORTS") {
            for rule in self.rules_of(rs, nodeports) {
                let Some(target) = rule.jump_target() else {
                    continue;
                };
                let Some(port) = dport(rule) else { continue };
                if target.starts_with("KUBE-MARK-") {
                    continue;
                }
                let entry = Entry {
                    kind: EntryKind::NodePort,
                    address: None,
                    port,
                    protocol: protocol(rule),
                    chain: "KUBE-NODEPORTS".into(),
                    line: rule.line,
                    target: target.to_string(),
                };
                let sp = self.group(group_key(target));
                Self::name_from(sp, rule);
                sp.protocol = sp.protocol.or(entry.protocol);
                if !sp
                    .entries
                    .iter()
                    .any(|e| e.kind == EntryKind::NodePort && e.port == port)
                {
                    sp.entries.push(entry);
                }
            }
        }
    }

    fn scan_filter(&mut self, rs: &Ruleset, filter: &Table) {
        let mut by_name: FxHashMap<(String, Option<String>), usize> = FxHashMap::default();
        for (i, p) in self.ports.iter().enumerate() {
            if let Some(s) = &p.service {
                by_name.entry((s.clone(), p.port_name.clone())).or_insert(i);
            }
        }
        for chain_name in ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES"] {
            let Some(chain) = filter.chain(chain_name) else {
                continue;
            };
            for rule in self.rules_of(rs, chain) {
                let Some(c) = rule.comment().and_then(comment::parse) else {
                    continue;
                };
                if !c.tail.contains("has no endpoints")
                    && !c.tail.contains("has no local endpoints")
                {
                    continue;
                }
                let port = dport(rule);
                let name = (c.port.service.clone(), c.port.port.clone());
                let existing = by_name.get(&name).copied();
                let idx = match existing {
                    Some(i) => i,
                    None => {
                        let key = format!(
                            "noep:{}:{}",
                            c.port.service,
                            c.port.port.clone().unwrap_or_default()
                        );
                        let sp = self.group(key.clone());
                        sp.service = Some(c.port.service.clone());
                        sp.port_name = c.port.port.clone();
                        self.index[&key]
                    }
                };
                let sp = &mut self.ports[idx];
                sp.protocol = sp.protocol.or(protocol(rule));
                sp.no_endpoint_rules
                    .push((chain_name.to_string(), rule.line, c.tail.clone()));
                if existing.is_none() {
                    if let Some(port) = port {
                        let kind = if is_local_addrtype(rule) {
                            Some(EntryKind::NodePort)
                        } else if chain_name == "KUBE-SERVICES" {
                            Some(EntryKind::ClusterIp)
                        } else {
                            Some(EntryKind::ExternalIp)
                        };
                        let address = rule.destination().filter(|d| !d.0).and_then(|d| host(d.1));
                        if let Some(kind) =
                            kind.filter(|k| *k == EntryKind::NodePort || address.is_some())
                        {
                            sp.entries.push(Entry {
                                kind,
                                address: if kind == EntryKind::NodePort {
                                    None
                                } else {
                                    address
                                },
                                port,
                                protocol: protocol(rule),
                                chain: chain_name.into(),
                                line: rule.line,
                                target: rule
                                    .target_kind()
                                    .map(|t| t.name().to_string())
                                    .unwrap_or_default(),
                            });
                        }
                    }
                }
            }
        }
    }

    /// Fills in a port's chains and endpoints.
    pub fn resolve(&mut self, rs: &Ruleset, sp: &mut ServicePort) {
        let cidrs = Self::resolve_port(rs, sp);
        self.cluster_cidrs.extend(cidrs);
        self.cluster_cidrs.sort();
        self.cluster_cidrs.dedup();
    }

    /// Fills in a port's chains and endpoints; returns the cluster CIDRs its rules reveal. Needs no
    /// catalogue state, so whole-dump commands resolve every port in parallel.
    fn resolve_port(rs: &Ruleset, sp: &mut ServicePort) -> Vec<IpNet> {
        let mut cidrs = Vec::new();
        let Some(nat) = rs.table("nat") else {
            return cidrs;
        };
        if let Some(h) = sp.key.strip_prefix("hash:") {
            let has = |p: &str| nat.chain(&format!("{p}{h}")).map(|c| c.name.to_string());
            sp.svc_chain = has("KUBE-SVC-");
            sp.ext_chain = has("KUBE-EXT-");
            sp.svl_chain = has("KUBE-SVL-");
            sp.fw_chain = has("KUBE-FW-");
            sp.xlb_chain = has("KUBE-XLB-");
        } else if let Some(c) = sp.key.strip_prefix("chain:") {
            sp.svc_chain = Some(c.to_string());
        }
        for chain in [&sp.ext_chain, &sp.xlb_chain] {
            // Pod short-circuits in EXT/XLB chains reveal the cluster CIDR.
            if let Some(c) = chain.as_ref().and_then(|c| nat.chain(c)) {
                for rule in rs.rules(c) {
                    if let (Some((false, net)), Some(t)) = (rule.source(), rule.jump_target()) {
                        if t.starts_with("KUBE-SVC-") && net.prefix_len() < net.max_prefix_len() {
                            cidrs.push(net);
                            sp.external_local = true;
                        }
                    }
                }
            }
        }
        // v1.24+: the off-cluster masquerade rule is the first rule of KUBE-SVC-:
        // `! -s <cluster CIDR> -d <cluster IP> … -j KUBE-MARK-MASQ`.
        if let Some(c) = sp.svc_chain.as_ref().and_then(|c| nat.chain(c)) {
            for rule in rs.rules(c) {
                if let (Some((true, net)), Some(t)) = (rule.source(), rule.jump_target()) {
                    if t.starts_with("KUBE-MARK-") && net.prefix_len() < net.max_prefix_len() {
                        cidrs.push(net);
                    }
                }
            }
        }
        let (eps, aff) = endpoints_of(rs, nat, sp.svc_chain.as_deref());
        sp.endpoints = eps;
        sp.affinity_seconds = aff;
        sp.external_local |= sp.xlb_chain.is_some();
        let local = sp.svl_chain.clone().or_else(|| sp.xlb_chain.clone());
        if let Some(l) = local {
            sp.local_endpoints = endpoints_of(rs, nat, Some(&l)).0;
        }
        if sp.service.is_none() {
            let mut chains: Vec<String> = [&sp.svc_chain, &sp.ext_chain, &sp.svl_chain]
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            chains.extend(sp.endpoints.iter().map(|e| e.chain.clone()));
            for name in chains {
                if let Some(c) = nat.chain(&name) {
                    for r in rs.rules(c) {
                        Self::name_from(sp, r);
                    }
                }
            }
        }
        cidrs
    }

    /// Finds Service ports by `ns/name`, `ns/name:port`, `ip:port` or chain name.
    pub fn find(&self, query: &str) -> Vec<usize> {
        let q = query.trim();
        let matches = |sp: &ServicePort| -> bool {
            if let Some(s) = &sp.service {
                if s == q {
                    return true;
                }
                let full = format!("{s}:{}", sp.port_name.as_deref().unwrap_or(""));
                if full == q || (sp.port_name.is_none() && format!("{s}:") == q) {
                    return true;
                }
            }
            if [
                &sp.svc_chain,
                &sp.ext_chain,
                &sp.svl_chain,
                &sp.fw_chain,
                &sp.xlb_chain,
            ]
            .iter()
            .any(|c| c.as_deref() == Some(q))
                || sp.key.strip_prefix("chain:") == Some(q)
                || sp.entries.iter().any(|e| e.target == q)
            {
                return true;
            }
            sp.entries.iter().any(|e| {
                e.address
                    .is_some_and(|a| host_port(a, e.port) == q || a.to_string() == q)
                    || (e.kind == EntryKind::NodePort && q.parse::<u16>() == Ok(e.port))
            })
        };
        (0..self.ports.len())
            .filter(|&i| matches(&self.ports[i]))
            .collect()
    }

    /// Names to suggest for a query that matched nothing, closest first.
    pub fn suggest(&self, query: &str) -> Vec<String> {
        let mut names: Vec<(f64, String)> = self
            .ports
            .iter()
            .filter_map(|p| p.service.clone())
            .map(|n| (strsim::jaro_winkler(query, &n), n))
            .filter(|(s, _)| *s > 0.7)
            .collect();
        names.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        names.dedup_by(|a, b| a.1 == b.1);
        names.into_iter().take(3).map(|(_, n)| n).collect()
    }
}

/// The endpoint chains a balancing chain jumps to, in rule order, and its affinity timeout.
fn endpoints_of(rs: &Ruleset, nat: &Table, chain: Option<&str>) -> (Vec<Endpoint>, Option<u32>) {
    let Some(chain) = chain.and_then(|c| nat.chain(c)) else {
        return (Vec::new(), None);
    };
    let mut eps: Vec<Endpoint> = Vec::new();
    let mut affinity = None;
    for rule in rs.rules(chain) {
        // A hand-written balancing chain may DNAT itself, with no endpoint chains.
        if let Some(TargetKind::Dnat { to: Some(to), .. }) = rule.target_kind() {
            eps.push(Endpoint {
                chain: chain.name.to_string(),
                address: Some(to.to_string()),
                from_comment: false,
            });
            continue;
        }
        let Some(t) = rule.jump_target() else {
            continue;
        };
        if is_helper_chain(t) || FAMILY_PREFIXES.iter().any(|p| t.starts_with(p)) {
            continue;
        }
        for m in rule.matches.iter() {
            if let Criterion::Recent(r) = &m.criterion {
                if r.mode == criterion::RecentMode::Rcheck {
                    affinity = affinity.or(r.seconds);
                }
            }
        }
        if eps.iter().any(|e| e.chain == t) {
            continue;
        }
        let from_rule = nat.chain(t).and_then(|c| {
            rs.rules(c).find_map(|r| match r.target_kind() {
                Some(TargetKind::Dnat { to: Some(to), .. }) => Some(to.to_string()),
                _ => None,
            })
        });
        let from_comment = rule
            .comment()
            .and_then(comment::parse)
            .and_then(|c| c.tail.strip_prefix("-> ").map(str::to_string));
        eps.push(Endpoint {
            chain: t.to_string(),
            from_comment: from_rule.is_none() && from_comment.is_some(),
            address: from_rule.or(from_comment),
        });
    }
    (eps, affinity)
}
