//! # proxy-mode-leftovers
//!
//! ## What it flags
//! Rules of two kube-proxy modes in one dump: iptables mode's Service chains (`KUBE-SVC-`,
//! `KUBE-SEP-`) next to IPVS mode's (`KUBE-LOAD-BALANCER`, `KUBE-NODE-PORT`,
//! `-m set --match-set KUBE-…`) or the user-space mode's portals (`KUBE-PORTALS-CONTAINER`).
//!
//! ## Why it matters
//! kube-proxy cleans up only its current mode's rules. After a mode switch the old mode's rules stay
//! and keep matching: Service traffic can be DNATed by stale chains to pods that no longer exist, or
//! marked and accepted by rules nothing maintains ("rules look right but traffic goes elsewhere").
//!
//! ## Example
//! ```text
//! -A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
//! -A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU
//! ```
//!
//! ## Fix
//! Remove the old mode's rules: `kube-proxy --cleanup` with the old mode's flags (or reboot the
//! node), then let the current kube-proxy resync.

use super::prelude::*;

pub struct ProxyModeLeftovers;

static META: Meta = Meta {
    name: "proxy-mode-leftovers",
    code: "KP019",
    severity: Severity::Warning,
    summary: "rules of two kube-proxy modes (iptables, IPVS, user-space) in one dump",
    source: include_str!("proxy_mode_leftovers.rs"),
    scoped: false,
};

impl Rule for ProxyModeLeftovers {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let m = cx.modes();
        let found: Vec<(&str, crate::model::Span)> = [
            ("iptables", m.iptables),
            ("IPVS", m.ipvs),
            ("user-space", m.userspace),
        ]
        .into_iter()
        .filter_map(|(n, s)| s.map(|s| (n, s)))
        .collect();
        if found.len() < 2 {
            return;
        }
        let names: Vec<&str> = found.iter().map(|f| f.0).collect();
        let mut f = Finding::new(
            &META,
            format!(
                "rules of kube-proxy's {} modes in one dump: one of them is left from before a mode switch and still matches Service traffic",
                names.join(" and ")
            ),
        )
        .at(found[0].1, format!("{} mode", found[0].0))
        .help("run `kube-proxy --cleanup` with the old mode's flags (or reboot the node), then let kube-proxy resync");
        for (n, s) in &found[1..] {
            f = f.because(*s, format!("{n} mode"));
        }
        out.push(f);
    }
}
