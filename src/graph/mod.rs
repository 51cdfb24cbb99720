//! The chains of a rule set as a graph: nodes are chains, edges are jump and goto rules.
//!
//! Built with petgraph for the whole-dump questions: which chains nothing reaches, which jumps form a
//! cycle, what a picture of the rule set looks like. Tracing one packet does not need it.

pub mod picture;

use crate::model::{ChainId, Ruleset};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use rustc_hash::FxHashMap;

/// A chain, as a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChainRef {
    /// Index into `Ruleset::tables`.
    pub table: usize,
    pub chain: ChainId,
}

/// A jump or goto, as an edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jump {
    /// Index of the rule within its chain.
    pub rule: usize,
    pub goto: bool,
}

pub struct ChainGraph {
    pub graph: DiGraph<ChainRef, Jump>,
    index: FxHashMap<ChainRef, NodeIndex>,
    /// Jumps to chains that do not exist: (from, rule index, target name).
    pub dangling: Vec<(ChainRef, usize, String)>,
}

impl ChainGraph {
    pub fn build(rs: &Ruleset) -> ChainGraph {
        let mut graph = DiGraph::new();
        let mut index = FxHashMap::default();
        for (ti, t) in rs.tables.iter().enumerate() {
            for id in t.chain_ids() {
                let r = ChainRef {
                    table: ti,
                    chain: id,
                };
                index.insert(r, graph.add_node(r));
            }
        }
        let mut dangling = Vec::new();
        for (ti, t) in rs.tables.iter().enumerate() {
            for id in t.chain_ids() {
                let c = t.get(id);
                let from = ChainRef {
                    table: ti,
                    chain: id,
                };
                for (i, rule) in rs.rules(c).enumerate() {
                    let Some(target) = rule.jump_target() else {
                        continue;
                    };
                    let goto = rule.target.as_ref().is_some_and(|t| t.goto);
                    match t.id(target) {
                        Some(to) => {
                            let to = ChainRef {
                                table: ti,
                                chain: to,
                            };
                            graph.add_edge(index[&from], index[&to], Jump { rule: i, goto });
                        }
                        None => dangling.push((from, i, target.to_string())),
                    }
                }
            }
        }
        ChainGraph {
            graph,
            index,
            dangling,
        }
    }

    pub fn node(&self, r: ChainRef) -> Option<NodeIndex> {
        self.index.get(&r).copied()
    }

    /// Chains that jump here.
    pub fn callers(&self, r: ChainRef) -> impl Iterator<Item = ChainRef> + '_ {
        self.node(r)
            .into_iter()
            .flat_map(move |n| self.graph.neighbors_directed(n, Direction::Incoming))
            .map(move |n| self.graph[n])
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
        // Kosaraju walks with explicit stacks; petgraph's Tarjan recurses once per chain and
        // overflows the stack on a 100,000-deep chain of jumps.
        let mut sccs: Vec<Vec<NodeIndex>> = petgraph::algo::kosaraju_scc(&self.graph)
            .into_iter()
            .filter(|scc| scc.len() > 1 || self.graph.find_edge(scc[0], scc[0]).is_some())
            .map(|mut scc| {
                scc.sort();
                scc
            })
            .collect();
        sccs.sort();
        sccs.into_iter()
            .map(|scc| scc.into_iter().map(|n| self.graph[n]).collect())
            .collect()
    }

    /// Every chain reachable from the given start chains.
    pub fn reachable_from(&self, starts: &[ChainRef]) -> rustc_hash::FxHashSet<ChainRef> {
        let mut seen = rustc_hash::FxHashSet::default();
        let mut stack: Vec<NodeIndex> = starts.iter().filter_map(|s| self.node(*s)).collect();
        while let Some(n) = stack.pop() {
            if seen.insert(self.graph[n]) {
                stack.extend(self.graph.neighbors(n));
            }
        }
        seen
    }
}
