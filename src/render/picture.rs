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

/// The chain a `jump X`/`goto X` step enters.
fn jump_target(action: &str) -> Option<&str> {
    action
        .strip_prefix("jump ")
        .or_else(|| action.strip_prefix("goto "))
}

/// How a client reads on the edge it takes: `outside · masq`, `hairpin · masq 1/35`.
fn client_label(from: &str, t: &crate::engine::Trace) -> String {
    let delivered: Vec<_> = t
        .outcomes
        .iter()
        .filter(|o| !matches!(o.verdict, Verdict::Drop | Verdict::Reject))
        .collect();
    let all: f64 = delivered.iter().map(|o| o.probability).sum();
    let masq: f64 = delivered
        .iter()
        .filter(|o| o.masquerade)
        .map(|o| o.probability)
        .sum();
    if masq <= 1e-12 {
        from.to_string()
    } else if (masq - all).abs() < 1e-9 {
        format!("{from} · masq")
    } else {
        format!(
            "{from} · masq {}",
            share_label(masq).split(" · ").next().unwrap_or("")
        )
    }
}

/// Node id → (table, chain) of every chain drawn.
type ChainsDrawn = BTreeMap<String, (String, String)>;

/// What the rules on one edge add up to while the picture is built.
#[derive(Default)]
struct EdgeAcc {
    /// (rule line or probe number, text): conditions of the rules, or the clients of a way in.
    labels: BTreeSet<(u32, String)>,
    /// The share of each probe's new connections that take the edge.
    seen: BTreeMap<usize, f64>,
    dashed: bool,
}

/// Endpoints reached alike beyond which the picture draws them as one node.
const GROUPED: usize = 12;

/// Lines of an edge label beyond which the rest are counted.
const LABEL_LINES: usize = 6;

impl EdgeAcc {
    fn edge(self) -> Edge {
        let mut lines: Vec<String> = Vec::new();
        let mut texts: Vec<&String> = Vec::new();
        for (_, t) in &self.labels {
            if !texts.contains(&t) {
                texts.push(t);
            }
        }
        for t in texts.iter().take(LABEL_LINES) {
            lines.push(t.to_string());
        }
        if texts.len() > LABEL_LINES {
            lines.push(format!("+{} more rules", texts.len() - LABEL_LINES));
        }
        // The share, when the edge carries part of what its clients send: the same for each
        // client, or each one that differs.
        let mut shares: Vec<String> = Vec::new();
        for p in self.seen.values() {
            if (p - 1.0).abs() > 1e-9 {
                let s = share_label(*p);
                if !shares.contains(&s) {
                    shares.push(s);
                }
            }
        }
        if !shares.is_empty() {
            lines.push(shares.join(" or "));
        }
        Edge {
            label: lines.join(
                "
",
            ),
            dashed: self.dashed,
        }
    }
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

    /// What a Service's traffic walks, drawn from real traces: one node per way in, an edge from
    /// it to the first chain each hook enters, labelled with the clients that take it (and
    /// whether they are masqueraded); every rule on the way with its condition (two rules between
    /// the same chains are two lines of one label); endpoints with the share of new connections
    /// each edge carries; drops and rejects where they happen. Chains the traffic only passes
    /// through (a hook that jumps to a chain where nothing matches, the masquerade mark) are left
    /// out; the endpoint chain that DNATs is drawn as its endpoint.
    pub fn service(rs: &Ruleset, reports: &[PortReport]) -> Picture {
        let mut pic = Picture::default();
        let names: BTreeSet<String> = reports.iter().map(|r| r.port.display_name()).collect();
        pic.title = names.into_iter().collect::<Vec<_>>().join(", ");
        let mut acc: BTreeMap<EdgeKey, EdgeAcc> = BTreeMap::new();
        let mut chain_of: ChainsDrawn = BTreeMap::new();
        let mut probe_no = 0usize;
        for r in reports {
            for (probe, trace) in &r.probes {
                probe_no += 1;
                let entry = probe.entry_label();
                let entry_id = node_id(&["entry", &entry]);
                pic.node(&entry_id, entry, NodeKind::Entry, None);
                let client = client_label(&probe.from_label(), trace);
                for o in &trace.outcomes {
                    pic.walk(
                        rs,
                        r,
                        o,
                        (probe_no, &entry_id, &client),
                        (&mut acc, &mut chain_of),
                    );
                }
            }
        }
        // Every rule between two drawn chains is on the edge, traced or not (a source range no
        // client was made up for, a second load-balancer IP).
        for (k, a) in acc.iter_mut() {
            let (Some((table, from)), Some((_, to))) = (chain_of.get(&k.from), chain_of.get(&k.to))
            else {
                continue;
            };
            let Some(c) = rs.chain(table, from) else {
                continue;
            };
            for (i, slot) in c.rules.iter().enumerate() {
                let rule = rs.rule(c, i);
                if rule.jump_target().is_some_and(|t| t == to.as_str()) {
                    let text = condition(rs, table, from, slot.line);
                    if !text.is_empty() {
                        a.labels.insert((slot.line, text));
                    }
                }
            }
        }
        for (k, a) in acc {
            pic.edges.insert(k, a.edge());
        }
        pic.group_endpoints();
        pic
    }

    /// Endpoints beyond [`GROUPED`] that are reached the same way with the same share are one
    /// node listing a few of their addresses: a 35-endpoint Service stays a picture.
    fn group_endpoints(&mut self) {
        type Way = Vec<(String, String, bool)>;
        let mut by_way: BTreeMap<Way, Vec<String>> = BTreeMap::new();
        for (id, n) in &self.nodes {
            if n.kind != NodeKind::Endpoint || self.edges.keys().any(|k| &k.from == id) {
                continue;
            }
            let way: Way = self
                .edges
                .iter()
                .filter(|(k, _)| &k.to == id)
                .map(|(k, e)| (k.from.clone(), e.label.clone(), e.dashed))
                .collect();
            by_way.entry(way).or_default().push(id.clone());
        }
        for (way, ids) in by_way {
            if ids.len() <= GROUPED {
                continue;
            }
            let mut addrs: Vec<String> = ids
                .iter()
                .map(|id| {
                    self.nodes[id]
                        .label
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
                .collect();
            addrs.sort_by_key(|a| a.parse::<std::net::SocketAddr>().ok());
            const SHOWN: usize = 4;
            let mut label = vec![format!("{} endpoints", ids.len())];
            label.extend(addrs.iter().take(SHOWN).cloned());
            if addrs.len() > SHOWN {
                label.push(format!("+{} more", addrs.len() - SHOWN));
            }
            let group = node_id(&["endpoints", &ids[0]]);
            for id in &ids {
                self.nodes.remove(id);
                self.edges.retain(|k, _| &k.to != id);
            }
            self.node(&group, label.join("\n"), NodeKind::Endpoint, None);
            for (from, edge_label, dashed) in way {
                let label = if edge_label.is_empty() {
                    String::new()
                } else {
                    format!("{edge_label} each")
                };
                self.edge(&from, &group, label, dashed);
            }
        }
    }

    /// Adds one outcome's way to the picture.
    fn walk(
        &mut self,
        rs: &Ruleset,
        r: &PortReport,
        o: &crate::engine::Outcome,
        (probe_no, entry_id, client): (usize, &str, &str),
        (acc, chain_of): (&mut BTreeMap<EdgeKey, EdgeAcc>, &mut ChainsDrawn),
    ) {
        let path = &o.path;
        // The frames (chain visits) each step runs in, rebuilt from the steps: a step in a chain
        // not on the stack starts a new hook; a jump opens a frame, a goto replaces one.
        let mut frames: Vec<(String, String)> = Vec::new(); // frame id → (table, chain)
        let mut stack: Vec<usize> = Vec::new();
        let mut stacks: Vec<Vec<usize>> = Vec::with_capacity(path.len());
        let mut opened: Vec<Option<usize>> = vec![None; path.len()];
        for (i, s) in path.iter().enumerate() {
            let here = (s.table.clone(), s.chain.clone());
            match stack.iter().rposition(|f| frames[*f] == here) {
                Some(at) => stack.truncate(at + 1),
                None => {
                    frames.push(here);
                    stack = vec![frames.len() - 1];
                }
            }
            stacks.push(stack.clone());
            if let Some(target) = jump_target(&s.action) {
                if s.action.starts_with("goto ") {
                    stack.pop();
                }
                frames.push((s.table.clone(), target.to_string()));
                stack.push(frames.len() - 1);
                opened[i] = Some(frames.len() - 1);
            }
        }
        // A frame matters when something the picture shows happens in it or below it.
        let mut matters = vec![false; frames.len()];
        let last = path.len().saturating_sub(1);
        for (i, s) in path.iter().enumerate() {
            let shown = s.action.starts_with("DNAT ")
                || s.action == "DROP"
                || s.action.starts_with("REJECT")
                || s.action == "policy DROP"
                || (i == last && o.verdict == Verdict::Unknown);
            if shown {
                for f in &stacks[i] {
                    matters[*f] = true;
                }
                if let Some(f) = opened[i] {
                    matters[f] = true;
                }
            }
        }
        let dnat_chain = path
            .iter()
            .find(|s| s.action.starts_with("DNAT "))
            .map(|s| (s.table.clone(), s.chain.clone()));
        let endpoint_id = o.dnat.as_deref().map(|d| node_id(&["ep", d]));
        if let (Some(id), Some(d)) = (&endpoint_id, &o.dnat) {
            let local = (r.port.external_local || r.port.svl_chain.is_some()).then(|| {
                r.port
                    .local_endpoints
                    .iter()
                    .any(|e| e.address.as_deref() == Some(d.as_str()))
            });
            let chain = dnat_chain.as_ref().map(|c| c.1.as_str()).unwrap_or("");
            let mut label = d.clone();
            if local == Some(true) {
                label += " (local)";
            }
            if !chain.is_empty() && !crate::model::table::is_builtin_chain("nat", chain) {
                label += &format!("\n{chain}");
            }
            self.node(id, label, NodeKind::Endpoint, None);
        }
        // The node a chain is drawn as: its endpoint when it is the chain that DNATs.
        let mut chain_node = |pic: &mut Picture, table: &str, chain: &str| -> String {
            if dnat_chain
                .as_ref()
                .is_some_and(|c| c.0 == table && c.1 == chain)
            {
                if let Some(id) = &endpoint_id {
                    return id.clone();
                }
            }
            let id = node_id(&[table, chain]);
            let kind = if crate::model::table::is_builtin_chain(table, chain) {
                NodeKind::Entry
            } else {
                NodeKind::Chain
            };
            pic.node(&id, chain, kind, Some(table));
            chain_of.insert(id.clone(), (table.to_string(), chain.to_string()));
            id
        };
        let mut prev = entry_id.to_string();
        let mut from_entry = true;
        let mut add = |k: EdgeKey, label: Option<(u32, String)>, dashed: bool| {
            let a = acc.entry(k).or_default();
            if let Some((at, text)) = label {
                if !text.is_empty() {
                    a.labels.insert((at, text));
                }
            }
            a.dashed |= dashed;
            let seen = a.seen.entry(probe_no).or_insert(0.0);
            *seen += o.probability;
        };
        // The way in is labelled with the client, once per hook it enters.
        let client_edge =
            |to: &str, prev: &str, from_entry: bool| -> (EdgeKey, Option<(u32, String)>) {
                let k = EdgeKey {
                    from: prev.to_string(),
                    to: to.to_string(),
                };
                let label = from_entry.then(|| (probe_no as u32, client.to_string()));
                (k, label)
            };
        let mut drawn_edges: BTreeSet<EdgeKey> = BTreeSet::new();
        let mut once = |k: &EdgeKey| drawn_edges.insert(k.clone());
        for (i, s) in path.iter().enumerate() {
            let builtin = crate::model::table::is_builtin_chain(&s.table, &s.chain);
            let cond = || -> (u32, String) {
                let text = if s.assumed {
                    "assumed hook".to_string()
                } else if s.line == 0 {
                    String::new()
                } else {
                    condition(rs, &s.table, &s.chain, s.line)
                };
                (s.line, text)
            };
            if let Some(target) = jump_target(&s.action) {
                let Some(f) = opened[i] else { continue };
                if !matters[f] {
                    continue;
                }
                let to = chain_node(self, &s.table, target);
                let (k, label) = if builtin {
                    client_edge(&to, &prev, from_entry)
                } else {
                    let from = chain_node(self, &s.table, &s.chain);
                    (
                        EdgeKey {
                            from,
                            to: to.clone(),
                        },
                        Some(cond()),
                    )
                };
                if once(&k) {
                    add(k, label, s.action.starts_with("goto "));
                }
            } else if s.action.starts_with("DNAT ") {
                let Some(ep) = endpoint_id.clone() else {
                    continue;
                };
                if builtin {
                    let (k, label) = client_edge(&ep, &prev, from_entry);
                    if once(&k) {
                        add(k, label, false);
                    }
                }
                prev = ep;
                from_entry = false;
            } else if s.action == "DROP"
                || s.action.starts_with("REJECT")
                || s.action == "policy DROP"
            {
                let verdict = s.action.trim_start_matches("policy ").to_string();
                let id = node_id(&["verdict", &verdict]);
                self.node(&id, verdict, NodeKind::Drop, None);
                let from = chain_node(self, &s.table, &s.chain);
                if builtin {
                    let (k, label) = client_edge(&from, &prev, from_entry);
                    if once(&k) {
                        add(k, label, false);
                    }
                }
                let label = if s.action.starts_with("policy ") {
                    (0, "policy".to_string())
                } else {
                    cond()
                };
                let k = EdgeKey { from, to: id };
                if once(&k) {
                    add(k, Some(label), false);
                }
            }
        }
        // Where a way ends without an endpoint or a verdict the picture shows.
        let unseen = o.dnat.is_none() && matches!(o.verdict, Verdict::Accept | Verdict::Unknown);
        if unseen {
            let label = o.label();
            let id = node_id(&["other", &label]);
            self.node(&id, label, NodeKind::Other, None);
            let from = match (&o.unknown_chain, path.last()) {
                (Some(_), Some(s))
                    if !crate::model::table::is_builtin_chain(&s.table, &s.chain) =>
                {
                    chain_node(self, &s.table, &s.chain)
                }
                _ => prev.clone(),
            };
            let label = (from == entry_id).then(|| (probe_no as u32, client.to_string()));
            let k = EdgeKey { from, to: id };
            if once(&k) {
                add(k, label, true);
            }
        }
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
