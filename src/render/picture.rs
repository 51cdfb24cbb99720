//! Pictures of rule sets: nodes, edges and clusters that the DOT and Mermaid writers draw.
//!
//! Two pictures: the path of one Service (what its traffic walks, built from real traces, with each
//! edge's condition and effective share), and the chain graph of a whole rule set (chains with rule
//! counts, jumps with counts, per-table clusters, kube-proxy's per-Service families collapsed).
//! Everything is kept in ordered maps so the same input always gives byte-identical output.

use crate::engine::state::Verdict;
use crate::graph::ChainGraph;
use crate::kube::analysis::PortReport;
use crate::model::{print, Ruleset};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeKind {
    /// Where traffic enters: a built-in chain, or a client.
    Entry,
    Chain,
    /// Several chains drawn as one (`KUBE-SEP-*`).
    Family,
    Endpoint,
    Masquerade,
    Drop,
    /// Accepted without DNAT, or the path left the input.
    Other,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub label: String,
    pub kind: NodeKind,
    /// Cluster (table) the node is drawn in, if any.
    pub cluster: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EdgeKey {
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, Default)]
pub struct Edge {
    pub label: String,
    pub dashed: bool,
}

#[derive(Debug, Default)]
pub struct Picture {
    pub title: String,
    pub nodes: BTreeMap<String, Node>,
    pub edges: BTreeMap<EdgeKey, Edge>,
    pub legend: bool,
}

/// A node id that DOT and Mermaid both accept unquoted.
pub fn node_id(parts: &[&str]) -> String {
    let mut s = String::from("n");
    for p in parts {
        s.push('_');
        for c in p.chars() {
            s.push(if c.is_ascii_alphanumeric() { c } else { '_' });
        }
    }
    s
}

/// `1/3 · 33.3%` for shares close to a simple fraction, else the percentage.
pub fn share_label(p: f64) -> String {
    if (p - 1.0).abs() < 1e-9 {
        return "100%".into();
    }
    let pct = format!("{:.1}%", p * 100.0);
    for d in 2..=1000u32 {
        let n = (p * d as f64).round();
        if n >= 1.0 && (p - n / d as f64).abs() < 1e-6 {
            return format!("{}/{d} · {pct}", n as u32);
        }
    }
    pct
}

fn condition(rs: &Ruleset, table: &str, chain: &str, line: u32) -> String {
    let Some(c) = rs.chain(table, chain) else {
        return String::new();
    };
    let Some(i) = c.rules.iter().position(|s| s.line == line) else {
        return String::new();
    };
    let rule = rs.rule(c, i);
    let proto = rule.matches.iter().find_map(|m| match m.criterion {
        crate::model::Criterion::Protocol(p) => Some(p),
        _ => None,
    });
    let parts: Vec<String> = rule
        .conditions()
        .filter(|m| {
            !matches!(
                m.criterion,
                crate::model::Criterion::Statistic(_) | crate::model::Criterion::Protocol(_)
            )
        })
        .map(|m| print::criterion(m, proto))
        .collect();
    let mut s = parts.join(" ");
    if s.chars().count() > 48 {
        s = s.chars().take(47).collect::<String>() + "…";
    }
    s
}

impl Picture {
    /// Nodes grouped by the cluster (table) they are drawn in; unclustered nodes first.
    pub fn clusters(&self) -> BTreeMap<Option<&str>, Vec<(&String, &Node)>> {
        let mut clusters: BTreeMap<Option<&str>, Vec<(&String, &Node)>> = BTreeMap::new();
        for (id, n) in &self.nodes {
            clusters
                .entry(n.cluster.as_deref())
                .or_default()
                .push((id, n));
        }
        clusters
    }

    fn node(&mut self, id: &str, label: impl Into<String>, kind: NodeKind, cluster: Option<&str>) {
        self.nodes.entry(id.to_string()).or_insert(Node {
            label: label.into(),
            kind,
            cluster: cluster.map(str::to_string),
        });
    }

    fn edge(&mut self, from: &str, to: &str, label: String, dashed: bool) {
        self.edges
            .entry(EdgeKey {
                from: from.into(),
                to: to.into(),
            })
            .or_insert(Edge { label, dashed });
    }

    /// What a Service's traffic walks: one entry per way in (as the first client kind that uses it
    /// sees it), KUBE-SERVICES reduced to the rule that matched, each endpoint as a leaf.
    pub fn service(rs: &Ruleset, reports: &[PortReport]) -> Picture {
        let mut pic = Picture {
            legend: true,
            ..Picture::default()
        };
        let names: BTreeSet<String> = reports.iter().map(|r| r.port.display_name()).collect();
        pic.title = names.into_iter().collect::<Vec<_>>().join(", ");
        for r in reports {
            for (probe, trace) in &r.probes {
                let client = format!("{} from {}", probe.entry_label(), probe.from_label());
                let client_id = node_id(&["client", &client]);
                pic.node(&client_id, client, NodeKind::Entry, None);
                // Shares of each edge within this probe.
                let mut shares: BTreeMap<EdgeKey, (f64, String, bool)> = BTreeMap::new();
                for o in &trace.outcomes {
                    // Where the packet "is" between hooks: the client, then the endpoint once DNATed.
                    let mut anchor = client_id.clone();
                    let mut last: Option<(String, String)> = None;
                    let add = |shares: &mut BTreeMap<EdgeKey, (f64, String, bool)>,
                               from: &str,
                               to: &str,
                               cond: String,
                               dashed: bool| {
                        let e = shares
                            .entry(EdgeKey {
                                from: from.to_string(),
                                to: to.to_string(),
                            })
                            .or_insert((0.0, cond, dashed));
                        e.0 += o.probability;
                    };
                    for s in &o.path {
                        let here = node_id(&[&s.table, &s.chain]);
                        let builtin = crate::model::table::is_builtin_chain(&s.table, &s.chain);
                        pic.node(
                            &here,
                            format!("{} {}", s.table, s.chain),
                            if builtin {
                                NodeKind::Entry
                            } else {
                                NodeKind::Chain
                            },
                            Some(&s.table),
                        );
                        let entering = last.as_ref() != Some(&(s.table.clone(), s.chain.clone()));
                        if builtin
                            && entering
                            && !o
                                .path
                                .iter()
                                .take_while(|x| !std::ptr::eq(*x, s))
                                .any(|x| x.table == s.table && x.chain == s.chain)
                        {
                            add(&mut shares, &anchor, &here, String::new(), false);
                            anchor = here.clone();
                        }
                        last = Some((s.table.clone(), s.chain.clone()));
                        let cond = if s.assumed {
                            "assumed hook".to_string()
                        } else if s.line == 0 {
                            String::new()
                        } else {
                            condition(rs, &s.table, &s.chain, s.line)
                        };
                        if let Some(target) = s
                            .action
                            .strip_prefix("jump ")
                            .or_else(|| s.action.strip_prefix("goto "))
                        {
                            let to = node_id(&[&s.table, target]);
                            pic.node(
                                &to,
                                format!("{} {}", s.table, target),
                                NodeKind::Chain,
                                Some(&s.table),
                            );
                            add(&mut shares, &here, &to, cond, s.action.starts_with("goto"));
                        } else if let Some(dest) = s.action.strip_prefix("DNAT ") {
                            let id = node_id(&["ep", dest]);
                            pic.node(&id, dest, NodeKind::Endpoint, None);
                            add(&mut shares, &here, &id, cond, false);
                            anchor = id;
                        } else if s.action == "MASQUERADE" || s.action == "SNAT" {
                            let id = node_id(&["masq"]);
                            pic.node(
                                &id,
                                "MASQUERADE (source rewritten)",
                                NodeKind::Masquerade,
                                None,
                            );
                            add(&mut shares, &here, &id, cond, false);
                        } else if s.action == "DROP" || s.action.starts_with("REJECT") {
                            let id = node_id(&["verdict", &s.action]);
                            pic.node(&id, s.action.clone(), NodeKind::Drop, None);
                            add(&mut shares, &here, &id, cond, false);
                        }
                    }
                    if o.dnat.is_none() && matches!(o.verdict, Verdict::Accept | Verdict::Unknown) {
                        let label = o.label();
                        let id = node_id(&["other", &label]);
                        pic.node(&id, label, NodeKind::Other, None);
                        add(&mut shares, &anchor, &id, String::new(), true);
                    }
                }
                for (k, (p, cond, dashed)) in shares {
                    let label = match (cond.is_empty(), (p - 1.0).abs() < 1e-12) {
                        (true, true) => String::new(),
                        (true, false) => share_label(p),
                        (false, true) => cond,
                        (false, false) => format!("{cond}\n{}", share_label(p)),
                    };
                    pic.edge(&k.from, &k.to, label, dashed);
                }
            }
        }
        pic
    }

    /// The chain graph of a whole rule set. With `collapse`, kube-proxy's per-Service chains are
    /// drawn as one node per family, so a 1,000-Service dump stays readable.
    pub fn ruleset(rs: &Ruleset, collapse: bool) -> Picture {
        let g = ChainGraph::build(rs);
        let mut pic = Picture {
            title: rs.source.name.clone(),
            ..Picture::default()
        };
        let family = |name: &str| -> Option<&'static str> {
            if !collapse {
                return None;
            }
            crate::kube::SERVICE_CHAIN_PREFIXES
                .iter()
                .copied()
                .find(|p| name.starts_with(p))
        };
        // (table, node id) → (label parts, chains, rules)
        let mut counts: BTreeMap<String, (String, String, usize, usize, NodeKind)> =
            BTreeMap::new();
        let id_of = |table: &str, name: &str| -> String {
            match family(name) {
                Some(f) => node_id(&[table, f]),
                None => node_id(&[table, name]),
            }
        };
        for t in &rs.tables {
            for c in &t.chains {
                let id = id_of(&t.name, &c.name);
                let (label, kind) = match family(&c.name) {
                    Some(f) => (format!("{f}*"), NodeKind::Family),
                    None if c.builtin => (c.name.to_string(), NodeKind::Entry),
                    None => (c.name.to_string(), NodeKind::Chain),
                };
                let e = counts
                    .entry(id)
                    .or_insert((t.name.to_string(), label, 0, 0, kind));
                e.2 += 1;
                e.3 += c.rules.count();
            }
        }
        for (id, (table, label, chains, rules, kind)) in counts {
            let text = if kind == NodeKind::Family {
                format!("{label}\n{chains} chains · {rules} rules")
            } else {
                format!("{label}\n{rules} rule{}", if rules == 1 { "" } else { "s" })
            };
            pic.node(&id, text, kind, Some(&table));
        }
        let mut jumps: BTreeMap<EdgeKey, (usize, bool)> = BTreeMap::new();
        for e in g.graph.edge_indices() {
            let (a, b) = g.graph.edge_endpoints(e).unwrap();
            let (fa, fb) = (g.chain_at(a), g.chain_at(b));
            let ta = &rs.tables[fa.table];
            let from = id_of(&ta.name, &ta.get(fa.chain).name);
            let to = id_of(&ta.name, &ta.get(fb.chain).name);
            let j = jumps.entry(EdgeKey { from, to }).or_insert((0, false));
            j.0 += 1;
            j.1 |= g.graph[e].goto();
        }
        for (k, (n, goto)) in jumps {
            let label = match (n, goto) {
                (1, false) => String::new(),
                (1, true) => "goto".into(),
                (n, false) => format!("×{n}"),
                (n, true) => format!("×{n} (goto)"),
            };
            pic.edge(&k.from, &k.to, label, false);
        }
        for (from, idx, target) in &g.dangling {
            let t = &rs.tables[from.table];
            let c = t.get(from.chain);
            let id = node_id(&[&t.name, "missing", target]);
            pic.node(
                &id,
                format!("{target}\n(not declared)"),
                NodeKind::Other,
                Some(&t.name),
            );
            pic.edge(
                &id_of(&t.name, &c.name),
                &id,
                format!("rule {}", idx + 1),
                true,
            );
        }
        pic
    }
}
