//! Places the rules of a fragment (`iptables-save | grep …`: `-A` lines, no `*table`) into tables.
//!
//! The table of each rule is inferred from what only that table can hold: NAT targets and kube-proxy's
//! NAT chains mean `nat`; REJECT and verdict rules of kube-proxy's filter chains mean `filter`.
//! Chains that rules name but the paste does not hold are created as [`ChainOrigin::Implicit`]: their
//! contents are unknown, which the engine reports rather than treating them as empty.

use crate::model::*;

/// kube-proxy chains that live in the nat table.
pub fn is_nat_chain(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "KUBE-SVC-",
        "KUBE-SEP-",
        "KUBE-EXT-",
        "KUBE-SVL-",
        "KUBE-FW-",
        "KUBE-XLB-",
        "KUBE-PORTALS-",
        "KUBE-NODEPORT-",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
        || matches!(
            name,
            "KUBE-MARK-MASQ"
                | "KUBE-MARK-DROP"
                | "KUBE-POSTROUTING"
                | "PREROUTING"
                | "POSTROUTING"
                // kube-proxy's IPVS mode
                | "KUBE-NODE-PORT"
                | "KUBE-LOAD-BALANCER"
                | "KUBE-LOOP-BACK"
        )
}

/// Chains that only kube-proxy's (and kubelet's) filter rules use.
fn is_filter_chain(name: &str) -> bool {
    matches!(
        name,
        "INPUT"
            | "FORWARD"
            | "KUBE-FORWARD"
            | "KUBE-FIREWALL"
            | "KUBE-PROXY-FIREWALL"
            | "KUBE-EXTERNAL-SERVICES"
            | "KUBE-KUBELET-CANARY"
            | "KUBE-PROXY-CANARY"
    )
}

pub fn infer_table(chain: &str, rule: &Rule) -> &'static str {
    match rule.target_kind() {
        Some(
            TargetKind::Dnat { .. }
            | TargetKind::Snat { .. }
            | TargetKind::Masquerade { .. }
            | TargetKind::Redirect { .. },
        ) => return "nat",
        Some(TargetKind::Reject { .. }) => return "filter",
        Some(TargetKind::Chain(t))
            if (is_nat_chain(t) || &**t == "KUBE-NODEPORTS") && !is_filter_chain(chain) =>
        {
            return "nat";
        }
        _ => {}
    }
    if is_nat_chain(chain) {
        return "nat";
    }
    if is_filter_chain(chain) {
        return "filter";
    }
    let verdict = matches!(
        rule.target_kind(),
        Some(TargetKind::Accept | TargetKind::Drop)
    );
    let stateful = rule
        .matches
        .iter()
        .any(|m| matches!(m.criterion, Criterion::CtState { .. }));
    match chain {
        "KUBE-SERVICES" | "KUBE-NODEPORTS" if !verdict => "nat",
        "OUTPUT" if !verdict && !stateful => "nat",
        _ => "filter",
    }
}

/// What a fragment holds, in order: rules, and the chains `iptables -S` declares (`-N X`, `-P X
/// POLICY`). `table` is the table a pasted command line named (`iptables -t nat -S | grep …`).
pub enum Item {
    Rule {
        chain: String,
        rule: Rule,
        table: Option<String>,
    },
    Chain {
        chain: String,
        policy: Option<Policy>,
        table: Option<String>,
    },
}

pub fn place(rs: &mut Ruleset, items: Vec<Item>) {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let mut created = 0usize;
    // `iptables -S` of one table starts with a `-P` line for each of its built-in chains: that set
    // names the table of everything the paste did not place otherwise.
    let policies: std::collections::BTreeSet<&str> = items
        .iter()
        .filter_map(|i| match i {
            Item::Chain {
                chain,
                policy: Some(_),
                table: None,
            } => Some(chain.as_str()),
            _ => None,
        })
        .collect();
    let listed = crate::model::table::with_builtins(&policies);
    let mut named = false;
    let mut declared = Vec::new();
    for item in items {
        match item {
            Item::Rule { chain, rule, table } => {
                named |= table.is_some();
                let table = table
                    .or_else(|| listed.map(str::to_string))
                    .unwrap_or_else(|| infer_table(&chain, &rule).to_string());
                *counts.entry(table.clone()).or_default() += 1;
                let t = rs.table_or_insert(&table);
                if t.id(&chain).is_none() {
                    created += 1;
                }
                let id = t.ensure(&chain, ChainOrigin::Implicit);
                t.get_mut(id).rules.push(RuleSlot::ready(rule));
            }
            Item::Chain {
                chain,
                policy,
                table,
            } => declared.push((chain, policy, table)),
        }
    }
    // Declared chains hold all their rules (a grep that kept `-N X` kept every `-A X` line too).
    for (chain, policy, table) in declared {
        named |= table.is_some();
        let table = table
            .or_else(|| listed.map(str::to_string))
            .unwrap_or_else(|| {
                // The table its rules went to, else what its name says.
                rs.tables
                    .iter()
                    .find(|t| t.id(&chain).is_some())
                    .map(|t| t.name.to_string())
                    .unwrap_or_else(|| {
                        if is_nat_chain(&chain) || chain == "KUBE-NODEPORTS" {
                            "nat".into()
                        } else {
                            "filter".into()
                        }
                    })
            });
        let t = rs.table_or_insert(&table);
        if t.id(&chain).is_none() {
            created += 1;
        }
        let id = t.ensure(&chain, ChainOrigin::Declared);
        let c = t.get_mut(id);
        c.origin = ChainOrigin::Declared;
        if policy.is_some() {
            c.policy = policy;
            // `-P` of a built-in chain: the paste shows the table's hooks (`iptables -S`).
            if c.builtin {
                c.decl = Some(crate::model::Span::NONE);
            }
        }
    }
    // Chains that rules jump to but the paste never shows.
    for ti in 0..rs.tables.len() {
        let mut targets = Vec::new();
        let t = &rs.tables[ti];
        for c in &t.chains {
            for s in c.rules.iter() {
                if let Some(j) = s.get().and_then(|r| r.jump_target()) {
                    if t.id(j).is_none() {
                        targets.push(j.to_string());
                    }
                }
            }
        }
        let t = &mut rs.tables[ti];
        for j in targets {
            if t.id(&j).is_none() {
                created += 1;
                t.ensure(&j, ChainOrigin::Implicit);
            }
        }
    }
    // The kernel always has the built-in chains; a paste just did not show them.
    for t in rs.tables.iter_mut() {
        let name = t.name.clone();
        for b in crate::model::table::builtin_chains(&name) {
            t.ensure(b, ChainOrigin::Declared);
        }
    }
    // Keep tables in the kernel's order so output is stable.
    rs.tables.sort_by_key(|t| {
        crate::model::table::KNOWN_TABLES
            .iter()
            .position(|k| **k == *t.name)
            .unwrap_or(99)
    });
    let summary: Vec<String> = counts
        .iter()
        .map(|(t, n)| format!("{t}: {n} rule{}", if *n == 1 { "" } else { "s" }))
        .collect();
    let how = match listed {
        Some(t) => format!("`iptables -S` output of table {t}"),
        None if named => "tables from the pasted command lines or inferred".into(),
        None => "tables inferred".into(),
    };
    rs.note(
        format!(
            "fragment input (no `*table` header): {how} ({}); {created} chain{} created",
            summary.join(", "),
            if created == 1 { " was" } else { "s were" }
        ),
        None,
    );
}
