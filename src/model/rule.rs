//! A rule: its criteria, its target, and where it came from.

use super::criterion::{Criterion, Match, Statistic};
use super::source::Span;
use super::target::{Target, TargetKind};

/// Packet and byte counters (`[p:b]` of `iptables-save -c`, or the `pkts bytes` columns of a listing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// 1-based line of the rule in its source; 0 for rules kptrace assumed (standard kube-proxy hooks).
    pub line: u32,
    /// The whole line in the source.
    pub span: Span,
    pub counters: Option<Counters>,
    pub matches: Box<[Match]>,
    pub target: Option<Target>,
    /// The rule could not be parsed; the error was reported and the engine treats the rule as unknown.
    pub invalid: bool,
}

impl Rule {
    pub fn assumed(matches: Vec<Match>, target: Target) -> Rule {
        Rule {
            line: 0,
            span: Span::NONE,
            counters: None,
            matches: matches.into_boxed_slice(),
            target: Some(target),
            invalid: false,
        }
    }

    pub fn is_assumed(&self) -> bool {
        self.line == 0
    }

    pub fn comment(&self) -> Option<&str> {
        self.matches.iter().find_map(|m| match &m.criterion {
            Criterion::Comment(c) => Some(&**c),
            _ => None,
        })
    }

    pub fn statistic(&self) -> Option<&Statistic> {
        self.matches.iter().find_map(|m| match &m.criterion {
            Criterion::Statistic(s) => Some(s),
            _ => None,
        })
    }

    /// The chain this rule jumps or goes to, if its target is a user chain.
    pub fn jump_target(&self) -> Option<&str> {
        match &self.target {
            Some(Target {
                kind: TargetKind::Chain(c),
                ..
            }) => Some(c),
            _ => None,
        }
    }

    /// Every chain the rule can jump or go to, with whether by goto: its target's, or each
    /// chain a verdict map names (the map written in the rule, or a named map of `table`).
    pub fn jump_targets<'a>(&'a self, table: &'a super::Table) -> Vec<(&'a str, bool)> {
        use super::nft::{MapVerdict, SetRef};
        match self.target.as_ref().map(|t| &t.kind) {
            Some(TargetKind::Chain(c)) => vec![(c, self.target.as_ref().is_some_and(|t| t.goto))],
            Some(TargetKind::Vmap(v)) => {
                let elements: &[super::nft::Element] = match &v.map {
                    SetRef::Inline(e) => e,
                    SetRef::Named(n) => match table.nft.as_ref().and_then(|t| t.sets.get(n)) {
                        Some(s) => &s.elements,
                        None => &[],
                    },
                };
                elements
                    .iter()
                    .filter_map(|e| match &e.verdict {
                        Some(MapVerdict::Jump(c)) => Some((&**c, false)),
                        Some(MapVerdict::Goto(c)) => Some((&**c, true)),
                        _ => None,
                    })
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    pub fn target_kind(&self) -> Option<&TargetKind> {
        self.target.as_ref().map(|t| &t.kind)
    }

    /// The criteria that constrain the packet (everything but comments).
    pub fn conditions(&self) -> impl Iterator<Item = &Match> {
        self.matches
            .iter()
            .filter(|m| !matches!(m.criterion, Criterion::Comment(_)))
    }

    /// True when the rule has no condition at all: every packet that reaches it matches.
    pub fn is_unconditional(&self) -> bool {
        !self.invalid && self.conditions().next().is_none()
    }

    pub fn destination(&self) -> Option<(bool, ipnet::IpNet)> {
        self.matches.iter().find_map(|m| match &m.criterion {
            Criterion::Destination(n) => Some((m.negated, *n)),
            _ => None,
        })
    }

    pub fn source(&self) -> Option<(bool, ipnet::IpNet)> {
        self.matches.iter().find_map(|m| match &m.criterion {
            Criterion::Source(n) => Some((m.negated, *n)),
            _ => None,
        })
    }
}
