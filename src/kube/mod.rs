//! The Kubernetes view: Services, their entry points and endpoints, recovered from kube-proxy's rules.
//!
//! Comments name Services when present; chain names group a Service port's chains (KUBE-SVC-, -EXT-,
//! -SVL-, -FW-, -XLB- share a hash); and when neither helps (comments turned off, hand-written rules
//! with names like `KUBE-SVC-1`), a Service port is keyed by the chain its cluster IP jumps to.

pub mod analysis;
pub mod comment;
pub mod facts;
pub mod ifaces;
pub mod nft;
pub mod node;
pub mod owner;
pub mod probe;
pub mod service;

use crate::model::criterion::{Dir, MultiDir};
use crate::model::*;
use facts::{dnat_of, dnat_packets, ChainFacts};
use ipnet::IpNet;
use rustc_hash::FxHashMap;
pub use service::{Endpoint, Entry, EntryKind, ServicePort};
use std::net::IpAddr;

/// `ip:port`, with IPv6 in brackets.
pub use crate::model::print::host_port;

/// The chains whose facts a port reads ([`ServicePort::chains`]), as kube-proxy names them.
const PORT_CHAIN_PREFIXES: &[&str] = &["KUBE-SVC-", "KUBE-EXT-", "KUBE-SVL-", "KUBE-XLB-"];

const FAMILY_PREFIXES: &[&str] = &[
    "KUBE-SVC-",
    "KUBE-EXT-",
    "KUBE-SVL-",
    "KUBE-FW-",
    "KUBE-XLB-",
];

/// kube-proxy's per-Service chain families, endpoint chains included.
pub const SERVICE_CHAIN_PREFIXES: &[&str] = &[
    "KUBE-SVC-",
    "KUBE-SVL-",
    "KUBE-EXT-",
    "KUBE-FW-",
    "KUBE-XLB-",
    "KUBE-SEP-",
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

/// The facts of a port's SVC, EXT, SVL and XLB chains (see [`ServicePort::chains`]).
type PortFacts = [Option<Box<ChainFacts>>; 4];

/// All Service ports a rule set shows.
#[derive(Debug, Default)]
pub struct Catalog {
    pub ports: Vec<ServicePort>,
    /// Cluster (pod) CIDRs, from kube-proxy's `! -s CIDR … -j KUBE-MARK-MASQ` and `-s CIDR` pod rules.
    pub cluster_cidrs: Vec<IpNet>,
    /// Node addresses the rules name (`--nodeport-addresses`).
    pub node_ips: Vec<IpAddr>,
    /// Rules in the rule set it was read from.
    pub rules: usize,
    /// Group key → index in `ports`, so building stays linear in the number of Services.
    index: FxHashMap<String, usize>,
    /// When set, only rules whose text holds one of these (or that every Service needs) are read.
    needles: Option<Vec<String>>,
    /// What the input does not show of the Services it holds (for the commands to say).
    pub notes: Vec<String>,
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

/// What one rule of KUBE-SERVICES or KUBE-NODEPORTS tells the catalogue.
enum EntryRule {
    /// `-d <node IP> … -j KUBE-NODEPORTS`: an address `--nodeport-addresses` allows.
    NodeIp(IpAddr),
    /// The pre-1.24 cluster-IP masquerade rule: `! -s <cluster CIDR> -d <cluster IP> -j KUBE-MARK-MASQ`.
    ClusterCidr(IpNet),
    /// A way into a Service port, and the port its comment names.
    Entry(Entry, Option<comment::PortRef>),
}

fn read_services_rule(rule: &Rule) -> Option<EntryRule> {
    let target = rule.jump_target()?;
    if target == "KUBE-NODEPORTS" {
        return match rule.destination() {
            Some((false, net)) => host(net).map(EntryRule::NodeIp),
            _ => None,
        };
    }
    if target.starts_with("KUBE-MARK-") {
        return match rule.source() {
            Some((true, net)) => Some(EntryRule::ClusterCidr(net)),
            _ => None,
        };
    }
    let Some((false, dst)) = rule.destination() else {
        return None;
    };
    let (address, port) = (host(dst)?, dport(rule)?);
    let c = rule.comment().and_then(comment::parse);
    let tail = c.as_ref().map(|c| c.tail.as_str()).unwrap_or_default();
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
        chain: "KUBE-SERVICES",
        line: rule.line,
        target: target.to_string(),
    };
    Some(EntryRule::Entry(entry, c.map(|c| c.port)))
}

fn read_nodeports_rule(rule: &Rule) -> Option<EntryRule> {
    let target = rule.jump_target()?;
    let port = dport(rule)?;
    if target.starts_with("KUBE-MARK-") {
        return None;
    }
    let entry = Entry {
        kind: EntryKind::NodePort,
        address: None,
        port,
        protocol: protocol(rule),
        chain: "KUBE-NODEPORTS",
        line: rule.line,
        target: target.to_string(),
    };
    let name = rule.comment().and_then(comment::parse).map(|c| c.port);
    Some(EntryRule::Entry(entry, name))
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
        cat.scan(rs);
        cat
    }

    /// What `read` makes of the rules of `chain` this catalogue reads: all of them, or with needles,
    /// those whose text holds one, plus the node-port jump and masquerade rules every Service port
    /// needs. A catalogue of the whole dump reads the 100,000 entry rules of a large dump on all
    /// cores and keeps none of them parsed.
    fn read_chain<T: Send>(
        &self,
        rs: &Ruleset,
        chain: &Chain,
        read: impl Fn(&Rule) -> Option<T> + Sync + Send,
    ) -> Vec<T> {
        let Some(needles) = &self.needles else {
            return rs.map_rules(chain, read);
        };
        let text: &str = &rs.source.text;
        (0..chain.rules.len())
            .filter(|&i| {
                let sp = chain.rules[i].span;
                let line = text.get(sp.start as usize..sp.end as usize).unwrap_or("");
                // Rules built from other forms (listings, scripts) may not carry their text.
                line.is_empty()
                    || line.contains("KUBE-NODEPORTS")
                    || line.contains("-j KUBE-MARK-")
                    || needles.iter().any(|n| line.contains(n.as_str()))
            })
            .filter_map(|i| read(rs.rule(chain, i)))
            .collect()
    }

    /// The Service ports of `rs` with their entry points; call [`Catalog::resolve`] on the ports
    /// whose endpoints you need.
    pub fn build(rs: &Ruleset) -> Catalog {
        let mut cat = Catalog::default();
        cat.scan(rs);
        cat
    }

    /// Every Service port of `rs` with its entry points, chains and endpoint counts, for commands
    /// about the whole dump. Reads every rule of the dump once, in one sweep that keeps no rule
    /// parsed (so every parse error is known after it); endpoint addresses are not looked up.
    pub fn build_resolved(rs: &Ruleset) -> Catalog {
        Self::build_resolved_with(rs, |_, _| (), |_, _, _| ())
    }

    /// [`Catalog::build_resolved`], and what `visit` makes of every chain of every table, in the
    /// same sweep: a whole-dump command that needs more than the Services reads the dump once,
    /// not twice. `sink` gets the results a window at a time: (table index, id of the window's
    /// first chain, results in chain order).
    pub fn build_resolved_with<T: Send>(
        rs: &Ruleset,
        visit: impl Fn(usize, &Visit<'_>) -> T + Sync,
        mut sink: impl FnMut(usize, ChainId, Vec<T>) + Send,
    ) -> Catalog {
        use rayon::prelude::*;
        let nat_index = rs.tables.iter().position(|t| &*t.name == "nat");
        // The facts of the chains that have them, by id in increasing order: a tenth of the
        // chains, so not a slot for every chain.
        let mut facts: Vec<(ChainId, Option<Box<ChainFacts>>)> = Vec::new();
        // Only inputs with counters have any: a short list, not a slot per chain.
        let packets = std::sync::Mutex::new(FxHashMap::default());
        let swept = |c: &Chain| PORT_CHAIN_PREFIXES.iter().any(|p| c.name.starts_with(p));
        // The entry rules are grouped into ports on one core while the sweep reads every chain on
        // the others: the sweep reads the facts of every chain named as kube-proxy names the
        // chains a port reads, and the few ports named otherwise are read after it.
        let ((mut cat, ids), ()) = rayon::join(
            || {
                let mut cat = Catalog::default();
                cat.scan(rs);
                // The chains each port reads, by id: names are looked up once, on all cores.
                let ids: Vec<[Option<ChainId>; 4]> = match nat_index {
                    Some(n) => {
                        let nat = &rs.tables[n];
                        cat.ports
                            .par_iter_mut()
                            .with_min_len(256)
                            .map(|sp| Self::name_chains(nat, sp))
                            .collect()
                    }
                    None => Vec::new(),
                };
                (cat, ids)
            },
            || {
                for (ti, t) in rs.tables.iter().enumerate() {
                    // Every table is swept, also those that hold no Service facts: a whole-dump
                    // command reads every rule, so every parse error is known after it.
                    if Some(ti) != nat_index {
                        rs.sweep_into(t, |v| visit(ti, v), |first, xs| sink(ti, first, xs));
                        continue;
                    }
                    rs.sweep_into(
                        t,
                        |v| {
                            if let Some(p) = dnat_packets(v.rules()) {
                                packets.lock().unwrap().insert(v.id, p);
                            }
                            let f = swept(v.chain).then(|| {
                                Box::new(ChainFacts::read(t, &v.chain.name, v.rules(), |_| None))
                            });
                            (visit(ti, v), f)
                        },
                        |first, window| {
                            let mut xs = Vec::with_capacity(window.len());
                            for (i, (x, f)) in window.into_iter().enumerate() {
                                xs.push(x);
                                if f.is_some() {
                                    facts.push((ChainId(first.0 + i as u32), f));
                                }
                            }
                            sink(ti, first, xs);
                        },
                    );
                }
            },
        );
        let packets = packets.into_inner().unwrap();
        let Some(nat) = nat_index.map(|n| &rs.tables[n]) else {
            return cat;
        };
        // Ports whose chains kube-proxy did not name: read them now (a hand-written dump's few).
        // Only a chain without facts has its name read: 300,000 names read at random would cost
        // more than the few chains they find.
        let at = |facts: &[(ChainId, _)], id| facts.binary_search_by_key(&id, |f| f.0).ok();
        let mut unswept: FxHashMap<ChainId, Box<ChainFacts>> = FxHashMap::default();
        for &id in ids.iter().flatten().flatten() {
            let chain = nat.get(id);
            if at(&facts, id).is_none() && !unswept.contains_key(&id) && !swept(chain) {
                let rules = rs.peek_rules(chain);
                let f = ChainFacts::read(nat, &chain.name, rules.iter().map(|r| &**r), |_| None);
                unswept.insert(id, Box::new(f));
            }
        }
        // Each chain's facts go to the first port that reads it.
        let taken: Vec<PortFacts> = ids
            .iter()
            .map(|ids| {
                ids.map(|id| {
                    let id = id?;
                    match at(&facts, id) {
                        Some(i) => facts[i].1.take(),
                        None => unswept.remove(&id),
                    }
                })
            })
            .collect();
        drop(facts);
        let counted = !packets.is_empty();
        let cidrs: Vec<IpNet> = cat
            .ports
            .par_iter_mut()
            .zip(taken)
            .with_min_len(256)
            .flat_map_iter(|(sp, facts)| {
                let cidrs = Self::resolve_with(sp, facts);
                if counted {
                    for e in sp.endpoints.iter_mut().chain(sp.local_endpoints.iter_mut()) {
                        e.packets = nat.id(&e.chain).and_then(|id| packets.get(&id).copied());
                    }
                }
                if sp.service.is_none() {
                    Self::name_from_chains(rs, nat, sp);
                }
                cidrs
            })
            .collect();
        cat.cluster_cidrs.extend(cidrs);
        cat.cluster_cidrs.sort();
        cat.cluster_cidrs.dedup();
        cat
    }

    fn scan(&mut self, rs: &Ruleset) {
        self.rules = rs.rule_count();
        if let Some(nat) = rs.table("nat") {
            self.scan_nat(rs, nat);
            if self.needles.is_none() {
                self.scan_other_modes(rs, nat);
            }
            // A paste may hold a Service's chains without its entry rules (`-L KUBE-SVC-…`, a grep
            // for one chain), and a listing's entry rules may not show the port (iptables-nft
            // prints none for some). A whole rule set holds every entry rule (a chain none leads
            // to is a stale leftover there), so only pastes and listings are searched.
            let paste = rs.fragment || rs.format == crate::model::InputFormat::Listing;
            if paste && self.needles.is_none() {
                self.scan_stray_chains(rs, nat);
            }
        }
        if let Some(filter) = rs.table("filter") {
            self.scan_filter(rs, filter);
        }
        if rs.tables.iter().any(|t| t.nft.is_some()) {
            self.cluster_cidrs.extend(nft::cluster_cidrs(rs));
            for sp in nft::ports(rs, self.needles.as_deref()) {
                self.index.insert(sp.key.clone(), self.ports.len());
                self.ports.push(sp);
            }
        }
        self.cluster_cidrs.sort();
        self.cluster_cidrs.dedup();
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
        let read = |name, rule: fn(&Rule) -> Option<EntryRule>| {
            nat.chain(name).map(|c| self.read_chain(rs, c, rule))
        };
        let services = read("KUBE-SERVICES", read_services_rule).unwrap_or_default();
        let nodeports = read("KUBE-NODEPORTS", read_nodeports_rule).unwrap_or_default();
        // Every port has at least one entry rule: room for them all at once, so the port list is
        // not grown (and copied into fresh memory) a dozen times on a large dump.
        let entries = services.len() + nodeports.len();
        self.ports.reserve(entries);
        self.index.reserve(entries);
        for s in services.into_iter().chain(nodeports) {
            let (entry, name) = match s {
                EntryRule::NodeIp(ip) => {
                    self.node_ips.push(ip);
                    continue;
                }
                EntryRule::ClusterCidr(net) => {
                    self.cluster_cidrs.push(net);
                    continue;
                }
                EntryRule::Entry(entry, name) => (entry, name),
            };
            let sp = self.group(group_key(&entry.target));
            if sp.service.is_none() {
                if let Some(n) = name {
                    sp.service = Some(n.service);
                    sp.port_name = n.port;
                }
            }
            sp.protocol = sp.protocol.or(entry.protocol);
            let same = |e: &Entry| match entry.kind {
                EntryKind::NodePort => e.kind == EntryKind::NodePort && e.port == entry.port,
                kind => e.kind == kind && e.address == entry.address && e.port == entry.port,
            };
            if !sp.entries.iter().any(same) {
                // Grown one at a time: a port has one to three entries, and 72,000 lists with
                // room for four would hold 14 MB of nothing.
                sp.entries.reserve_exact(1);
                sp.entries.push(entry);
            }
        }
    }

    /// Rules of kube-proxy's other proxy modes. The user-space mode (removed in 1.26, still on old
    /// nodes) redirects each Service port to a local proxy port from `KUBE-PORTALS-*`: those are
    /// listed as Service ports whose endpoints are chosen in user space. The IPVS mode keeps its
    /// Services in IPVS and ipsets: said once, with what its iptables rules still do.
    fn scan_other_modes(&mut self, rs: &Ruleset, nat: &Table) {
        let mut portals = 0usize;
        let mut proxy_ports = std::collections::BTreeSet::new();
        for name in [
            "KUBE-PORTALS-CONTAINER",
            "KUBE-PORTALS-HOST",
            "KUBE-NODEPORT-CONTAINER",
            "KUBE-NODEPORT-HOST",
        ] {
            let Some(c) = nat.chain(name) else { continue };
            let chain: &'static str = name;
            for r in rs.rules(c) {
                let to = match r.target_kind() {
                    Some(TargetKind::Redirect {
                        to_ports: Some(p), ..
                    }) => Some(p.lo),
                    Some(TargetKind::Dnat { to: Some(t), .. }) => t.ports.map(|p| p.lo),
                    _ => None,
                };
                let (Some(to), Some(port)) = (to, dport(r)) else {
                    continue;
                };
                let named = r.comment().and_then(comment::parse);
                let address = match r.destination() {
                    Some((false, net)) => host(net),
                    _ => None,
                };
                let key = match &named {
                    Some(n) => format!(
                        "portal:{}:{}",
                        n.port.service,
                        n.port.port.as_deref().unwrap_or("")
                    ),
                    None => format!("portal:{}", to),
                };
                let kind = if chain.starts_with("KUBE-NODEPORT") {
                    EntryKind::NodePort
                } else {
                    EntryKind::ClusterIp
                };
                let sp = self.group(key);
                if let Some(n) = named {
                    sp.service = Some(n.port.service);
                    sp.port_name = n.port.port;
                }
                sp.protocol = sp.protocol.or(protocol(r));
                let target = format!("user-space proxy port {to}");
                let entry = Entry::read(kind, address, port, protocol(r), chain, r.line, target);
                let same = |e: &Entry| {
                    e.kind == entry.kind && e.address == entry.address && e.port == entry.port
                };
                if !sp.entries.iter().any(same) {
                    sp.entries.push(entry);
                }
                portals += 1;
                proxy_ports.insert(to);
            }
        }
        if portals > 0 {
            let ports: Vec<String> = proxy_ports.iter().take(6).map(|p| p.to_string()).collect();
            self.notes.push(format!(
                "kube-proxy's user-space mode (removed in Kubernetes 1.26): `KUBE-PORTALS-*` rules send each Service port to kube-proxy's own proxy on this node (ports {}); endpoints are chosen in user space, not in the rules, so no endpoint or share can be read from them",
                ports.join(", ")
            ));
        }
        let ipvs_chain = ["KUBE-NODE-PORT", "KUBE-LOAD-BALANCER", "KUBE-LOOP-BACK"]
            .iter()
            .any(|n| nat.chain(n).is_some());
        // Said when the rules show no Service of their own: IPVS mode's rules are a handful of
        // ipset matches (leftovers beside iptables-mode Services are lint's to find). A text search,
        // so no rule of a large dump is parsed for it.
        let ipvs_set = self.ports.is_empty()
            && memchr::memmem::find(rs.source.text.as_bytes(), b"--match-set KUBE-").is_some();
        if ipvs_chain || ipvs_set {
            self.notes.push(
                "this looks like kube-proxy in IPVS mode (`KUBE-NODE-PORT`/`KUBE-LOAD-BALANCER` chains, `-m set --match-set KUBE-…` rules): its Services are routed by IPVS, not by these rules, so their endpoints and shares are not in the input (`ipvsadm -Ln` shows them); the rules here only mark traffic for masquerading (KUBE-MARK-MASQ) and accept or drop by ipset membership".into(),
            );
        }
    }

    /// Service ports known only from their own chains: a Service, firewall or traffic-policy
    /// chain no entry rule of the input leads to, or endpoint chains no Service chain of the input
    /// jumps to. Each is listed under the name its comments give, with a note of what is missing.
    fn scan_stray_chains(&mut self, rs: &Ruleset, nat: &Table) {
        const PREFIXES: &[&str] = &[
            "KUBE-SVC-",
            "KUBE-SVL-",
            "KUBE-EXT-",
            "KUBE-FW-",
            "KUBE-XLB-",
        ];
        let mut chain_only = Vec::new();
        for c in nat.chains.iter() {
            if !PREFIXES.iter().any(|p| c.name.starts_with(p)) {
                continue;
            }
            let key = group_key(&c.name);
            if self.index.contains_key(&key) {
                continue;
            }
            let named = rs
                .rules(c)
                .find_map(|r| r.comment().and_then(comment::parse));
            let sp = self.group(key);
            if let Some(n) = named {
                sp.service = Some(n.port.service);
                sp.port_name = n.port.port;
            }
            if c.name.starts_with("KUBE-SVC-") {
                sp.svc_chain = Some(c.name.to_string());
            }
            chain_only.push(sp.display_name());
        }
        // Endpoint chains that no chain of a known port jumps to.
        let mut reached = std::collections::HashSet::new();
        for c in nat.chains.iter() {
            if PREFIXES.iter().any(|p| c.name.starts_with(p)) {
                reached.extend(
                    rs.rules(c)
                        .filter_map(|r| r.jump_target().map(str::to_string)),
                );
            }
        }
        let mut endpoint_only = Vec::new();
        for c in nat.chains.iter() {
            if !c.name.starts_with("KUBE-SEP-") || reached.contains(c.name.as_ref() as &str) {
                continue;
            }
            let rules: Vec<&Rule> = rs.rules(c).collect();
            let Some(n) = rules
                .iter()
                .find_map(|r| r.comment().and_then(comment::parse))
            else {
                continue;
            };
            let known = self.ports.iter().any(|p| {
                p.service.as_deref() == Some(&n.port.service) && p.port_name == n.port.port
            });
            let key = format!(
                "sep:{}:{}",
                n.port.service,
                n.port.port.as_deref().unwrap_or("")
            );
            if known && !self.index.contains_key(&key) {
                continue;
            }
            let dnat = dnat_of(rules.iter().copied());
            let (address, packets) = (dnat.address.map(Into::into), dnat.packets);
            let sp = self.group(key);
            if sp.service.is_none() {
                endpoint_only.push(format!(
                    "{}{}",
                    n.port.service,
                    n.port
                        .port
                        .as_deref()
                        .map(|p| format!(":{p}"))
                        .unwrap_or_default()
                ));
            }
            sp.service = Some(n.port.service);
            sp.port_name = n.port.port;
            sp.endpoints.push(Endpoint {
                chain: c.name.clone(),
                address,
                from_comment: false,
                packets,
            });
        }
        let list = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v.dedup();
            let more = v.len().saturating_sub(5);
            v.truncate(5);
            let mut s = v
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            if more > 0 {
                s += &format!(" and {more} more");
            }
            s
        };
        if !chain_only.is_empty() {
            self.notes.push(format!(
                "{} known only from {} own chains, not from an entry rule (the paste does not show how traffic reaches {})",
                list(&chain_only),
                if chain_only.len() == 1 { "its" } else { "their" },
                if chain_only.len() == 1 { "it" } else { "them" },
            ));
        }
        if !endpoint_only.is_empty() {
            self.notes.push(format!(
                "{} known only from endpoint chains (KUBE-SEP-…): the paste shows neither {} entry rules nor {} Service chain, so {} addresses and shares are not known",
                list(&endpoint_only),
                if endpoint_only.len() == 1 { "its" } else { "their" },
                if endpoint_only.len() == 1 { "its" } else { "their" },
                if endpoint_only.len() == 1 { "its" } else { "their" },
            ));
        }
    }

    fn scan_filter(&mut self, rs: &Ruleset, filter: &Table) {
        let mut rejects = Vec::new();
        for chain_name in ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES"] {
            let Some(chain) = filter.chain(chain_name) else {
                continue;
            };
            for rule in self.read_chain(rs, chain, |r| Some(r.clone())) {
                let Some(c) = rule.comment().and_then(comment::parse) else {
                    continue;
                };
                if c.tail.contains("has no endpoints") || c.tail.contains("has no local endpoints")
                {
                    rejects.push((chain_name, rule, c));
                }
            }
        }
        if rejects.is_empty() {
            return;
        }
        // Only the few Services without endpoints are looked up by name: no copy of every name.
        // (A cell, so that looking a port's name up borrows the map, and the ports, briefly.)
        let by_name: FxHashMap<(&str, Option<&str>), std::cell::Cell<Option<usize>>> = rejects
            .iter()
            .map(|(_, _, c)| {
                (
                    (c.port.service.as_str(), c.port.port.as_deref()),
                    None.into(),
                )
            })
            .collect();
        for (i, p) in self.ports.iter().enumerate() {
            if let Some(s) = &p.service {
                let slot = by_name.get(&(s.as_str(), p.port_name.as_deref()));
                if let Some(slot) = slot.filter(|slot| slot.get().is_none()) {
                    slot.set(Some(i));
                }
            }
        }
        for (chain_name, rule, c) in &rejects {
            let (chain_name, rule) = (*chain_name, &rule);
            let port = dport(rule);
            let existing = by_name[&(c.port.service.as_str(), c.port.port.as_deref())].get();
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
                        let target = rule
                            .target_kind()
                            .map(|t| t.name().to_string())
                            .unwrap_or_default();
                        sp.entries.push(Entry::read(
                            kind,
                            address,
                            port,
                            protocol(rule),
                            chain_name,
                            rule.line,
                            target,
                        ));
                    }
                }
            }
        }
    }

    /// Fills in a port's chains and endpoints, reading its chains as it goes (and keeping what it
    /// parsed: a trace of the port reads the same chains again).
    pub fn resolve(&mut self, rs: &Ruleset, sp: &mut ServicePort) {
        let Some(nat) = rs.table("nat") else { return };
        Self::name_chains(nat, sp);
        let facts = sp.chains().map(|c| {
            let chain = nat.chain(c?)?;
            Some(Box::new(ChainFacts::read(
                nat,
                &chain.name,
                rs.rules(chain),
                |t| {
                    Some(
                        nat.chain(t)
                            .map(|c| dnat_of(rs.rules(c)))
                            .unwrap_or_default(),
                    )
                },
            )))
        });
        let cidrs = Self::resolve_with(sp, facts);
        if sp.service.is_none() {
            Self::name_from_chains(rs, nat, sp);
        }
        self.cluster_cidrs.extend(cidrs);
        self.cluster_cidrs.sort();
        self.cluster_cidrs.dedup();
    }

    /// The cluster CIDR as the node's rules show it, for a Service whose own chains do not (one
    /// without endpoints has no KUBE-SVC- chain to carry it): kube-proxy writes the same
    /// `! -s <CIDR> -j KUBE-MARK-MASQ` first in every Service chain, so the first few tell.
    pub fn find_cluster_cidrs(&mut self, rs: &Ruleset) {
        if !self.cluster_cidrs.is_empty() {
            return;
        }
        let Some(nat) = rs.table("nat") else { return };
        let chains = nat
            .chains
            .iter()
            .filter(|c| c.name.starts_with("KUBE-SVC-"))
            .take(500);
        for c in chains {
            if let Some(r) = rs.rules(c).next() {
                if let Some(EntryRule::ClusterCidr(net)) = read_services_rule(r) {
                    self.cluster_cidrs.push(net);
                    return;
                }
            }
        }
    }

    /// Names a port's chains after its key: the chains of its hash that exist, or the chain that
    /// keys it. Returns the ids of the chains a port reads ([`ServicePort::chains`]), found on
    /// the way.
    fn name_chains(nat: &Table, sp: &mut ServicePort) -> [Option<ChainId>; 4] {
        if let Some(h) = sp.key.strip_prefix("hash:") {
            let mut name = String::with_capacity(16 + h.len());
            let mut has = |p: &str| {
                name.clear();
                name.push_str(p);
                name.push_str(h);
                nat.id(&name).map(|id| (id, nat.get(id).name.to_string()))
            };
            let named = |slot: &mut Option<String>, found: Option<(ChainId, String)>| {
                let (id, name) = found.unzip();
                *slot = name;
                id
            };
            let svc = named(&mut sp.svc_chain, has("KUBE-SVC-"));
            let ext = named(&mut sp.ext_chain, has("KUBE-EXT-"));
            let svl = named(&mut sp.svl_chain, has("KUBE-SVL-"));
            named(&mut sp.fw_chain, has("KUBE-FW-"));
            let xlb = named(&mut sp.xlb_chain, has("KUBE-XLB-"));
            [svc, ext, svl, xlb]
        } else {
            if let Some(c) = sp.key.strip_prefix("chain:") {
                sp.svc_chain = Some(c.to_string());
            }
            sp.chains().map(|c| nat.id(c?))
        }
    }

    /// Fills in a port's endpoints from the facts of its chains (each asked for once); returns
    /// the cluster CIDRs they reveal.
    fn resolve_with(sp: &mut ServicePort, [svc, ext, svl, xlb]: PortFacts) -> Vec<IpNet> {
        let mut cidrs = Vec::new();
        // Pod short-circuits in EXT/XLB chains reveal the cluster CIDR.
        for f in [&ext, &xlb].into_iter().flatten() {
            if !f.pod_cidrs.is_empty() {
                cidrs.extend_from_slice(&f.pod_cidrs);
                sp.external_local = true;
            }
        }
        if let Some(f) = svc.map(|f| *f) {
            // v1.24+: the off-cluster masquerade rule is the first rule of KUBE-SVC-:
            // `! -s <cluster CIDR> -d <cluster IP> … -j KUBE-MARK-MASQ`.
            cidrs.extend(f.masq_cidrs);
            sp.endpoints = f.endpoints;
            sp.affinity_seconds = f.affinity;
        }
        sp.external_local |= sp.xlb_chain.is_some();
        let local = if sp.svl_chain.is_some() { svl } else { xlb };
        if let Some(f) = local {
            sp.local_endpoints = f.endpoints;
        }
        cidrs
    }

    /// Names a port that no entry rule's comment named, from the comments of its own chains.
    fn name_from_chains(rs: &Ruleset, nat: &Table, sp: &mut ServicePort) {
        let mut chains: Vec<String> = [&sp.svc_chain, &sp.ext_chain, &sp.svl_chain]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        chains.extend(sp.endpoints.iter().map(|e| e.chain.to_string()));
        for name in chains {
            if let Some(c) = nat.chain(&name) {
                for r in rs.peek_rules(c) {
                    Self::name_from(sp, &r);
                }
            }
            if sp.service.is_some() {
                break;
            }
        }
    }

    /// The port its key names (`hash:…` for hashed chain names, see [`ServicePort::key`]).
    pub fn port_by_key(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
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
            if sp.own_chains().any(|c| c == q)
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
        let exact: Vec<usize> = (0..self.ports.len())
            .filter(|&i| matches(&self.ports[i]))
            .collect();
        if !exact.is_empty() {
            return exact;
        }
        // As people type it: `name` without its namespace (when one namespace has it), and
        // `ns/name:8080` with the port's number rather than its name.
        let (svc, port) = match q.rsplit_once(':') {
            Some((s, p)) if p.parse::<u16>().is_ok() && s.contains('/') => {
                (s, p.parse::<u16>().ok())
            }
            _ => (q, None),
        };
        let named = |sp: &ServicePort| {
            sp.service.as_deref().is_some_and(|s| {
                s == svc
                    || (!svc.contains('/') && s.rsplit_once('/').is_some_and(|(_, n)| n == svc))
            })
        };
        let by_port = |sp: &ServicePort| {
            port.is_none_or(|p| {
                sp.entries
                    .iter()
                    .any(|e| e.kind != EntryKind::NodePort && e.port == p)
                    || sp.entries.iter().any(|e| e.port == p)
            })
        };
        let found: Vec<usize> = (0..self.ports.len())
            .filter(|&i| named(&self.ports[i]) && by_port(&self.ports[i]))
            .collect();
        let mut services: Vec<&str> = found
            .iter()
            .filter_map(|&i| self.ports[i].service.as_deref())
            .collect();
        services.sort_unstable();
        services.dedup();
        // A name in several namespaces is not one Service: the suggestions list them.
        if services.len() == 1 {
            found
        } else {
            Vec::new()
        }
    }

    /// Names to suggest for a query that matched nothing, closest first.
    pub fn suggest(&self, query: &str) -> Vec<String> {
        // The same name in several namespaces: each of them.
        let mut same: Vec<String> = self
            .ports
            .iter()
            .filter_map(|p| p.service.clone())
            .filter(|s| {
                let name = query.rsplit('/').next().unwrap_or(query);
                s.rsplit_once('/').is_some_and(|(_, n)| n == name)
            })
            .collect();
        same.sort();
        same.dedup();
        if !same.is_empty() {
            return same;
        }
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
