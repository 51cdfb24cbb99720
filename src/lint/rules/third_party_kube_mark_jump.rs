//! # third-party-kube-mark-jump
//!
//! ## What it flags
//! A chain of another tool (a CNI, a firewall, a mesh) that jumps to `KUBE-MARK-DROP` or
//! `KUBE-MARK-MASQ`.
//!
//! ## Why it matters
//! Those chains are kube-proxy's and kubelet's to keep. Since Kubernetes 1.28 kubelet no longer
//! creates `KUBE-MARK-DROP` (nor `KUBE-MARK-MASQ`), and kube-proxy creates only what its own mode
//! uses: on a newer node, or after a proxy mode switch, the chain is gone. The other tool's restore
//! then fails on its jump, or its drop or masquerade silently stops happening, and with kube-proxy
//! in nftables mode nothing reads the mark at all.
//!
//! ## Example
//! ```text
//! -A WEAVE-NPC-INGRESS -m set ! --match-set weave-allowed dst -j KUBE-MARK-DROP
//! ```
//!
//! ## Fix
//! Have the tool do its own drop (`-j DROP`) or masquerade (`-j MASQUERADE` in nat POSTROUTING), or
//! upgrade it to a version that does.

use super::prelude::*;
use crate::kube::owner::Owner;

pub struct ThirdPartyKubeMarkJump;

static META: Meta = Meta {
    name: "third-party-kube-mark-jump",
    code: "KP022",
    severity: Severity::Warning,
    summary: "another tool's chain jumps to KUBE-MARK-DROP or KUBE-MARK-MASQ",
    source: include_str!("third_party_kube_mark_jump.rs"),
    scoped: false,
};

impl Rule for ThirdPartyKubeMarkJump {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check_chain(&self, cx: &ChainContext, out: &mut Vec<Finding>) {
        let name = &*cx.chain.name;
        // Built-in chains are everyone's; kube-proxy and kubelet jump there themselves.
        if cx.chain.builtin || Owner::of(name).is_kube() {
            return;
        }
        let tool = match Owner::of(name) {
            Owner::Other(Some(t)) => format!("{t}'s"),
            _ => "another tool's".to_string(),
        };
        for (i, r) in cx.rules().enumerate() {
            let Some(t) = r.jump_target() else { continue };
            if !matches!(t, "KUBE-MARK-DROP" | "KUBE-MARK-MASQ") {
                continue;
            }
            let does = if t == "KUBE-MARK-DROP" {
                "drop"
            } else {
                "masquerade"
            };
            out.push(
                Finding::new(
                    &META,
                    format!("{tool} chain `{name}` jumps to `{t}`, which only kube-proxy and kubelet keep: where they do not (Kubernetes ≥ 1.28, another proxy mode) its {does} stops"),
                )
                .at(cx.slots[i].span, format!("relies on `{t}`"))
                .in_chain(&cx.table.name, name)
                .about(t)
                .help(if does == "drop" {
                    "have the tool drop by itself (`-j DROP`)"
                } else {
                    "have the tool masquerade by itself (`-j MASQUERADE` in nat POSTROUTING)"
                }),
            );
        }
    }
}
