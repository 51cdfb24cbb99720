//! Tables (`*nat`, `*filter`, …) and the chains each holds.

use super::chain::{Chain, ChainOrigin};
use super::source::Span;

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

/// The table whose built-in chains are exactly `names` (`iptables -S` prints a `-P` line, and a
/// listing a `(policy …)` header, for each built-in chain of the one table it shows); the first in
/// the kernel's order when two tables share them (filter before security).
pub fn with_builtins(names: &std::collections::BTreeSet<&str>) -> Option<&'static str> {
    KNOWN_TABLES.iter().copied().find(|t| {
        let b = builtin_chains(t);
        b.len() == names.len() && b.iter().all(|c| names.contains(c))
    })
}

pub fn is_builtin_chain(table: &str, chain: &str) -> bool {
    builtin_chains(table).contains(&chain)
}

fn name_hash(name: &str) -> u64 {
    use std::hash::BuildHasher;
    // foldhash with a fixed seed: chain names share long prefixes (`KUBE-SEP-`), which a weaker
    // hash spreads badly over a million entries.
    static HASHER: std::sync::OnceLock<hashbrown::DefaultHashBuilder> = std::sync::OnceLock::new();
    HASHER.get_or_init(Default::default).hash_one(name)
}

pub const KNOWN_TABLES: &[&str] = &["raw", "mangle", "nat", "filter", "security"];

/// A table's chain ids by name, built whole on another thread from the names of its declarations
/// (see [`Table::push_unindexed`]).
pub struct ChainIndex(hashbrown::HashTable<ChainId>);

impl ChainIndex {
    /// The index of chains named `names`, with ids in their order; None when a name repeats.
    pub fn of(names: &[&str]) -> Option<ChainIndex> {
        let mut index = hashbrown::HashTable::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            match index.entry(
                name_hash(name),
                |id: &ChainId| names[id.0 as usize] == *name,
                |id| name_hash(names[id.0 as usize]),
            ) {
                hashbrown::hash_table::Entry::Occupied(_) => return None,
                hashbrown::hash_table::Entry::Vacant(v) => {
                    v.insert(ChainId(i as u32));
                }
            }
        }
        Some(ChainIndex(index))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug)]
pub struct Table {
    pub name: Box<str>,
    /// The `*name` line, or none when the table was inferred from a fragment.
    pub span: Option<Span>,
    pub chains: Vec<Chain>,
    /// Chain ids by name; the names live in `chains` only (a million chains, one copy each).
    index: hashbrown::HashTable<ChainId>,
    /// Chains were added past the index, which another thread is building
    /// ([`Table::push_unindexed`]); only built-in chains may be looked up meanwhile.
    unindexed: bool,
    pub committed: bool,
    /// An nftables table's family, base chains and sets; None for an iptables table.
    pub nft: Option<Box<super::nft::NftTable>>,
}

impl Table {
    pub fn new(name: &str, span: Option<Span>) -> Table {
        Table {
            name: name.into(),
            span,
            chains: Vec::new(),
            index: hashbrown::HashTable::new(),
            unindexed: false,
            committed: false,
            nft: None,
        }
    }

    /// Room for `n` more chains.
    pub fn reserve(&mut self, n: usize) {
        self.reserve_chains(n);
        let chains = &self.chains;
        self.index
            .reserve(n, |i| name_hash(&chains[i.0 as usize].name));
    }

    /// Room for `n` more chains, and none in the index (which will be built whole).
    pub fn reserve_chains(&mut self, n: usize) {
        self.chains.reserve_exact(n);
    }

    /// Adds a declared chain without indexing it, for [`Table::install_index`] to index with the
    /// others; until then only built-in chains can be looked up. Hashing 650,000 names into an
    /// index larger than the caches is half the time of reading a large dump's declarations: this
    /// lets another core do it meanwhile.
    pub fn push_unindexed(&mut self, chain: Chain) -> ChainId {
        let id = ChainId(self.chains.len() as u32);
        self.chains.push(chain);
        self.unindexed = true;
        id
    }

    /// Makes `index` the index of every chain; false (and nothing changed) when it does not hold
    /// as many chains as the table, or names its first and last chains otherwise.
    pub fn install_index(&mut self, index: ChainIndex) -> bool {
        let n = self.chains.len();
        let agrees = |i: usize| {
            let name = &*self.chains[i].name;
            index
                .0
                .find(name_hash(name), |id| id.0 as usize == i)
                .is_some()
        };
        if index.len() != n || (n > 0 && !(agrees(0) && agrees(n / 2) && agrees(n - 1))) {
            return false;
        }
        self.index = index.0;
        self.unindexed = false;
        true
    }

    pub fn id(&self, name: &str) -> Option<ChainId> {
        debug_assert!(
            !self.unindexed || is_builtin_chain(&self.name, name),
            "`{name}` looked up before the index of its table was installed"
        );
        let chains = &self.chains;
        self.index
            .find(name_hash(name), |id| *chains[id.0 as usize].name == *name)
            .copied()
    }

    fn index_insert(&mut self, id: ChainId) {
        let chains = &self.chains;
        let h = name_hash(&chains[id.0 as usize].name);
        self.index
            .insert_unique(h, id, |i| name_hash(&chains[i.0 as usize].name));
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
        self.index_insert(id);
        id
    }

    /// Adds a chain; returns None when one of that name exists already.
    pub fn declare(&mut self, chain: Chain) -> Option<ChainId> {
        // One probe for both the duplicate check and the insertion: a dump declares every chain.
        let id = ChainId(self.chains.len() as u32);
        let chains = &self.chains;
        let h = name_hash(&chain.name);
        match self.index.entry(
            h,
            |i| *chains[i.0 as usize].name == *chain.name,
            |i| name_hash(&chains[i.0 as usize].name),
        ) {
            hashbrown::hash_table::Entry::Occupied(_) => None,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(id);
                self.chains.push(chain);
                Some(id)
            }
        }
    }

    pub fn remove_chain(&mut self, name: &str) -> bool {
        let Some(id) = self.id(name) else {
            return false;
        };
        // Ids after it shift down: rebuild the index (`-X` is rare and the index small then).
        self.chains.remove(id.0 as usize);
        self.index.clear();
        for i in 0..self.chains.len() as u32 {
            self.index_insert(ChainId(i));
        }
        true
    }

    /// Keeps the chains `keep` says to, renumbering the rest and indexing them again once.
    pub fn retain_chains(&mut self, mut keep: impl FnMut(ChainId, &Chain) -> bool) {
        let mut id = 0u32;
        self.chains.retain(|c| {
            id += 1;
            keep(ChainId(id - 1), c)
        });
        self.index.clear();
        for i in 0..self.chains.len() as u32 {
            self.index_insert(ChainId(i));
        }
    }

    pub fn chain_ids(&self) -> impl Iterator<Item = ChainId> {
        (0..self.chains.len() as u32).map(ChainId)
    }

    /// The input shows this table's built-in chains (`:PREROUTING ACCEPT [0:0]`, a listing's
    /// `Chain INPUT (policy …)`, `-P FORWARD DROP`): it is the node's whole table, hooks and all,
    /// and nothing of it may be assumed. kube-proxy's restore payloads (`:INPUT - [0:0]`, which
    /// keeps whatever policy the node has) and greps show none.
    pub fn shows_builtins(&self) -> bool {
        self.chains
            .iter()
            .any(|c| c.builtin && c.decl.is_some() && c.policy.is_some())
    }

    /// The input shows built-in chain `name` with its policy.
    pub fn shows_builtin(&self, name: &str) -> bool {
        self.chain(name)
            .is_some_and(|c| c.builtin && c.decl.is_some() && c.policy.is_some())
    }

    pub fn rule_count(&self) -> usize {
        // Counted without reading the chains' runs of lines.
        self.chains.iter().map(|c| c.rules.count()).sum()
    }
}
