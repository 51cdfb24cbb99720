//! What every lint rule looks at: the rule set, its chain graph, and the Services in it.

use super::Options;
use crate::graph::{ChainGraph, ChainRef};
use crate::kube::{Catalog, ServicePort};
use crate::model::{Chain, Rule, Ruleset, Span, Table};
use rustc_hash::FxHashMap;
use std::sync::OnceLock;

pub struct Context<'a> {
    pub rs: &'a Ruleset,
    pub graph: ChainGraph,
    /// Which chains hold a DNAT rule, by graph node: whole-dump checks follow jumps through the
    /// graph without reading rules again.
    dnat: Vec<bool>,
    pub catalog: &'a Catalog,
    pub opts: &'a Options,
    /// Some built-in chain has rules: a whole node's `iptables-save`, with hooks, rather than
    /// kube-proxy's own restore payload (which never touches built-in chains).
    pub hooked: bool,
    /// Chain name → index into `catalog.ports`, for naming the Service a finding concerns. Built
    /// on first need: most findings are about hashed Service chains, found through their hash.
    by_chain: OnceLock<FxHashMap<&'a str, usize>>,
    modes: OnceLock<super::modes::Modes>,
}

impl<'a> Context<'a> {
    /// The context of `rs`, given its chain graph and the Services of the whole dump.
    pub fn new(
        rs: &'a Ruleset,
        graph: ChainGraph,
        dnat: Vec<bool>,
        catalog: &'a Catalog,
        opts: &'a Options,
    ) -> Context<'a> {
        let hooked = rs
            .tables
            .iter()
            .any(|t| t.chains.iter().any(|c| c.builtin && c.rules.count() > 0));
        Context {
            rs,
            graph,
            dnat,
            catalog,
            opts,
            hooked,
            by_chain: OnceLock::new(),
            modes: OnceLock::new(),
        }
    }

    /// The ways in from outside the cluster (node ports, load balancer and external IPs) of the
    /// dump's Services, as people name them ("NodePort 30000 of ns/svc:http"), at most `limit`,
    /// with how many there are in all; and the first Service's name.
    pub fn external_entries(&self, limit: usize) -> (Vec<String>, usize, Option<String>) {
        use crate::kube::EntryKind;
        let mut shown = Vec::new();
        let mut total = 0;
        let mut first = None;
        for p in &self.catalog.ports {
            for e in &p.entries {
                let what = match (e.kind, e.address) {
                    (EntryKind::NodePort, _) => format!("NodePort {}", e.port),
                    (EntryKind::LoadBalancer, Some(a)) => {
                        format!("load balancer {}", crate::kube::host_port(a, e.port))
                    }
                    (EntryKind::ExternalIp, Some(a)) => {
                        format!("external IP {}", crate::kube::host_port(a, e.port))
                    }
                    _ => continue,
                };
                total += 1;
                first.get_or_insert_with(|| p.display_name());
                if shown.len() < limit {
                    shown.push(format!("{what} of {}", p.display_name()));
                }
            }
        }
        (shown, total, first)
    }

    /// "NodePort 30000 of ns/svc:p80, NodePort 30001 of … and 3 more", or None when the dump has
    /// no way in from outside.
    pub fn hit_entries(&self) -> (Option<String>, Option<String>) {
        let (shown, total, first) = self.external_entries(2);
        if shown.is_empty() {
            return (None, None);
        }
        let mut s = shown.join(", ");
        if total > shown.len() {
            s += &format!(" and {} more", total - shown.len());
        }
        (Some(s), first)
    }

    /// Why the input may not show every rule of every chain (a grep, or elision marks), if it may
    /// not: a rule found missing there is a note, not a problem.
    pub fn partial_anywhere(&self) -> Option<String> {
        if self.rs.fragment {
            return Some("the paste is a grep and may leave rules out".into());
        }
        self.rs
            .cuts
            .first()
            .map(|c| format!("the paste cuts chains (`{}` at line {})", c.chain, c.line))
    }

    /// The proxy modes the dump shows rules of.
    pub fn modes(&self) -> &super::modes::Modes {
        self.modes.get_or_init(|| super::modes::read(self))
    }

    /// Whether the chain holds a DNAT rule.
    pub fn dnats(&self, r: ChainRef) -> bool {
        self.graph
            .node(r)
            .is_some_and(|n| self.dnat.get(n.index()).copied().unwrap_or(false))
    }

    fn by_chain(&self) -> &FxHashMap<&'a str, usize> {
        self.by_chain.get_or_init(|| {
            let mut by_chain = FxHashMap::default();
            for (i, p) in self.catalog.ports.iter().enumerate() {
                for c in p.own_chains() {
                    by_chain.insert(c, i);
                }
                for e in p.endpoints.iter().chain(&p.local_endpoints) {
                    by_chain.entry(e.chain.as_str()).or_insert(i);
                }
            }
            by_chain
        })
    }

    pub fn table(&self, name: &str) -> Option<&'a Table> {
        self.rs.table(name)
    }

    /// Every chain with its table.
    pub fn chains(&self) -> impl Iterator<Item = (&'a Table, &'a Chain, ChainRef)> + 'a {
        self.rs.tables.iter().enumerate().flat_map(|(ti, t)| {
            t.chain_ids().map(move |id| {
                (
                    t,
                    t.get(id),
                    ChainRef {
                        table: ti,
                        chain: id,
                    },
                )
            })
        })
    }

    pub fn rules(&self, chain: &'a Chain) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rs.rules(chain)
    }

    pub fn rule(&self, chain: &'a Chain, i: usize) -> &'a Rule {
        self.rs.rule(chain, i)
    }

    pub fn chain_span(&self, chain: &Chain) -> Span {
        chain.decl.unwrap_or(Span::NONE)
    }

    /// The Service port a chain belongs to.
    pub fn port_of(&self, chain: &str) -> Option<&ServicePort> {
        if let Some(p) = crate::kube::chain_hash(chain)
            .and_then(|h| self.catalog.port_by_key(&format!("hash:{h}")))
            .map(|i| &self.catalog.ports[i])
        {
            if p.own_chains().any(|c| c == chain) {
                return Some(p);
            }
        }
        self.by_chain().get(chain).map(|&i| &self.catalog.ports[i])
    }

    /// `ns/name:port` of the Service a chain belongs to.
    pub fn service_of(&self, chain: &str) -> Option<String> {
        self.port_of(chain).map(|p| p.display_name())
    }

    pub fn chain_ref(&self, table: &str, chain: &str) -> Option<ChainRef> {
        let ti = self.rs.tables.iter().position(|t| &*t.name == table)?;
        let id = self.rs.tables[ti].id(chain)?;
        Some(ChainRef {
            table: ti,
            chain: id,
        })
    }

    pub fn chain_of(&self, r: ChainRef) -> (&'a Table, &'a Chain) {
        let t = &self.rs.tables[r.table];
        (t, t.get(r.chain))
    }
}

/// kube-proxy's per-Service chain families.
pub use crate::kube::SERVICE_CHAIN_PREFIXES as SERVICE_PREFIXES;

pub fn is_service_chain(name: &str) -> bool {
    SERVICE_PREFIXES.iter().any(|p| name.starts_with(p))
}
