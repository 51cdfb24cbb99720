//! What resolving a Service port needs of one of its chains, read from the chain's rules in one look.
//!
//! `svc` reads the few chains of one Service as it goes. `ls` and `lint` read every Service chain of
//! a large dump in one sweep: they keep these facts and drop the rules, so memory holds a few
//! numbers per chain instead of 2 million parsed rules.

use super::{comment, is_helper_chain, Endpoint, FAMILY_PREFIXES};
use crate::model::{criterion, ChainName, Criterion, Rule, Table, TargetKind};
use ipnet::IpNet;
use rustc_hash::FxHashSet;

/// One chain's part in a Service port.
#[derive(Clone, Debug, Default)]
pub struct ChainFacts {
    /// `-s <pod CIDR> … -j KUBE-SVC-…`: an EXT/XLB chain sending pods straight to the Service, which
    /// means external traffic goes elsewhere (externalTrafficPolicy Local).
    pub pod_cidrs: Vec<IpNet>,
    /// `! -s <cluster CIDR> … -j KUBE-MARK-…`: a SVC chain's off-cluster masquerade rule (v1.24+).
    pub masq_cidrs: Vec<IpNet>,
    /// The endpoints a balancing chain sends to, in rule order, each once.
    pub endpoints: Vec<Endpoint>,
    /// Session affinity timeout, from `-m recent --rcheck --seconds`.
    pub affinity: Option<u32>,
}

/// What an endpoint chain's DNAT rule says: the address, and the packets it counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dnat {
    pub address: Option<String>,
    pub packets: Option<u64>,
}

/// The first DNAT of a chain's rules: the address of its first DNAT with one, and the counters of
/// its first DNAT.
pub fn dnat_of<'r>(rules: impl IntoIterator<Item = &'r Rule, IntoIter: Clone>) -> Dnat {
    let mut rules = rules.into_iter();
    Dnat {
        packets: dnat_packets(rules.clone()),
        address: rules.find_map(|r| match r.target_kind() {
            Some(TargetKind::Dnat { to: Some(to), .. }) => Some(to.to_string()),
            _ => None,
        }),
    }
}

/// The packets counted by the first DNAT of a chain's rules, when the input has counters.
pub fn dnat_packets<'r>(rules: impl IntoIterator<Item = &'r Rule>) -> Option<u64> {
    rules
        .into_iter()
        .find(|r| matches!(r.target_kind(), Some(TargetKind::Dnat { .. })))
        .and_then(|r| r.counters.map(|c| c.packets))
}

impl ChainFacts {
    /// Reads chain `name`'s rules. `endpoint_dnat` looks up an endpoint chain's DNAT (the default
    /// when the chain is not in the input), or answers None when the caller does not look (a sweep
    /// cannot: the other chain may be in another thread's window); the endpoint's address is then
    /// left unknown.
    pub fn read<'r>(
        table: &Table,
        name: &ChainName,
        rules: impl IntoIterator<Item = &'r Rule, IntoIter: Clone>,
        mut endpoint_dnat: impl FnMut(&str) -> Option<Dnat>,
    ) -> ChainFacts {
        let rules = rules.into_iter();
        let mut f = ChainFacts {
            // A balancing chain has a rule per endpoint: sized once.
            endpoints: Vec::with_capacity(rules.clone().filter(|r| r.target.is_some()).count()),
            ..ChainFacts::default()
        };
        let mut seen: FxHashSet<&str> = FxHashSet::default();
        for rule in rules {
            let jump = rule.jump_target();
            if let (Some(src), Some(t)) = (rule.source(), jump) {
                let (negated, net) = src;
                if net.prefix_len() < net.max_prefix_len() {
                    if !negated && t.starts_with("KUBE-SVC-") {
                        f.pod_cidrs.push(net);
                    } else if negated && t.starts_with("KUBE-MARK-") {
                        f.masq_cidrs.push(net);
                    }
                }
            }
            // A hand-written balancing chain may DNAT itself, with no endpoint chains.
            if let Some(TargetKind::Dnat { to: Some(to), .. }) = rule.target_kind() {
                f.endpoints.push(Endpoint {
                    chain: name.clone(),
                    address: Some(to.to_string().into()),
                    from_comment: false,
                    packets: rule.counters.map(|c| c.packets),
                });
                continue;
            }
            let Some(t) = jump else { continue };
            if is_helper_chain(t) || FAMILY_PREFIXES.iter().any(|p| t.starts_with(p)) {
                continue;
            }
            for m in rule.matches.iter() {
                if let Criterion::Recent(r) = &m.criterion {
                    if r.mode == criterion::RecentMode::Rcheck {
                        f.affinity = f.affinity.or(r.seconds);
                    }
                }
            }
            if !seen.insert(t) {
                continue;
            }
            let (address, from_comment, packets) = match endpoint_dnat(t) {
                None => (None, false, None),
                Some(Dnat {
                    address: Some(a),
                    packets,
                }) => (Some(a), false, packets),
                Some(Dnat {
                    address: None,
                    packets,
                }) => {
                    let c = rule
                        .comment()
                        .and_then(comment::parse)
                        .and_then(|c| c.tail.strip_prefix("-> ").map(str::to_string));
                    (c.clone(), c.is_some(), packets)
                }
            };
            f.endpoints.push(Endpoint {
                // Named by the jump's own text when it can be: a lookup by name would read the
                // endpoint chain's declaration, a cache miss for each of 600,000 endpoints.
                chain: rule
                    .target
                    .as_ref()
                    .and_then(|j| name.sibling(t, j.span))
                    .or_else(|| table.chain(t).map(|c| c.name.clone()))
                    .unwrap_or_else(|| t.into()),
                address: address.map(Into::into),
                from_comment,
                packets,
            });
        }
        f.endpoints.shrink_to_fit();
        f
    }
}
