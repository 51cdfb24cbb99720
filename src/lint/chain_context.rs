//! What a rule sees of one chain while `lint` sweeps the dump: the chain, its rules parsed for the
//! visit, and the rest of the rule set for the odd look at another chain.
//!
//! Most checks are about one chain at a time. Running them in the sweep that reads each chain
//! once lets `lint` hold a window of rules instead of the 2 million rules of a large dump.

use super::Options;
use crate::model::{Chain, Rule, RuleSlot, Ruleset, Table, Visit};
use std::borrow::Cow;

pub struct ChainContext<'a> {
    pub rs: &'a Ruleset,
    pub table: &'a Table,
    pub chain: &'a Chain,
    /// Where each rule's text is: `slots[i]` holds the line and span of `rules[i]`.
    pub slots: &'a [RuleSlot],
    pub rules: &'a [Cow<'a, Rule>],
    pub opts: &'a Options,
    /// The chain as a load-balancing ladder, worked out once for the rules that ask.
    balancing: std::sync::OnceLock<Option<super::ladder::Ladder>>,
}

impl<'a> ChainContext<'a> {
    pub fn new(rs: &'a Ruleset, table: &'a Table, v: &'a Visit<'a>, opts: &'a Options) -> Self {
        ChainContext {
            rs,
            table,
            chain: v.chain,
            slots: v.slots,
            rules: v.rules,
            opts,
            balancing: std::sync::OnceLock::new(),
        }
    }

    /// The chain's endpoint rules with their shares, when it is a Service's balancing chain.
    pub fn balancing(&self) -> Option<&super::ladder::Ladder> {
        self.balancing
            .get_or_init(|| super::ladder::balancing(self))
            .as_ref()
    }

    pub fn rule(&self, i: usize) -> &'a Rule {
        &self.rules[i]
    }

    pub fn rules(&self) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().map(|r| &**r)
    }

    /// The rules of another chain of the table, parsed for the caller (this chain's, borrowed).
    pub fn rules_of(&self, other: &'a Chain) -> Vec<Cow<'a, Rule>> {
        if std::ptr::eq(other, self.chain) {
            return self.rules.iter().map(|r| Cow::Borrowed(&**r)).collect();
        }
        self.rs.peek_rules(other)
    }

    pub fn is(&self, table: &str) -> bool {
        &*self.table.name == table
    }
}
