//! The load-balancing ladder of a KUBE-SVC-/KUBE-SVL- chain: the rules that pick an endpoint, and the
//! share of new connections each one gets.
//!
//! A first packet walks the rules in order; `-m statistic --mode random` takes its branch with the
//! probability the kernel stores (`round(p·2³¹)/2³¹`), so rule i's share is pᵢ·Π(1−pⱼ) over earlier
//! rules, and what is left after the last rule falls through. Affinity checks (`-m recent --rcheck`)
//! never match a first packet; jumps to KUBE-MARK-* chains come back.

use crate::model::criterion::{Criterion, RecentMode, Statistic};
use crate::model::{Rule, TargetKind};

pub struct Step {
    /// Index of the rule in its chain.
    pub index: usize,
    /// Endpoint chain or DNAT destination.
    pub target: String,
    /// The share of new connections that take this rule; None when a criterion other than
    /// statistic decides (the share depends on the packet).
    pub share: Option<f64>,
    /// The probability written on the rule, as the kernel stores it.
    pub probability: Option<f64>,
}

pub struct Ladder {
    pub steps: Vec<Step>,
    /// The share that reaches the end of the chain; None when a conditional step makes it unknown.
    pub rest: Option<f64>,
}

fn picks_endpoint(rule: &Rule) -> Option<String> {
    match rule.target_kind()? {
        TargetKind::Chain(c) if c.starts_with("KUBE-SEP-") => Some(c.to_string()),
        TargetKind::Dnat { .. } => rule.target.as_ref().map(crate::model::print::target),
        _ => None,
    }
}

fn is_affinity_check(rule: &Rule) -> bool {
    rule.matches.iter().any(|m| {
        matches!(&m.criterion, Criterion::Recent(r) if r.mode == RecentMode::Rcheck || r.mode == RecentMode::Update)
    })
}

/// The ladder of a chain's rules, or None when the chain picks no endpoint at all.
pub fn ladder<'a>(rules: impl Iterator<Item = &'a Rule>) -> Option<Ladder> {
    let mut steps = Vec::new();
    let mut rest = Some(1.0f64);
    for (index, rule) in rules.enumerate() {
        if is_affinity_check(rule) {
            continue;
        }
        let Some(target) = picks_endpoint(rule) else {
            continue;
        };
        let mut probability = None;
        let mut conditional = false;
        for m in rule.conditions() {
            match &m.criterion {
                Criterion::Statistic(s @ Statistic::Random { .. }) if !m.negated => {
                    probability = Some(s.probability())
                }
                Criterion::Statistic(s @ Statistic::Nth { .. }) if !m.negated => {
                    probability = Some(s.probability())
                }
                _ => conditional = true,
            }
        }
        let p = probability.unwrap_or(1.0);
        let share = match (rest, conditional) {
            (Some(r), false) => Some(r * p),
            _ => None,
        };
        rest = match (rest, conditional) {
            (Some(r), false) => Some(r * (1.0 - p)),
            _ => None,
        };
        steps.push(Step {
            index,
            target,
            share,
            probability,
        });
    }
    (!steps.is_empty()).then_some(Ladder { steps, rest })
}

/// The ladder of a balancing chain (nat KUBE-SVC-/KUBE-SVL-), when the chain is one and has one.
pub fn balancing(cx: &crate::lint::ChainContext) -> Option<Ladder> {
    let name = &cx.chain.name;
    if !cx.is("nat") || !(name.starts_with("KUBE-SVC-") || name.starts_with("KUBE-SVL-")) {
        return None;
    }
    ladder(cx.rules())
}
