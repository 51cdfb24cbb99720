//! # affinity-inconsistent
//!
//! ## What it flags
//! A Service chain with session affinity (`-m recent --rcheck`) whose endpoints are not treated
//! alike: some endpoints have no affinity rule, the timeouts (`--seconds`) differ, or an affinity
//! check reads a list (`--name`) other than the one its endpoint chain writes with
//! `-m recent --set` (kube-proxy names each list after its endpoint chain).
//!
//! ## Why it matters
//! kube-proxy writes one affinity rule per endpoint, all with the Service's timeout, each reading
//! the list its endpoint chain writes. When they differ, clients of some endpoints lose their
//! session (a check that reads a list nobody writes never matches), or stick for another time than
//! `sessionAffinityConfig` says: the symptom is "sticky sessions work for some pods only".
//!
//! ## Example
//! ```text
//! -A KUBE-SVC-X -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-A --mask 255.255.255.255 --rsource -j KUBE-SEP-A
//! -A KUBE-SVC-X -m recent --rcheck --seconds 60 --reap --name KUBE-SEP-B --mask 255.255.255.255 --rsource -j KUBE-SEP-B
//! ```
//!
//! ## Fix
//! Let kube-proxy rewrite the chain (restart it); a hand edit or two kube-proxy versions writing
//! the same node leave such chains.

use super::prelude::*;
use crate::model::criterion::RecentMode;

pub struct AffinityInconsistent;

static META: Meta = Meta {
    name: "affinity-inconsistent",
    code: "KP021",
    severity: Severity::Warning,
    summary: "session affinity differs between a Service's endpoints",
    source: include_str!("affinity_inconsistent.rs"),
    scoped: false,
};

fn recent(r: &IptRule) -> Option<&crate::model::criterion::Recent> {
    r.matches.iter().find_map(|m| match &m.criterion {
        Criterion::Recent(x) => Some(&**x),
        _ => None,
    })
}

impl Rule for AffinityInconsistent {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check_chain(&self, cx: &ChainContext, out: &mut Vec<Finding>) {
        let chain = cx.chain;
        if cx.is("nat") && chain.name.starts_with("KUBE-SEP-") {
            // The endpoint writes the list its Service's check reads: the one named after it.
            for (i, r) in cx.rules().enumerate() {
                let Some(x) = recent(r).filter(|x| x.mode == RecentMode::Set) else {
                    continue;
                };
                if *x.name != *chain.name {
                    out.push(
                        Finding::new(&META, format!("`{}` writes affinity list `{}`, but its Service's check reads `{}`: that endpoint's clients lose their session", chain.name, x.name, chain.name))
                            .at(cx.slots[i].span, format!("writes `{}`", x.name))
                            .in_chain("nat", &chain.name)
                            .for_its_service()
                            .help("let kube-proxy rewrite the chain (restart it)"),
                    );
                }
            }
            return;
        }
        if !cx.is("nat")
            || !(chain.name.starts_with("KUBE-SVC-") || chain.name.starts_with("KUBE-SVL-"))
        {
            return;
        }
        let rules: Vec<&IptRule> = cx.rules().collect();
        let checks: Vec<(usize, &crate::model::criterion::Recent, &str)> = rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let x = recent(r)?;
                (x.mode == RecentMode::Rcheck).then_some((i, x, r.jump_target()?))
            })
            .collect();
        if checks.is_empty() {
            return;
        }
        let span = |i: usize| cx.slots[i].span;
        let partial = cx.rs.partial("nat", &chain.name);
        let mut found = |f: Finding| {
            out.push(
                f.in_chain("nat", &chain.name)
                    .for_its_service()
                    .unless_hidden(partial.clone())
                    .help("let kube-proxy rewrite the chain (restart it)"),
            )
        };
        // Timeouts.
        let (i0, first, _) = checks[0];
        if let Some(&(i, x, _)) = checks.iter().find(|(_, x, _)| x.seconds != first.seconds) {
            let s = |x: &crate::model::criterion::Recent| {
                x.seconds
                    .map(|s| format!("{s} s"))
                    .unwrap_or("no timeout".into())
            };
            found(
                Finding::new(
                    &META,
                    format!(
                        "`{}` keeps affinity for {} for one endpoint and {} for another",
                        chain.name,
                        s(first),
                        s(x)
                    ),
                )
                .at(span(i), s(x))
                .because(span(i0), s(first)),
            );
        }
        // Endpoints picked without an affinity check.
        let checked: Vec<&str> = checks.iter().map(|c| c.2).collect();
        if let Some((i, t)) = rules.iter().enumerate().find_map(|(i, r)| {
            let t = r.jump_target()?;
            (t.starts_with("KUBE-SEP-") && recent(r).is_none() && !checked.contains(&t))
                .then_some((i, t))
        }) {
            found(
                Finding::new(&META, format!("`{}` has session affinity, but its endpoint `{t}` has no affinity check: its clients are balanced anew on every connection", chain.name))
                    .at(span(i), "no affinity check for this endpoint")
                    .because(span(i0), "affinity for another endpoint"),
            );
        }
        // Lists read that the endpoint does not write. kube-proxy names each endpoint's list after
        // the endpoint chain, which writes it (`--set --name KUBE-SEP-…`, checked in that chain's
        // own visit): a check whose list is named otherwise reads a list nobody writes.
        if let Some(&(i, x, target)) = checks
            .iter()
            .find(|(_, x, t)| t.starts_with("KUBE-SEP-") && &*x.name != *t)
        {
            found(
                Finding::new(&META, format!("the affinity check for `{target}` reads list `{}`, but `{target}` writes list `{target}`: the check never matches, and that endpoint's clients lose their session", x.name))
                    .at(span(i), format!("reads `{}`", x.name))
                    .about(target),
            );
        }
    }
}
