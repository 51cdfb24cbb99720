//! # iptables-version-skew
//!
//! ## What it flags
//! A rule of kube-proxy's that shows without the mark match kube-proxy always writes on it:
//! `KUBE-POSTROUTING`'s first rule as a bare `RETURN`, or `KUBE-FORWARD`'s "kubernetes forwarding
//! rules" as a bare `ACCEPT`.
//!
//! ## Why it matters
//! kube-proxy writes its rules with the `iptables` of its own image. An older `iptables` on the
//! node (iptables-nft before 1.8.8 reading rules a newer one wrote) cannot read some matches back and
//! prints the rule without them. The kernel may still hold the match, so the node may be fine
//! today; but a dump taken with that binary is wrong, and restored (`iptables-save |
//! iptables-restore`, a firewall reload) it makes the bare rule real: `KUBE-POSTROUTING` returns
//! every packet and nothing is masqueraded any more, and `KUBE-FORWARD` accepts every forwarded
//! packet. Whatever the dump says after that rule is not what the kernel does.
//!
//! ## Example
//! ```text
//! Chain KUBE-POSTROUTING (1 references)
//! target     prot opt source               destination
//! RETURN     all  --  anywhere             anywhere
//! MARK       all  --  anywhere             anywhere             MARK xor 0x4000
//! MASQUERADE  all  --  anywhere             anywhere             /* kubernetes service traffic requiring SNAT */
//! ```
//!
//! ## Fix
//! Take dumps with the `iptables` that wrote the rules (`kubectl -n kube-system exec <kube-proxy
//! pod> -- iptables-save`), or install an `iptables` on the node at least as new as kube-proxy's;
//! never restore a dump the older binary took. kubelet's `KUBE-FIREWALL` drop shown without its
//! mark is reported by `firewall-drops-everything`.

use super::prelude::*;
use crate::lint::lost_match::lost_match;

pub struct IptablesVersionSkew;

static META: Meta = Meta {
    name: "iptables-version-skew",
    code: "KP023",
    severity: Severity::Warning,
    summary: "a kube-proxy rule shows without the mark match it is always written with",
    source: include_str!("iptables_version_skew.rs"),
    scoped: false,
};

impl Rule for IptablesVersionSkew {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check_chain(&self, cx: &ChainContext, out: &mut Vec<Finding>) {
        let name = &*cx.chain.name;
        if !matches!(name, "KUBE-POSTROUTING" | "KUBE-FORWARD") {
            return;
        }
        let rules: Vec<&IptRule> = cx.rules().collect();
        for i in 0..rules.len() {
            let Some(lost) = lost_match(name, &rules, i) else {
                continue;
            };
            let breaks = if name == "KUBE-POSTROUTING" {
                "restored as shown, no Service connection is masqueraded (NodePort, load balancer, hairpin and off-cluster clients get no replies)"
            } else {
                "restored as shown, every forwarded packet is accepted before any firewall rule after it"
            };
            out.push(
                Finding::new(
                    &META,
                    format!("`{name}` shows a rule without `{lost}`, which kube-proxy always writes: an iptables older than kube-proxy's printed it"),
                )
                .at(cx.slots[i].span, format!("kube-proxy writes `{lost}` here"))
                .in_chain(&cx.table.name, name)
                .help(format!("{breaks}; dump with kube-proxy's own iptables (`kubectl -n kube-system exec <kube-proxy pod> -- iptables-save`) or upgrade the node's iptables, and never restore this dump")),
            );
        }
    }
}
