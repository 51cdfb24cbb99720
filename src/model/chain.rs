//! Chains: built-in hooks with a policy, and user chains with rules that are parsed when first needed.

use super::chain_name::ChainName;
use super::rule::{Counters, Rule};
use super::rule_list::RuleList;
use super::source::{Source, Span};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    Accept,
    Drop,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Accept => "ACCEPT",
            Policy::Drop => "DROP",
        }
    }
}

/// How kptrace came to know a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChainOrigin {
    /// Declared in the input (`:NAME POLICY [p:b]`, `iptables -N`, a listing header).
    Declared,
    /// Named by a rule (`-A NAME` or `-j NAME`) in a fragment that never declared it. When it has no
    /// rules, its contents are simply unknown (a grep'd paste), not empty.
    Implicit,
    /// Not in the input at all; kptrace assumed kube-proxy's standard contents and says so.
    Assumed,
}

/// A rule of a chain: either already built, or a span of source text parsed on first use.
///
/// Commands that need one Service of a 50,000-Service dump should not pay for parsing the other
/// 49,999, so rule text is only indexed up front.
#[derive(Debug)]
pub struct RuleSlot {
    pub line: u32,
    /// The whole line.
    pub span: Span,
    /// Where the rule specification starts (after `[p:b] -A CHAIN `).
    pub body_start: u32,
    /// Boxed: most dumps carry no counters, and a slot per rule of a 2.5-million-rule dump should
    /// stay small.
    pub counters: Option<Box<Counters>>,
    /// A pointer-sized once-cell: every rule of a large dump has one.
    pub(crate) cell: once_cell::race::OnceBox<Rule>,
}

impl RuleSlot {
    pub fn pending(line: u32, span: Span, body_start: u32, counters: Option<Counters>) -> Self {
        RuleSlot {
            line,
            span,
            body_start,
            counters: counters.map(Box::new),
            cell: once_cell::race::OnceBox::new(),
        }
    }

    pub fn ready(rule: Rule) -> Self {
        let cell = once_cell::race::OnceBox::new();
        let (line, span, counters) = (rule.line, rule.span, rule.counters);
        let _ = cell.set(Box::new(rule));
        RuleSlot {
            line,
            span,
            body_start: span.start,
            counters: counters.map(Box::new),
            cell,
        }
    }

    pub fn get(&self) -> Option<&Rule> {
        self.cell.get()
    }
}

#[derive(Debug)]
pub struct Chain {
    pub name: ChainName,
    pub builtin: bool,
    pub policy: Option<Policy>,
    /// Boxed: most dumps carry no counters, and a large one declares 600,000 chains.
    pub counters: Option<Box<Counters>>,
    /// The declaration (`:NAME …`), when there was one.
    pub decl: Option<Span>,
    pub origin: ChainOrigin,
    pub rules: RuleList,
}

impl Chain {
    pub fn new(name: &str, origin: ChainOrigin, table: &str) -> Chain {
        Chain::named(name.into(), origin, table)
    }

    /// A chain named by the text `name` of `source` (a declaration the parser read).
    pub fn in_source(source: &Arc<Source>, name: Span, origin: ChainOrigin, table: &str) -> Chain {
        Chain::named(ChainName::in_source(source, name), origin, table)
    }

    fn named(name: ChainName, origin: ChainOrigin, table: &str) -> Chain {
        let builtin = super::table::is_builtin_chain(table, &name);
        Chain {
            name,
            builtin,
            policy: builtin.then_some(Policy::Accept),
            counters: None,
            decl: None,
            origin,
            rules: RuleList::new(),
        }
    }

    /// Appends a rule, growing the list by half rather than doubling it from four: most chains of
    /// a kube-proxy dump (the endpoint chains) hold two rules, and a million of them with room
    /// for four would waste a hundred megabytes.
    pub fn push_rule(&mut self, slot: RuleSlot) {
        let rules = &mut *self.rules;
        if rules.len() == rules.capacity() {
            rules.reserve_exact((rules.len() / 2).max(1));
        }
        rules.push(slot);
    }

    /// A chain of a fragment that was only ever jumped to: what it does is not in the input.
    pub fn is_opaque(&self) -> bool {
        self.origin == ChainOrigin::Implicit && self.rules.count() == 0 && !self.builtin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 50,000-Service dump declares 650,000 chains: every byte here is 650 kB of memory the
    /// kernel zeroes before `svc` can answer.
    #[test]
    fn a_chain_stays_small() {
        assert!(
            std::mem::size_of::<Chain>() <= 72,
            "{}",
            std::mem::size_of::<Chain>()
        );
        assert!(std::mem::size_of::<RuleSlot>() <= 32);
    }
}
