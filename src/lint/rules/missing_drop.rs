//! # missing-drop
//!
//! ## What it flags
//! Traffic that kube-proxy means to drop is not dropped:
//! - the drop mark is set (a jump to `KUBE-MARK-DROP`, which sets `0x8000`) in a whole-node dump, but
//!   no filter rule drops packets carrying it;
//! - a load balancer's source-range chain (`KUBE-FW-`) ends without dropping what it did not accept,
//!   and no filter `KUBE-PROXY-FIREWALL` rule drops it either;
//! - a Service with `externalTrafficPolicy: Local` and no endpoint on this node has no
//!   "has no local endpoints" DROP for its node port or load balancer IP.
//!
//! ## Why it matters
//! Without the drop, traffic from outside `loadBalancerSourceRanges` reaches the Service anyway, and
//! external traffic for a Local-policy Service with no local endpoint is forwarded un-NATed to
//! wherever routing sends it instead of failing fast.
//!
//! ## Example
//! ```text
//! -A KUBE-FW-NUKIZ6OKUXPJNT4C -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
//! (and no KUBE-PROXY-FIREWALL rule for 5.6.7.8:80, nor a trailing -j KUBE-MARK-DROP)
//! ```
//!
//! ## Fix
//! Restore the rules kube-proxy writes: `-A KUBE-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP` in
//! filter (kubelet's), the `KUBE-PROXY-FIREWALL` drop for the load balancer IP, or the
//! `KUBE-EXTERNAL-SERVICES` "has no local endpoints" drops.
//!
//! Kube-proxy restore payloads (no built-in chains) legitimately leave the filter side to kubelet,
//! and a nat-only paste does not show it: the mark check only runs when the input shows the filter
//! table whole (its built-in chains with their policies).

use super::prelude::*;
use crate::kube::EntryKind;

pub struct MissingDrop;

static META: Meta = Meta {
    name: "missing-drop",
    code: "KP003",
    severity: Severity::Error,
    summary: "traffic meant to be dropped (drop mark, source ranges, no local endpoints) is not",
    source: include_str!("missing_drop.rs"),
    scoped: false,
};

fn drops(t: &TargetKind) -> bool {
    matches!(t, TargetKind::Drop | TargetKind::Reject { .. })
}

impl Rule for MissingDrop {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        drop_mark(cx, out);
        source_ranges(cx, out);
        no_local_endpoints(cx, out);
    }
}

fn drop_mark(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.hooked {
        return;
    }
    // kubelet's drop lives in the filter table: an input that does not show that table whole
    // (a nat-only listing, kube-proxy's payload) cannot show it missing, and `svc` takes it as a
    // condition there.
    if !cx.table("filter").is_some_and(|f| {
        f.shows_builtin("INPUT") || f.shows_builtin("OUTPUT") || f.shows_builtin("FORWARD")
    }) {
        return;
    }
    let Some(nat) = cx.table("nat") else { return };
    let Some(chain) = nat.chain("KUBE-MARK-DROP") else {
        return;
    };
    let Some(cref) = cx.chain_ref("nat", "KUBE-MARK-DROP") else {
        return;
    };
    if cx.graph.callers(cref).next().is_none() {
        return;
    }
    for (i, rule) in cx.rules(chain).enumerate() {
        let Some(TargetKind::Mark(op)) = rule.target_kind() else {
            continue;
        };
        let mark = op.apply(0);
        let dropped = cx.table("filter").is_some_and(|f| {
            f.chains.iter().any(|c| {
                cx.rules(c).any(|r| {
                    r.target_kind().is_some_and(drops)
                        && r.conditions().any(|m| {
                            matches!(m.criterion, Criterion::Mark { value, mask } if !m.negated && mark & mask == value)
                        })
                })
            })
        });
        if !dropped {
            out.push(
                Finding::new(&META, format!("packets get the drop mark {mark:#x}, but no filter rule drops them"))
                    .at(chain.rules[i].span, format!("sets {mark:#x}"))
                    .in_chain("nat", "KUBE-MARK-DROP")
                    .help(format!("add `-A KUBE-FIREWALL -m mark --mark {mark:#x}/{mark:#x} -j DROP` to filter and hook KUBE-FIREWALL from INPUT and OUTPUT")),
            );
        }
    }
}

/// What filter KUBE-PROXY-FIREWALL drops, indexed: a large dump has thousands of firewall chains
/// and as many drop rules, and comparing each chain with each rule would be millions of searches.
struct FirewallDrops<'a> {
    /// Every drop rule's comment from each `KUBE-FW-` in it on, sorted: a comment names a chain
    /// exactly when one of its tails starts with the name.
    tails: Vec<&'a str>,
    /// Single addresses the drop rules match as their destination.
    hosts: rustc_hash::FxHashSet<std::net::IpAddr>,
    /// Wider destination ranges.
    nets: Vec<ipnet::IpNet>,
}

impl<'a> FirewallDrops<'a> {
    fn read(cx: &Context<'a>) -> FirewallDrops<'a> {
        let mut d = FirewallDrops {
            tails: Vec::new(),
            hosts: Default::default(),
            nets: Vec::new(),
        };
        let Some(fw) = cx
            .table("filter")
            .and_then(|f| f.chain("KUBE-PROXY-FIREWALL"))
        else {
            return d;
        };
        for r in cx.rules(fw).filter(|r| r.target_kind().is_some_and(drops)) {
            if let Some(c) = r.comment() {
                d.tails
                    .extend(c.match_indices("KUBE-FW-").map(|(i, _)| &c[i..]));
            }
            match r.destination() {
                Some((false, net)) if net.prefix_len() == net.max_prefix_len() => {
                    d.hosts.insert(net.addr());
                }
                Some((false, net)) => d.nets.push(net),
                _ => {}
            }
        }
        d.tails.sort_unstable();
        d
    }

    /// Whether a drop rule's comment names `chain` (a `KUBE-FW-` chain).
    fn names(&self, chain: &str) -> bool {
        let i = self.tails.partition_point(|t| *t < chain);
        self.tails.get(i).is_some_and(|t| t.starts_with(chain))
    }

    /// Whether a drop rule's destination holds `a`.
    fn covers(&self, a: &std::net::IpAddr) -> bool {
        self.hosts.contains(a) || self.nets.iter().any(|n| n.contains(a))
    }
}

fn source_ranges(cx: &Context, out: &mut Vec<Finding>) {
    let Some(nat) = cx.table("nat") else { return };
    let drops_of_filter = std::sync::OnceLock::new();
    for chain in nat
        .chains
        .iter()
        .filter(|c| c.name.starts_with("KUBE-FW-") && !c.rules.is_empty())
    {
        let rules: Vec<&IptRule> = cx.rules(chain).collect();
        // A chain that lets everyone in (no source range) needs no drop.
        if rules.iter().any(|r| {
            r.is_unconditional()
                && r.jump_target()
                    .is_some_and(|t| !t.starts_with("KUBE-MARK-"))
        }) {
            continue;
        }
        let legacy_drop = rules.iter().any(|r| {
            r.jump_target() == Some("KUBE-MARK-DROP") || r.target_kind().is_some_and(drops)
        });
        let port = cx.port_of(&chain.name);
        let filter = drops_of_filter.get_or_init(|| FirewallDrops::read(cx));
        let filter_drop = filter.names(&chain.name)
            || port.is_some_and(|p| {
                p.addresses(EntryKind::LoadBalancer)
                    .iter()
                    .any(|a| filter.covers(a))
            });
        if !legacy_drop && !filter_drop {
            out.push(
                Finding::new(&META, format!("`{}` accepts only some sources, but nothing drops the others", chain.name))
                    .at(chain.rules.last().map(|r| r.span).unwrap_or_default(), "traffic from other sources falls off here")
                    .in_chain("nat", &chain.name)
                    .service(cx.service_of(&chain.name))
                    .unless_hidden(cx.partial_anywhere())
                    .help("kube-proxy drops the rest in filter KUBE-PROXY-FIREWALL (`… traffic not accepted by KUBE-FW-…`), or older versions with a final `-j KUBE-MARK-DROP`"),
            );
        }
    }
}

fn no_local_endpoints(cx: &Context, out: &mut Vec<Finding>) {
    // The drops are filter rules: an input without the filter table cannot show them missing.
    if cx.table("filter").is_none() {
        return;
    }
    for p in &cx.catalog.ports {
        if !p.external_local || p.endpoints.is_empty() || !p.local_endpoints.is_empty() {
            continue;
        }
        let external = p.entries.iter().any(|e| {
            matches!(
                e.kind,
                EntryKind::NodePort | EntryKind::LoadBalancer | EntryKind::ExternalIp
            )
        });
        if !external || !p.no_endpoint_rules.is_empty() {
            continue;
        }
        // Legacy era: the XLB chain itself drops (`-j KUBE-MARK-DROP`) when there is no local endpoint.
        let xlb_drops = p
            .xlb_chain
            .as_deref()
            .and_then(|x| cx.rs.chain("nat", x))
            .is_some_and(|c| {
                cx.rules(c).any(|r| {
                    r.jump_target() == Some("KUBE-MARK-DROP") || r.target_kind().is_some_and(drops)
                })
            });
        if xlb_drops {
            continue;
        }
        let chain = p.external_chain().unwrap_or_default().to_string();
        let span = cx
            .rs
            .chain("nat", &chain)
            .map(|c| cx.chain_span(c))
            .unwrap_or_default();
        out.push(
            Finding::new(&META, format!("{} has externalTrafficPolicy Local and no endpoint on this node, but nothing drops its external traffic", p.display_name()))
                .at(span, "external traffic falls through this chain")
                .in_chain("nat", &chain)
                .service(Some(p.display_name()))
                .unless_hidden(cx.partial_anywhere())
                .help("kube-proxy writes filter KUBE-EXTERNAL-SERVICES rules `… has no local endpoints -j DROP` for each node port and load balancer IP"),
        );
    }
}
