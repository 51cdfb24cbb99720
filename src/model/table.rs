//! Tables (`*nat`, `*filter`, …) and the chains each holds.

use super::chain::{Chain, ChainOrigin};
use super::source::Span;
use rustc_hash::FxHashMap;

/// Index of a chain within its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId(pub u32);

/// The built-in chains of each table, in the kernel's terms.
pub fn builtin_chains(table: &str) -> &'static [&'static str] {
    match table {
        "filter" => &["INPUT", "FORWARD", "OUTPUT"],
        "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
        "mangle" => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
        "raw" => &["PREROUTING", "OUTPUT"],
        "security" => &["INPUT", "FORWARD", "OUTPUT"],
        _ => &[],
    }
}

pub fn is_builtin_chain(table: &str, chain: &str) -> bool {
    builtin_chains(table).contains(&chain)
}

pub const KNOWN_TABLES: &[&str] = &["raw", "mangle", "nat", "filter", "security"];

#[derive(Debug)]
pub struct Table {
    pub name: Box<str>,
    /// The `*name` line, or none when the table was inferred from a fragment.
    pub span: Option<Span>,
    pub chains: Vec<Chain>,
    index: FxHashMap<Box<str>, ChainId>,
    pub committed: bool,
}

impl Table {
    pub fn new(name: &str, span: Option<Span>) -> Table {
        Table {
            name: name.into(),
            span,
            chains: Vec::new(),
            index: FxHashMap::default(),
            committed: false,
        }
    }

    pub fn id(&self, name: &str) -> Option<ChainId> {
        self.index.get(name).copied()
    }

    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.id(name).map(|id| &self.chains[id.0 as usize])
    }

    pub fn get(&self, id: ChainId) -> &Chain {
        &self.chains[id.0 as usize]
    }

    pub fn get_mut(&mut self, id: ChainId) -> &mut Chain {
        &mut self.chains[id.0 as usize]
    }

    /// The chain of that name, created (with `origin`) when it does not exist yet.
    pub fn ensure(&mut self, name: &str, origin: ChainOrigin) -> ChainId {
        if let Some(id) = self.id(name) {
            return id;
        }
        let id = ChainId(self.chains.len() as u32);
        self.chains.push(Chain::new(name, origin, &self.name));
        self.index.insert(name.into(), id);
        id
    }

    /// Adds a chain; returns None when one of that name exists already.
    pub fn declare(&mut self, chain: Chain) -> Option<ChainId> {
        if self.index.contains_key(&chain.name) {
            return None;
        }
        let id = ChainId(self.chains.len() as u32);
        self.index.insert(chain.name.clone(), id);
        self.chains.push(chain);
        Some(id)
    }

    pub fn remove_chain(&mut self, name: &str) -> bool {
        let Some(id) = self.index.remove(name) else {
            return false;
        };
        self.chains.remove(id.0 as usize);
        for v in self.index.values_mut() {
            if v.0 > id.0 {
                v.0 -= 1;
            }
        }
        true
    }

    pub fn chain_ids(&self) -> impl Iterator<Item = ChainId> {
        (0..self.chains.len() as u32).map(ChainId)
    }

    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }
}
