//! # no-kube-proxy-rules
//!
//! ## What it flags
//! A whole nat table (its built-in chains shown) with no Service rules of kube-proxy's iptables
//! mode: no `KUBE-SVC-`/`KUBE-SEP-` chain and no rule in `KUBE-SERVICES`. The finding says what the
//! dump looks like instead:
//! - kube-proxy's IPVS mode (`KUBE-LOAD-BALANCER`, `KUBE-NODE-PORT`, `-m set --match-set KUBE-…`):
//!   Services live in IPVS (`ipvsadm -Ln`), and these rules only mark and masquerade;
//! - no kube-proxy chain at all: kube-proxy runs in nftables mode (`nft list ruleset`), writes to
//!   the other iptables backend (`iptables-legacy-save` / `iptables-nft-save`), or does not run.
//!
//! ## Why it matters
//! Every other rule checks kube-proxy's rules; on a dump without them there is nothing to check,
//! and a CI gate on it would pass while telling nothing.
//!
//! ## Example
//! ```text
//! *nat
//! :PREROUTING ACCEPT [0:0]
//! :POSTROUTING ACCEPT [0:0]
//! -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
//! COMMIT
//! ```
//!
//! ## Fix
//! Capture the rules where kube-proxy writes them: `iptables-legacy-save` or `iptables-nft-save`
//! (whichever holds `KUBE-SERVICES`), `nft list ruleset` for nftables mode; or check kube-proxy's
//! logs and `--proxy-mode`.

use super::prelude::*;

pub struct NoKubeProxyRules;

static META: Meta = Meta {
    name: "no-kube-proxy-rules",
    code: "KP018",
    severity: Severity::Error,
    summary: "a whole dump holds no Service rules of kube-proxy's iptables mode",
    source: include_str!("no_kube_proxy_rules.rs"),
    scoped: false,
};

impl Rule for NoKubeProxyRules {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        if cx.rs.fragment {
            return;
        }
        let Some(nat) = cx.table("nat") else { return };
        if !(nat.shows_builtin("PREROUTING") && nat.shows_builtin("POSTROUTING")) {
            return;
        }
        let m = cx.modes();
        if m.iptables.is_some() {
            return;
        }
        let at = nat.span.or(nat.chain("PREROUTING").and_then(|c| c.decl));
        let mut f = if let Some(ipvs) = m.ipvs {
            Finding::new(
                &META,
                "kube-proxy runs in IPVS mode here: its Services are IPVS virtual servers (`ipvsadm -Ln`), not these rules, which only mark, filter and masquerade",
            )
            .at(ipvs, "IPVS mode's rule")
            .help("trace Services with `ipvsadm -Ln` and `ipset list`; lint checks the rules that are here")
        } else if m.any_kube {
            Finding::new(
                &META,
                "no Service rules: only kubelet's chains are here; kube-proxy runs in nftables mode (`nft list ruleset`), writes to the other iptables backend, or does not run",
            )
            .help("capture `iptables-legacy-save` and `iptables-nft-save` (whichever holds KUBE-SERVICES) or `nft list ruleset`; check kube-proxy's `--proxy-mode` and logs")
        } else {
            Finding::new(
                &META,
                "no kube-proxy rules at all: kube-proxy runs in nftables mode (`nft list ruleset`), writes to the other iptables backend, or does not run on this node",
            )
            .help("capture `iptables-legacy-save` and `iptables-nft-save` (whichever holds KUBE-SERVICES) or `nft list ruleset`; check kube-proxy's `--proxy-mode` and logs")
        };
        if m.ipvs.is_some() {
            f.severity = Severity::Warning;
        } else if let Some(at) = at {
            f = f.at(at, "the nat table, without kube-proxy's chains");
        }
        out.push(f.in_chain("nat", "KUBE-SERVICES"));
    }
}
