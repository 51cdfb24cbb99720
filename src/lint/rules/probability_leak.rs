//! # probability-leak
//!
//! ## What it flags
//! Some share of a Service's new connections falls through its `KUBE-SVC-`/`KUBE-SVL-` chain
//! without reaching any endpoint: the last endpoint rule still carries a `-m statistic` probability
//! (or another condition), or hand-edited probabilities do not add up. In kube-proxy's nftables
//! mode: a `numgen random mod N vmap { … }` whose elements hold fewer than the N values. The
//! finding gives the share.
//!
//! ## Why it matters
//! A connection that falls through is not DNATed: it goes on to the cluster IP itself, which nothing
//! answers, and times out. A 10% leak is one failed request in ten, which looks like a flaky backend.
//!
//! ## Example
//! ```text
//! -A KUBE-SVC-X -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-A
//! -A KUBE-SVC-X -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-B
//! (25% of connections reach neither)
//! ```
//!
//! ```text
//! numgen random mod 3 vmap { 0 : goto endpoint-A, 1 : goto endpoint-B }
//! (1/3 of connections reach neither)
//! ```
//!
//! ## Fix
//! The last endpoint rule must be unconditional; endpoint i of n takes probability 1/(n−i); a
//! numgen map holds one value per endpoint, 0 to N−1. Let kube-proxy rewrite the chain (restart
//! it, or touch the Service) rather than editing by hand.

use super::prelude::*;
use crate::model::share::{exact, share};

pub struct ProbabilityLeak;

static META: Meta = Meta {
    name: "probability-leak",
    code: "KP007",
    severity: Severity::Error,
    summary: "a share of a Service's connections falls through without reaching an endpoint",
    source: include_str!("probability_leak.rs"),
    scoped: false,
};

impl Rule for ProbabilityLeak {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check_chain(&self, cx: &ChainContext, out: &mut Vec<Finding>) {
        let chain = cx.chain;
        if cx.table.nft.is_some() {
            numgen_leaks(cx, out);
            return;
        }
        if let Some(l) = cx.balancing() {
            let last = l.steps.last().unwrap();
            let message = match l.rest {
                Some(rest) if rest > 1e-12 => format!(
                    "{} ({}) of new connections to `{}` reach no endpoint",
                    share(rest),
                    exact(rest),
                    chain.name
                ),
                Some(_) => return,
                None => format!(
                    "some new connections to `{}` may reach no endpoint: its endpoint rules have conditions besides the probability",
                    chain.name
                ),
            };
            out.push(
                Finding::new(&META, message)
                    .at(cx.slots[last.index].span, match last.probability {
                        Some(p) => format!("the last endpoint rule is taken with probability {}", exact(p)),
                        None => "the last endpoint rule is conditional".to_string(),
                    })
                    .in_chain("nat", &chain.name)
                    .for_its_service()
                    .unless_hidden(cx.rs.partial("nat", &chain.name))
                    .help("make the last endpoint rule unconditional (no -m statistic), as kube-proxy writes it"),
            );
        }
    }
}

/// nftables: `numgen random mod N vmap { … }` whose elements leave values of 0…N−1 unmapped.
fn numgen_leaks(cx: &ChainContext, out: &mut Vec<Finding>) {
    use crate::model::nft::{Atom, SetRef, VmapKey};
    use crate::model::TargetKind;
    for (i, r) in cx.rules.iter().enumerate() {
        let Some(TargetKind::Vmap(v)) = r.target.as_ref().map(|t| &t.kind) else {
            continue;
        };
        let (VmapKey::Numgen { modulus }, SetRef::Inline(els)) = (&v.key, &v.map) else {
            continue;
        };
        let n = u64::from(*modulus).max(1);
        let mut held = vec![false; n.min(1 << 16) as usize];
        for e in els.iter() {
            if let Some(Atom::Num(lo, hi)) = e.key.first() {
                for v in *lo..=(*hi).min(n - 1) {
                    if let Some(h) = held.get_mut(v as usize) {
                        *h = true;
                    }
                }
            }
        }
        let missing = held.iter().filter(|h| !**h).count() as u64;
        if missing == 0 {
            continue;
        }
        let rest = missing as f64 / n as f64;
        out.push(
            Finding::new(
                &META,
                format!(
                    "{} ({missing}/{n}) of new connections to `{}` reach no endpoint: its numgen map holds {} of the values 0 to {}",
                    share(rest),
                    cx.chain.name,
                    n - missing,
                    n - 1
                ),
            )
            .at(cx.slots[i].span, format!("numgen random mod {n}"))
            .in_chain(&cx.table.name, &cx.chain.name)
            .for_its_service()
            .help("give the map one element per value 0 to N−1, or N the number of its elements, as kube-proxy writes it"),
        );
    }
}
