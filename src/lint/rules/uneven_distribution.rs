//! # uneven-distribution
//!
//! ## What it flags
//! The endpoints of one Service get shares of new connections that differ from each other by more
//! than a tolerance (default 0.0001; `--uneven-tolerance`). Each endpoint's share is reported.
//!
//! ## Why it matters
//! kube-proxy gives endpoint i of n the probability 1/(n−i), so every endpoint gets 1/n. Uneven
//! shares mean hand-edited or stale rules (an endpoint added without rewriting the earlier
//! probabilities): some pods are overloaded while others idle. The kernel's rounding of
//! probabilities (to 1/2³¹) and kube-proxy's 5-decimal probabilities of old versions stay far below
//! the default tolerance.
//!
//! ## Example
//! ```text
//! -A KUBE-SVC-X -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-A
//! -A KUBE-SVC-X -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-B
//! -A KUBE-SVC-X -j KUBE-SEP-C
//! (A gets 50%, B and C 25% each)
//! ```
//!
//! ## Fix
//! Let kube-proxy rewrite the chain; by hand, give endpoint i of n the probability 1/(n−i).

use super::prelude::*;
use crate::model::share::share;

pub struct UnevenDistribution;

static META: Meta = Meta {
    name: "uneven-distribution",
    code: "KP008",
    severity: Severity::Warning,
    summary: "endpoints of one Service get noticeably different shares",
    source: include_str!("uneven_distribution.rs"),
    scoped: false,
};

impl Rule for UnevenDistribution {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check_chain(&self, cx: &ChainContext, out: &mut Vec<Finding>) {
        let chain = cx.chain;
        if let Some(l) = cx.balancing() {
            let shares: Vec<f64> = l.steps.iter().filter_map(|s| s.share).collect();
            if shares.len() < 2 || shares.len() != l.steps.len() {
                return;
            }
            let max = shares.iter().cloned().fold(f64::MIN, f64::max);
            let min = shares.iter().cloned().fold(f64::MAX, f64::min);
            if max - min <= cx.opts.uneven_tolerance {
                return;
            }
            let (hi, lo) = (
                l.steps.iter().find(|s| s.share == Some(max)).unwrap(),
                l.steps.iter().find(|s| s.share == Some(min)).unwrap(),
            );
            let list: Vec<String> = l
                .steps
                .iter()
                .map(|s| format!("{} {}", s.target, share(s.share.unwrap())))
                .collect();
            out.push(
                Finding::new(
                    &META,
                    format!(
                        "endpoints of `{}` get uneven shares: {}",
                        chain.name,
                        list.join(", ")
                    ),
                )
                .at(
                    cx.slots[lo.index].span,
                    format!("{} gets {}", lo.target, share(min)),
                )
                .because(
                    cx.slots[hi.index].span,
                    format!("{} gets {}", hi.target, share(max)),
                )
                .in_chain("nat", &chain.name)
                .for_its_service()
                .help(format!(
                    "for equal shares, endpoint i of {} takes probability 1/({}−i)",
                    l.steps.len(),
                    l.steps.len()
                )),
            );
        }
    }
}
