//! # dangling-jump
//!
//! ## What it flags
//! A rule that jumps (`-j`) or goes (`-g`) to a chain the dump never declares.
//!
//! ## Why it matters
//! `iptables-restore` refuses the whole file ("Couldn't load target"), so none of the rules in it
//! take effect; on a live node it means the dump was cut or edited.
//!
//! ## Example
//! ```text
//! :KUBE-SERVICES - [0:0]
//! -A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU
//! (no :KUBE-SVC-TCOU7JCQXEZGVUNU line)
//! ```
//!
//! ## Fix
//! Declare the chain (`:KUBE-SVC-… - [0:0]`) with its rules, or remove the jump. Grep'd fragments are
//! not checked: their chains are elsewhere in the full dump. In kube-proxy restore payloads,
//! `KUBE-MARK-DROP` and `KUBE-FIREWALL` belong to kubelet and may legitimately be absent.

use super::prelude::*;

pub struct DanglingJump;

static META: Meta = Meta {
    name: "dangling-jump",
    code: "KP004",
    severity: Severity::Error,
    summary: "a jump or goto to a chain that is not declared",
    source: include_str!("dangling_jump.rs"),
    scoped: false,
};

/// Chains kubelet owns: kube-proxy's payloads jump to them without declaring them.
const KUBELET_CHAINS: &[&str] = &["KUBE-MARK-DROP", "KUBE-FIREWALL", "KUBE-KUBELET-CANARY"];

impl Rule for DanglingJump {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        if cx.rs.fragment {
            return;
        }
        for (from, idx, target) in &cx.graph.dangling {
            if !cx.hooked && KUBELET_CHAINS.contains(&target.as_str()) {
                continue;
            }
            let (t, c) = cx.chain_of(*from);
            out.push(
                Finding::new(&META, format!("`{}` jumps to `{target}`, which is not declared in table {}", c.name, t.name))
                    .at(c.rules[*idx].span, "jumps to an undeclared chain")
                    .in_chain(&t.name, &c.name)
                    .service(cx.service_of(&c.name))
                    .about(target.as_str())
                    .help(format!("declare it with `:{target} - [0:0]` in *{}, or remove the jump; iptables-restore refuses the file as it is", t.name)),
            );
        }
    }
}
