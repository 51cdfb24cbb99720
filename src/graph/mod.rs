//! The chains of a rule set as a graph: nodes are chains, edges are jump and goto rules.
//!
//! Built with petgraph for the whole-dump questions: which chains nothing reaches, which jumps form a
//! cycle, what the rule set's picture (`render::picture`) shows. Tracing one packet does not need it.

use crate::model::{ChainId, Ruleset, Table, Visit};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

/// A chain, as a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChainRef {
    /// Index into `Ruleset::tables`.
    pub table: usize,
    pub chain: ChainId,
}

/// A jump or goto, as an edge: the index of the rule within its chain, and whether it is a goto,
/// in one 32-bit word (a graph of a large dump has over a million edges, each four bytes smaller
/// for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jump(u32);

impl Jump {
    pub fn new(rule: u32, goto: bool) -> Jump {
        debug_assert!(rule < 1 << 31, "rule {rule}");
        Jump(rule << 1 | goto as u32)
    }

    /// Index of the rule within its chain.
    pub fn rule(self) -> u32 {
        self.0 >> 1
    }

    /// `-g` rather than `-j`.
    pub fn goto(self) -> bool {
        self.0 & 1 == 1
    }
}

pub struct ChainGraph {
    /// Nodes carry nothing: a node's chain follows from its index ([`ChainGraph::chain_at`]),
    /// which saves 16 bytes on each of a million nodes.
    pub graph: DiGraph<(), Jump>,
    /// Where each table's chains start among the nodes, and where the last table's end: chains
    /// are added table by table, in id order, so a chain's node is found by arithmetic rather
    /// than a map of a million entries.
    offsets: Vec<usize>,
    /// Jumps to chains that do not exist: (from, rule index, target name).
    pub dangling: Vec<(ChainRef, usize, String)>,
}

/// The jumps of one chain to chains of its table, as a pass over its rules finds them:
/// (rule index, target, goto).
pub type Jumps = Box<[(u32, ChainId, bool)]>;

/// Jumps to chains a table does not declare, as a sweep finds them on all cores:
/// (from, rule index, target name).
pub type Dangling = std::sync::Mutex<Vec<(ChainRef, usize, String)>>;

/// The jumps of the chain `v` visits in table `table` (index `ti`); a jump to a chain the table
/// does not declare goes to `dangling`.
pub fn read_jumps(ti: usize, table: &Table, v: &Visit<'_>, dangling: &Dangling) -> Jumps {
    let rules = v.rules();
    // Sized once: a million chains each growing a list of jumps is a million reallocations.
    let mut to = Vec::with_capacity(rules.clone().filter(|r| r.jump_target().is_some()).count());
    for (i, rule) in rules.enumerate() {
        // nftables verdict maps jump to many chains from one rule.
        let targets: Vec<(&str, bool)> = match rule.jump_target() {
            Some(target) => vec![(target, rule.target.as_ref().is_some_and(|t| t.goto))],
            None if table.nft.is_some() => rule.jump_targets(table),
            None => continue,
        };
        for (target, goto) in targets {
            match table.id(target) {
                Some(id) => to.push((i as u32, id, goto)),
                None => {
                    let from = ChainRef {
                        table: ti,
                        chain: v.id,
                    };
                    dangling.lock().unwrap().push((from, i, target.to_string()));
                }
            }
        }
    }
    to.into()
}

impl ChainGraph {
    /// The graph of `rs`, reading every rule once without keeping it (see [`Ruleset::sweep`]).
    pub fn build(rs: &Ruleset) -> ChainGraph {
        let mut g = ChainGraph::with_chains(rs);
        let dangling = Dangling::default();
        for (ti, t) in rs.tables.iter().enumerate() {
            rs.sweep_into(
                t,
                |v| read_jumps(ti, t, v, &dangling),
                |first, jumps| g.add_jumps(ti, first, jumps),
            );
        }
        g.set_dangling(dangling.into_inner().unwrap());
        g
    }

    /// The chains of `rs` as nodes, with no jumps yet: a sweep adds them window by window
    /// ([`ChainGraph::add_jumps`]) instead of holding every chain's jumps until the end.
    pub fn with_chains(rs: &Ruleset) -> ChainGraph {
        let nodes = rs.tables.iter().map(|t| t.chains.len()).sum();
        // A rule jumps once at most. Room that is never written stays virtual memory.
        let mut graph = DiGraph::with_capacity(nodes, rs.rule_count());
        let mut offsets = Vec::with_capacity(rs.tables.len() + 1);
        for t in &rs.tables {
            offsets.push(graph.node_count());
            for _ in t.chain_ids() {
                graph.add_node(());
            }
        }
        offsets.push(graph.node_count());
        ChainGraph {
            graph,
            offsets,
            dangling: Vec::new(),
        }
    }

    /// Adds the jumps of consecutive chains of table `table`, from chain `first` on.
    pub fn add_jumps(
        &mut self,
        table: usize,
        first: ChainId,
        jumps: impl IntoIterator<Item = Jumps>,
    ) {
        let base = self.offsets[table];
        for (ci, j) in jumps.into_iter().enumerate() {
            let from = NodeIndex::new(base + first.0 as usize + ci);
            for &(rule, to, goto) in j.iter() {
                self.graph.add_edge(
                    from,
                    NodeIndex::new(base + to.0 as usize),
                    Jump::new(rule, goto),
                );
            }
        }
    }

    /// Records the jumps to undeclared chains, in table, chain and rule order.
    pub fn set_dangling(&mut self, mut dangling: Vec<(ChainRef, usize, String)>) {
        dangling.sort_by_key(|(from, rule, _)| (from.table, from.chain, *rule));
        self.dangling = dangling;
    }

    pub fn node(&self, r: ChainRef) -> Option<NodeIndex> {
        let n = self.offsets.get(r.table)? + r.chain.0 as usize;
        (n < *self.offsets.get(r.table + 1)?).then(|| NodeIndex::new(n))
    }

    /// The chain of node `n`.
    pub fn chain_at(&self, n: NodeIndex) -> ChainRef {
        // A handful of tables: the last one starting at or before the node holds it.
        let table = self.offsets.partition_point(|&o| o <= n.index()) - 1;
        ChainRef {
            table,
            chain: ChainId((n.index() - self.offsets[table]) as u32),
        }
    }

    /// Chains that jump here.
    pub fn callers(&self, r: ChainRef) -> impl Iterator<Item = ChainRef> + '_ {
        self.node(r)
            .into_iter()
            .flat_map(move |n| self.graph.neighbors_directed(n, Direction::Incoming))
            .map(move |n| self.chain_at(n))
    }

    pub fn in_degree(&self, r: ChainRef) -> usize {
        self.node(r)
            .map(|n| {
                self.graph
                    .neighbors_directed(n, Direction::Incoming)
                    .count()
            })
            .unwrap_or(0)
    }

    /// Groups of chains that can jump back into themselves (each group is one cycle or more).
    pub fn cycles(&self) -> Vec<Vec<ChainRef>> {
        let g = &self.graph;
        let left = self.leading_into_cycles();
        if !left.contains(&true) {
            return Vec::new();
        }
        // Kosaraju walks with explicit stacks; petgraph's Tarjan recurses once per chain and
        // overflows the stack on a 100,000-deep chain of jumps.
        let rest = petgraph::visit::NodeFiltered::from_fn(g, |v: NodeIndex| left[v.index()]);
        let mut sccs: Vec<Vec<NodeIndex>> = petgraph::algo::kosaraju_scc(&rest)
            .into_iter()
            .filter(|scc| scc.len() > 1 || g.find_edge(scc[0], scc[0]).is_some())
            .map(|mut scc| {
                scc.sort();
                scc
            })
            .collect();
        sccs.sort();
        sccs.into_iter()
            .map(|scc| scc.into_iter().map(|n| self.chain_at(n)).collect())
            .collect()
    }

    /// The chains on a cycle or leading into one, by node: chains that jump nowhere are taken
    /// away, then those left jumping nowhere, and so on. On a kube-proxy dump none is left, so
    /// the component search does not build a component for each of a million chains; one count
    /// per chain keeps the fresh memory this costs small.
    fn leading_into_cycles(&self) -> Vec<bool> {
        let g = &self.graph;
        let n = g.node_count();
        let mut outs: Vec<u32> = vec![0; n];
        for e in g.raw_edges() {
            outs[e.source().index()] += 1;
        }
        let mut done: Vec<NodeIndex> = (0..n)
            .filter(|&v| outs[v] == 0)
            .map(NodeIndex::new)
            .collect();
        while let Some(v) = done.pop() {
            for c in g.neighbors_directed(v, Direction::Incoming) {
                outs[c.index()] -= 1;
                if outs[c.index()] == 0 {
                    done.push(c);
                }
            }
        }
        // A chain taken away was pushed when its count reached zero; every other keeps a jump.
        outs.into_iter().map(|o| o > 0).collect()
    }

    /// Visits the chains reachable from `start` (itself first), depth first, until `stop` answers
    /// true; returns whether it did. Stopping early matters: a Service chain's first endpoint
    /// usually answers the question, and a large dump asks it 100,000 times.
    pub fn any_reachable(&self, start: ChainRef, mut stop: impl FnMut(ChainRef) -> bool) -> bool {
        let mut seen = rustc_hash::FxHashSet::default();
        let mut stack: Vec<NodeIndex> = self.node(start).into_iter().collect();
        while let Some(n) = stack.pop() {
            if !seen.insert(n) {
                continue;
            }
            if stop(self.chain_at(n)) {
                return true;
            }
            stack.extend(self.graph.neighbors(n));
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(text: &str) -> (Ruleset, ChainGraph) {
        let rs = crate::parse::read("t", text.as_bytes().to_vec(), None).unwrap();
        let g = ChainGraph::build(&rs);
        (rs, g)
    }

    #[test]
    fn a_jump_keeps_its_rule_and_whether_it_is_a_goto_in_one_word() {
        assert_eq!(std::mem::size_of::<Jump>(), 4);
        for (rule, goto) in [(0, false), (0, true), (7, true), ((1 << 31) - 1, false)] {
            let j = Jump::new(rule, goto);
            assert_eq!((j.rule(), j.goto()), (rule, goto));
        }
    }

    fn names(rs: &Ruleset, cycles: &[Vec<ChainRef>]) -> Vec<Vec<String>> {
        cycles
            .iter()
            .map(|c| {
                c.iter()
                    .map(|r| rs.tables[r.table].get(r.chain).name.to_string())
                    .collect()
            })
            .collect()
    }

    /// Trimming chains without callers or targets must keep every cycle, self-loops included,
    /// whatever hangs off them.
    #[test]
    fn cycles_survive_the_trimming_of_their_tails() {
        let (rs, g) = graph(
            "*filter\n:A - [0:0]\n:B - [0:0]\n:C - [0:0]\n:D - [0:0]\n:E - [0:0]\n:F - [0:0]\n\
             -A C -j A\n-A A -j B\n-A B -j A\n-A A -j D\n-A E -j E\n-A F -j C\nCOMMIT\n",
        );
        assert_eq!(names(&rs, &g.cycles()), [vec!["A", "B"], vec!["E"]]);
        let (_, acyclic) =
            graph("*filter\n:A - [0:0]\n:B - [0:0]\n-A A -j B\n-A B -j ACCEPT\nCOMMIT\n");
        assert!(acyclic.cycles().is_empty());
    }
}
