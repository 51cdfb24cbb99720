//! # firewall-drops-everything
//!
//! ## What it flags
//! filter `INPUT` or `OUTPUT` reaches, before anything accepts, a rule that drops or rejects every
//! packet: a bare `-j DROP` in `KUBE-FIREWALL` (kubelet's rule without its
//! `-m mark --mark 0x8000/0x8000`) or in any chain those hooks jump to without a condition.
//!
//! ## Why it matters
//! The node then accepts no connection and no reply: kubelet, the API server, SSH, DNS and every
//! Service the node itself uses stop at once. The usual cause is iptables version skew: rules
//! written by a newer `iptables` (kube-proxy's or kubelet's image) saved and restored by an older
//! one that cannot read the mark match, so the match is lost for real.
//!
//! ## Example
//! ```text
//! -A INPUT -j KUBE-FIREWALL
//! -A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets" -j DROP
//! ```
//!
//! ## Fix
//! Restore the condition (`-m mark --mark 0x8000/0x8000`), take and restore dumps with one
//! `iptables` version (the newest on the node), and let kubelet rewrite its chain.

use super::prelude::*;
use crate::lint::lost_match::lost_match;

pub struct FirewallDropsEverything;

static META: Meta = Meta {
    name: "firewall-drops-everything",
    code: "KP016",
    severity: Severity::Error,
    summary: "filter INPUT or OUTPUT drops every packet before anything accepts it",
    source: include_str!("firewall_drops_everything.rs"),
    scoped: false,
};

enum Walk {
    /// Every packet is dropped here: the rule's chain and index.
    Drops(String, usize),
    /// Some packets are accepted or leave the chain first.
    Escapes,
    /// Every packet goes on past the chain.
    Through,
}

fn walk<'a>(cx: &Context<'a>, t: &'a crate::model::Table, name: &str, depth: usize) -> Walk {
    let Some(chain) = t.chain(name) else {
        return Walk::Escapes;
    };
    if depth > 16 {
        return Walk::Escapes;
    }
    let rules: Vec<&IptRule> = cx.rules(chain).collect();
    for (i, rule) in rules.iter().enumerate() {
        let Some(kind) = rule.target_kind() else {
            continue;
        };
        let unconditional = rule.is_unconditional();
        match kind {
            TargetKind::Drop | TargetKind::Reject { .. } if unconditional => {
                return Walk::Drops(chain.name.to_string(), i)
            }
            TargetKind::Accept | TargetKind::Return => return Walk::Escapes,
            TargetKind::Chain(j) if unconditional => {
                if rule.target.as_ref().is_some_and(|t| t.goto) {
                    return walk(cx, t, j, depth + 1);
                }
                match walk(cx, t, j, depth + 1) {
                    Walk::Through => {}
                    w => return w,
                }
            }
            // A conditional jump lets out what its chain accepts; what it drops is not
            // everything.
            TargetKind::Chain(j) => {
                if let Walk::Escapes = walk(cx, t, j, depth + 1) {
                    return Walk::Escapes;
                }
            }
            _ => {}
        }
    }
    Walk::Through
}

impl Rule for FirewallDropsEverything {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let Some(t) = cx.table("filter") else { return };
        let mut seen = Vec::new();
        for hook in ["INPUT", "OUTPUT"] {
            let Walk::Drops(chain, i) = walk(cx, t, hook, 0) else {
                continue;
            };
            if seen.contains(&(chain.clone(), i)) {
                continue;
            }
            seen.push((chain.clone(), i));
            let c = t.chain(&chain).unwrap();
            let rules: Vec<&IptRule> = cx.rules(c).collect();
            let mut message = format!(
                "filter `{hook}` drops every packet at `{chain}`: the node accepts no connection and no reply (kubelet, the API server, SSH, DNS)"
            );
            let mut label = "drops every packet".to_string();
            if let Some(lost) = lost_match(&chain, &rules, i) {
                message += &format!(
                    "; kubelet writes this rule with `{lost}`, lost to iptables version skew"
                );
                label = format!("kubelet writes `{lost}` here");
            }
            let hooks: Vec<&str> = ["INPUT", "OUTPUT"]
                .into_iter()
                .filter(|h| matches!(walk(cx, t, h, 0), Walk::Drops(ref c2, j) if *c2 == chain && j == i))
                .collect();
            if hooks.len() == 2 {
                message = message.replacen(
                    &format!("filter `{hook}` drops"),
                    "filter `INPUT` and `OUTPUT` drop",
                    1,
                );
            }
            out.push(
                Finding::new(&META, message)
                    .at(c.rules[i].span, label)
                    .in_chain("filter", &chain)
                    .help("restore the rule's condition (kubelet's is `-m mark --mark 0x8000/0x8000`), and save and restore with one iptables version, the newest on the node"),
            );
        }
    }
}
