//! kube-proxy's standard rules, for inputs that lack them.
//!
//! kube-proxy's own restore payloads and grep'd fragments hold the KUBE-* chains but not the hook
//! rules from the built-in chains (kube-proxy installs those separately), and fragments often lack the
//! contents of KUBE-MARK-MASQ or KUBE-POSTROUTING. Without them nothing would be traced, so the engine
//! assumes what kube-proxy installs on every node, marks those rules as assumed (line 0), and says so.

use crate::model::criterion::{Criterion, CtState, Match};
use crate::model::target::{MarkForm, MarkOp};
use crate::model::{Rule, Span, Target, TargetKind};

fn jump(chain: &str, new_only: bool) -> Rule {
    let mut m = Vec::new();
    if new_only {
        m.push(Match {
            continues: false,
            negated: false,
            criterion: Criterion::CtState {
                states: vec![CtState::New],
                state_module: false,
            },
            span: Span::NONE,
        });
    }
    Rule::assumed(
        m,
        Target {
            goto: false,
            kind: TargetKind::Chain(chain.into()),
            span: Span::NONE,
            before: Box::new([]),
        },
    )
}

/// The hook rules kube-proxy (and kubelet, for KUBE-FIREWALL) put first in a built-in chain:
/// (chain jumped to, only for conntrack state NEW).
pub fn standard_hooks(table: &str, builtin: &str) -> &'static [(&'static str, bool)] {
    match (table, builtin) {
        ("nat", "PREROUTING") | ("nat", "OUTPUT") => &[("KUBE-SERVICES", false)],
        ("nat", "POSTROUTING") => &[("KUBE-POSTROUTING", false)],
        ("filter", "INPUT") => &[
            ("KUBE-PROXY-FIREWALL", true),
            ("KUBE-NODEPORTS", false),
            ("KUBE-EXTERNAL-SERVICES", true),
            ("KUBE-FIREWALL", false),
        ],
        ("filter", "FORWARD") => &[
            ("KUBE-PROXY-FIREWALL", true),
            ("KUBE-FORWARD", false),
            ("KUBE-SERVICES", true),
            ("KUBE-EXTERNAL-SERVICES", true),
        ],
        ("filter", "OUTPUT") => &[
            ("KUBE-PROXY-FIREWALL", true),
            ("KUBE-SERVICES", true),
            ("KUBE-FIREWALL", false),
        ],
        _ => &[],
    }
}

pub fn hook_rule(chain: &str, new_only: bool) -> Rule {
    jump(chain, new_only)
}

fn mark_rule(op: MarkOp) -> Rule {
    Rule::assumed(
        Vec::new(),
        Target {
            goto: false,
            kind: TargetKind::Mark(op),
            span: Span::NONE,
            before: Box::new([]),
        },
    )
}

/// The contents kube-proxy gives its helper chains, for a fragment that names them but omits them.
pub fn standard_chain(name: &str) -> Option<Vec<Rule>> {
    Some(match name {
        "KUBE-MARK-MASQ" => vec![mark_rule(MarkOp {
            value: 0x4000,
            mask: 0x4000,
            form: MarkForm::OrMark,
        })],
        "KUBE-MARK-DROP" => vec![mark_rule(MarkOp {
            value: 0x8000,
            mask: 0x8000,
            form: MarkForm::OrMark,
        })],
        "KUBE-POSTROUTING" => {
            let ret = Rule::assumed(
                vec![Match {
                    continues: false,
                    negated: true,
                    criterion: Criterion::Mark {
                        value: 0x4000,
                        mask: 0x4000,
                    },
                    span: Span::NONE,
                }],
                Target {
                    goto: false,
                    kind: TargetKind::Return,
                    span: Span::NONE,
                    before: Box::new([]),
                },
            );
            vec![
                ret,
                mark_rule(MarkOp {
                    value: 0x4000,
                    mask: 0,
                    form: MarkForm::XorMark,
                }),
                Rule::assumed(
                    Vec::new(),
                    Target {
                        goto: false,
                        kind: TargetKind::Masquerade {
                            to_ports: None,
                            flags: Vec::new(),
                        },
                        span: Span::NONE,
                        before: Box::new([]),
                    },
                ),
            ]
        }
        _ => return None,
    })
}

/// `-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`, the last rule of nat KUBE-SERVICES.
pub fn nodeports_rule() -> Rule {
    Rule::assumed(
        vec![Match {
            continues: false,
            negated: false,
            criterion: Criterion::AddrType {
                dir: crate::model::criterion::Dir::Dst,
                kinds: vec![crate::model::criterion::AddrKind::Local],
            },
            span: Span::NONE,
        }],
        Target {
            goto: false,
            kind: TargetKind::Chain("KUBE-NODEPORTS".into()),
            span: Span::NONE,
            before: Box::new([]),
        },
    )
}

/// For a grep'd paste: kube-proxy's rules of `chain` whose comments do not name the Service (so a
/// `grep <service>` drops them) and that the paste lacks. Externally-facing chains of
/// externalTrafficPolicy Local start with rules for pods and for the node itself
/// ("Redirect pods trying to reach external loadbalancer VIP to clusterIP", "masquerade LOCAL
/// traffic for … external destinations", "route LOCAL traffic …"); without them, what the paste
/// shows would send those clients to the drop that follows.
pub fn grep_gap<'r>(
    chain: &str,
    mut rules: impl Iterator<Item = &'r Rule>,
) -> Option<&'static str> {
    let what = if chain.starts_with("KUBE-XLB-") {
        "kube-proxy's \"Redirect pods trying to reach external loadbalancer VIP to clusterIP\" rule"
    } else if chain.starts_with("KUBE-EXT-") {
        "kube-proxy's \"route LOCAL traffic … external destinations\" rules"
    } else {
        // Other chains' rules are not read: this runs on every jump of a grep'd paste.
        return None;
    };
    let jumps_to_svc = |r: &Rule| matches!(&r.target, Some(t) if matches!(&t.kind, TargetKind::Chain(n) if n.starts_with("KUBE-SVC-")));
    (!rules.any(jumps_to_svc)).then_some(what)
}
