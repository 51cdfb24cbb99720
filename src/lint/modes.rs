//! Which of kube-proxy's proxy modes a dump shows rules of (iptables, IPVS, user-space), read
//! once for the rules that ask.

use super::Context;
use crate::kube::owner::{Mode, Owner};
use crate::model::criterion::Criterion;

/// What the dump shows of kube-proxy's modes.
pub struct Modes {
    /// Chains of iptables mode (`KUBE-SVC-`…) or rules in nat `KUBE-SERVICES` that jump to them.
    pub iptables: Option<crate::model::Span>,
    /// IPVS mode: its chains or a `-m set --match-set KUBE-…` rule.
    pub ipvs: Option<crate::model::Span>,
    /// The user-space mode's portals.
    pub userspace: Option<crate::model::Span>,
    /// Any chain kube-proxy or kubelet writes.
    pub any_kube: bool,
}

pub fn read(cx: &Context) -> Modes {
    let mut m = Modes {
        iptables: None,
        ipvs: None,
        userspace: None,
        any_kube: false,
    };
    for (_, chain, _) in cx.chains() {
        let owner = Owner::of(&chain.name);
        m.any_kube |= owner.is_kube();
        // The declaration, or else the first rule's line (read without parsing the chain).
        let span = chain
            .decl
            .or_else(|| chain.rules.peek().first().map(|r| r.span));
        match owner {
            Owner::KubeProxy(Mode::Iptables) if m.iptables.is_none() => m.iptables = span,
            Owner::KubeProxy(Mode::Ipvs) if m.ipvs.is_none() => m.ipvs = span,
            Owner::KubeProxy(Mode::Userspace) if m.userspace.is_none() => m.userspace = span,
            _ => {}
        }
    }
    if m.ipvs.is_some() {
        return m;
    }
    // IPVS mode's set matches are in its own chains and the shared ones (KUBE-SERVICES,
    // KUBE-POSTROUTING…), never in iptables mode's per-Service chains, which are not read. An
    // iptables-mode kube-proxy rewrites the shared chains whole, so beside its chains only IPVS
    // mode's own can be left over: the shared ones (50,000 rules on a large node) are read only
    // when there are no iptables-mode chains.
    for (_, chain, _) in cx.chains() {
        let shared = match Owner::of(&chain.name) {
            Owner::KubeProxy(Mode::Ipvs) => true,
            Owner::KubeProxy(Mode::Any) => m.iptables.is_none(),
            _ => false,
        };
        if !shared {
            continue;
        }
        for (i, r) in cx.rs.peek_rules(chain).iter().enumerate() {
            let ipvs_set = r.matches.iter().any(|x| {
                matches!(&x.criterion, Criterion::Set(s) if crate::kube::owner::is_ipvs_set(&s.name))
            });
            if ipvs_set {
                m.ipvs = Some(chain.rules[i].span);
                return m;
            }
        }
    }
    m
}
