//! # mark-collision
//!
//! ## What it flags
//! A rule of another component that changes the packet-mark bits kube-proxy uses (`0x4000` to ask
//! for masquerading, `0x8000` to ask for a drop) after kube-proxy set them and before kube-proxy
//! reads them: a `MARK` or `CONNMARK --restore-mark` in mangle `FORWARD`/`INPUT`/`POSTROUTING`,
//! filter `FORWARD`/`INPUT`/`OUTPUT`, or nat `POSTROUTING` before `KUBE-POSTROUTING`.
//!
//! ## Why it matters
//! kube-proxy marks a connection in nat `PREROUTING`/`OUTPUT` (`KUBE-MARK-MASQ`) and masquerades it
//! in nat `POSTROUTING` when the bit is still set. A `--set-mark 0x100` (mask `0xffffffff`) in
//! between clears it: nothing is masqueraded any more, so NodePort, load balancer and hairpin
//! replies never reach their clients. Setting the bit instead masquerades every connection; clearing
//! `0x8000` lets through what kube-proxy meant to drop.
//!
//! ## Example
//! ```text
//! *mangle
//! -A POSTROUTING -j MARK --set-xmark 0x100/0xffffffff
//! ```
//!
//! ## Fix
//! Give the other component a mask that leaves kube-proxy's bits alone (`--set-xmark 0x100/0x100`,
//! `CONNMARK --restore-mark --mask 0xff`), or move kube-proxy's bits
//! (`--iptables-masquerade-bit`, kubelet's `--iptables-drop-bit`) away from the ones it uses.

use super::prelude::*;
use crate::engine::Engine;
use crate::kube::owner::Owner;

pub struct MarkCollision;

static META: Meta = Meta {
    name: "mark-collision",
    code: "KP020",
    severity: Severity::Error,
    summary: "another rule changes kube-proxy's mark bits between where they are set and read",
    source: include_str!("mark_collision.rs"),
    scoped: false,
};

/// The bits the MARK rules of a nat chain set, if the chain is jumped to.
fn bits_of(cx: &Context, chain: &str) -> u32 {
    let Some(c) = cx.rs.chain("nat", chain) else {
        return 0;
    };
    if cx
        .chain_ref("nat", chain)
        .is_none_or(|r| cx.graph.callers(r).next().is_none())
    {
        return 0;
    }
    cx.rules(c)
        .filter_map(|r| match r.target_kind() {
            Some(TargetKind::Mark(op)) => Some(op.apply(0)),
            _ => None,
        })
        .fold(0, |a, b| a | b)
}

/// Where kube-proxy's bits can be changed before they are read: (table, built-in chain, the
/// reader's chain the window ends at, which bits).
fn windows(masq: u32, drop: u32) -> Vec<(&'static str, &'static str, Option<&'static str>, u32)> {
    vec![
        ("mangle", "FORWARD", None, masq),
        ("filter", "FORWARD", None, masq),
        ("security", "FORWARD", None, masq),
        ("filter", "OUTPUT", None, masq),
        ("security", "OUTPUT", None, masq),
        ("mangle", "POSTROUTING", None, masq),
        ("nat", "POSTROUTING", Some("KUBE-POSTROUTING"), masq),
        ("mangle", "INPUT", None, drop),
        ("filter", "INPUT", Some("KUBE-FIREWALL"), drop),
        ("filter", "OUTPUT", Some("KUBE-FIREWALL"), drop),
    ]
}

impl Rule for MarkCollision {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let masq = bits_of(cx, "KUBE-MARK-MASQ");
        let drop = bits_of(cx, "KUBE-MARK-DROP");
        if masq == 0 && drop == 0 {
            return;
        }
        let mut seen = rustc_hash::FxHashSet::default();
        for (table, builtin, until, bits) in windows(masq, drop) {
            if bits == 0 {
                continue;
            }
            let Some(t) = cx.table(table) else { continue };
            let mut todo: Vec<(&str, bool)> = vec![(builtin, true)];
            let mut visited = rustc_hash::FxHashSet::default();
            while let Some((name, is_builtin)) = todo.pop() {
                if !visited.insert(name) {
                    continue;
                }
                let Some(chain) = t.chain(name) else { continue };
                for (i, rule) in cx.rules(chain).enumerate() {
                    if let Some(j) = rule.jump_target() {
                        if is_builtin && Some(j) == until {
                            break;
                        }
                        // kube-proxy's and kubelet's own chains set and clear the bits on purpose.
                        if !Owner::of(j).is_kube() && t.chain(j).is_some() {
                            todo.push((t.chain(j).map(|c| &*c.name).unwrap_or(j), false));
                        }
                        continue;
                    }
                    let Some(kind) = rule.target_kind() else {
                        continue;
                    };
                    let (Some(kept), Some(gained)) = (
                        Engine::mark_after(kind, bits, 0),
                        Engine::mark_after(kind, 0, 0),
                    ) else {
                        continue;
                    };
                    let cleared = bits & !kept;
                    let set = gained & bits;
                    if cleared == 0 && set == 0 {
                        continue;
                    }
                    let span = chain.rules[i].span;
                    if !seen.insert(span.start) {
                        continue;
                    }
                    let what = |b: u32| {
                        if b & masq != 0 {
                            "masquerade"
                        } else {
                            "drop"
                        }
                    };
                    let (hit, first) = cx.hit_entries();
                    let hit = hit.map(|h| format!(" ({h})")).unwrap_or_default();
                    let (message, help) = if cleared != 0 {
                        let b = cleared;
                        let breaks = if b & masq != 0 {
                            "connections kube-proxy marks for SNAT (NodePort, load balancer, hairpin, off-cluster clients) leave unmasqueraded and their replies never reach the client"
                        } else {
                            "traffic kube-proxy marks to be dropped is let through"
                        };
                        (
                            format!("{table} `{}` clears kube-proxy's {} bit {b:#x} before `{}` reads it: {breaks}{}", chain.name, what(b), reader(b & masq != 0), if b & masq != 0 { hit.as_str() } else { "" }),
                            "give this rule a mask that leaves kube-proxy's bits alone, or move kube-proxy's bit (--iptables-masquerade-bit)",
                        )
                    } else {
                        let b = set;
                        let breaks = if b & masq != 0 {
                            "every connection through it is masqueraded, hiding clients' addresses from endpoints"
                        } else {
                            "every packet through it is dropped"
                        };
                        (
                            format!(
                                "{table} `{}` sets kube-proxy's {} bit {b:#x}: {breaks}",
                                chain.name,
                                what(b)
                            ),
                            "use a bit kube-proxy does not use",
                        )
                    };
                    out.push(
                        Finding::new(&META, message)
                            .at(
                                span,
                                format!(
                                    "changes {:#x}, on the way from {table} {builtin}",
                                    cleared | set
                                ),
                            )
                            .in_chain(table, &chain.name)
                            .service(first)
                            .help(help),
                    );
                }
            }
        }
    }
}

fn reader(masq: bool) -> &'static str {
    if masq {
        "KUBE-POSTROUTING"
    } else {
        "KUBE-FIREWALL"
    }
}
