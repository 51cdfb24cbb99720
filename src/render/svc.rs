//! Renders `kptrace svc`: a headline per Service port, what is wrong first, one table of every way
//! in, then the chain path of a representative connection.

use super::style::prose;
use super::style::{finish, paint, table, BAD, BOLD, DIM, WARN};
use super::trace::{exact, outcome_label, share, step_line};
use crate::engine::state::Verdict;
use crate::engine::{Outcome, Trace};
use crate::kube::analysis::PortReport;
use crate::kube::probe::Probe;
use crate::kube::{host_port, EntryKind};
use crate::model::Ruleset;
use serde_json::{json, Value};

pub fn entry_label(p: &Probe) -> String {
    p.entry_label()
}

pub fn from_label(p: &Probe) -> String {
    p.from_label()
}

/// The line of the rule that asked for masquerading (the jump to KUBE-MARK-MASQ, or any MARK). The
/// reason (hairpin, off-cluster source, external traffic) is already plain from the row's entry and
/// client, and the path names the chain, so the cell stays narrow enough for an 80-column terminal.
fn masq_cause(o: &Outcome) -> Option<String> {
    if !o.masquerade {
        return None;
    }
    let Some(i) = o
        .path
        .iter()
        .rposition(|s| s.action == "jump KUBE-MARK-MASQ" || s.action == "jump mark-for-masquerade")
        .or_else(|| o.path.iter().rposition(|s| s.action.starts_with("MARK")))
    else {
        // Masqueraded without a mark: the MASQUERADE/SNAT rule itself decided.
        return o
            .masquerade_rule
            .as_ref()
            .filter(|r| r.line > 0)
            .map(|r| format!("line {}", r.line));
    };
    let s = &o.path[i];
    Some(if s.line == 0 {
        "assumed rule".to_string()
    } else {
        format!("line {}", s.line)
    })
}

fn masq_cell(o: &Outcome) -> String {
    if matches!(o.verdict, Verdict::Drop | Verdict::Reject) {
        return "–".into();
    }
    if o.verdict == Verdict::Unknown {
        // The path left the input before POSTROUTING decided.
        return "?".into();
    }
    match masq_cause(o) {
        Some(c) => format!("yes, {c}"),
        None if o.masquerade => "yes".into(),
        None => "no".into(),
    }
}

/// Whether the endpoint a connection is DNAT'd to runs on this node: known only when the rules keep
/// a list of local endpoints (kube-proxy's KUBE-SVL-/KUBE-XLB- chains, for a Local traffic policy).
fn is_local(r: &PortReport, o: &Outcome) -> Option<bool> {
    if !(r.port.external_local || r.port.svl_chain.is_some()) {
        return None;
    }
    let dnat = o.dnat.as_deref()?;
    Some(
        r.port
            .local_endpoints
            .iter()
            .any(|e| e.address.as_deref() == Some(dnat)),
    )
}

/// An endpoint row's label: the address, marked `(local)` when it is known to run on this node.
fn reaches(r: &PortReport, o: &Outcome) -> String {
    match is_local(r, o) {
        Some(true) => format!("{} (local)", outcome_label(o)),
        _ => outcome_label(o),
    }
}

type Signature = Vec<(Option<String>, String, Verdict, Vec<(String, bool)>)>;

fn signature(t: &Trace) -> Signature {
    t.outcomes
        .iter()
        .map(|o| {
            let c = o
                .conditions
                .iter()
                .map(|c| (c.fact.clone(), c.holds))
                .collect();
            (o.dnat.clone(), exact(o.probability), o.verdict, c)
        })
        .collect()
}

/// Whether a drop is the one `loadBalancerSourceRanges` asks for: kube-proxy's source-range
/// firewall (filter `KUBE-PROXY-FIREWALL`, or a `KUBE-FW-` chain's drop mark in older versions)
/// dropping a client that is not in a range.
fn source_range_drop(p: &Probe, o: &Outcome) -> bool {
    let in_range = p
        .detail
        .as_deref()
        .is_some_and(|d| d.starts_with("in source range"));
    let by_firewall = o
        .verdict_rule
        .as_ref()
        .is_some_and(|r| r.chain == "KUBE-PROXY-FIREWALL")
        || o.path.iter().any(|s| s.chain.starts_with("KUBE-FW-"));
    p.kind == crate::kube::EntryKind::LoadBalancer && by_firewall && !in_range
}

/// Problems, most serious first: (is_error, message); and the drops the Service asks for.
fn problems(r: &PortReport) -> (Vec<(bool, String)>, Vec<String>) {
    let mut v: Vec<(bool, String)> = Vec::new();
    let mut intended: Vec<String> = Vec::new();
    let name = r.port.display_name();
    let mut doubts: Vec<(String, String, u32)> = Vec::new();
    let mut drops: Vec<((bool, String, String), f64)> = Vec::new();
    for (p, t) in &r.probes {
        let who = format!("{} from {}", entry_label(p), from_label(p));
        let dnat: f64 = t
            .outcomes
            .iter()
            .filter(|o| o.dnat.is_some() && o.verdict == Verdict::Accept)
            .map(|o| o.probability)
            .sum();
        for o in &t.outcomes {
            if matches!(o.verdict, Verdict::Drop | Verdict::Reject) {
                // The deciding rule, or the assumed step that dropped (kubelet's KUBE-FIREWALL).
                let by = match &o.verdict_rule {
                    Some(rule) => format!("{} {} line {}", rule.table, rule.chain, rule.line),
                    None => o
                        .path
                        .last()
                        .map(|s| {
                            if s.assumed {
                                format!("{} {} (assumed)", s.table, s.chain)
                            } else if let Some(p) = s.action.strip_prefix("policy ") {
                                // A built-in chain's policy, not a rule: say so.
                                format!("{} {}'s policy {p}", s.table, s.chain)
                            } else {
                                format!("{} {}", s.table, s.chain)
                            }
                        })
                        .unwrap_or_else(|| "policy".into()),
                };
                let why = if r.port.external_local
                    && r.port.local_endpoints.is_empty()
                    && o.verdict == Verdict::Drop
                {
                    " (externalTrafficPolicy Local, and no endpoint on this node)"
                } else if r.port.endpoints.is_empty() {
                    " (the Service has no endpoints)"
                } else {
                    ""
                };
                let fate = if o.verdict == Verdict::Drop {
                    "dropped"
                } else {
                    "rejected"
                };
                // A drop that depends on what the input cannot show is a warning that says on
                // what, never a certain loss.
                let when = when(o);
                // Through rules the paste may not show in full, a drop is what the paste says,
                // not a certainty.
                let is = if o.approximate { "may be" } else { "is" };
                if source_range_drop(p, o) && when.is_empty() {
                    let line = format!("{who} is {fate} by {by}, as loadBalancerSourceRanges asks");
                    if !intended.contains(&line) {
                        intended.push(line);
                    }
                    continue;
                }
                // One line per way of being dropped: the endpoints a drop meets after DNAT are
                // summed, not listed one by one.
                let key = (
                    when.is_empty() && !o.approximate,
                    format!("{name}: {who} {is} {fate}{when}"),
                    format!("{} by {by}{why}", o.verdict.name()),
                );
                match drops.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, p)) => *p += o.probability,
                    None => drops.push((key, o.probability)),
                }
            }
        }
        for ((err, head, tail), p) in drops.drain(..) {
            v.push((err, format!("{head}: {} {tail}", share(p))));
        }
        let nowhere: f64 = t
            .outcomes
            .iter()
            .filter(|o| o.dnat.is_none() && o.verdict == Verdict::Accept && o.conditions.is_empty())
            .map(|o| o.probability)
            .sum();
        if nowhere > 1e-12 {
            let fate = if t
                .outcomes
                .iter()
                .any(|o| o.dnat.is_none() && o.delivery == "local")
            {
                "is delivered to the node itself"
            } else {
                "is forwarded unchanged"
            };
            v.push((
                true,
                format!(
                    "{name}: {who} reaches no endpoint: {} {fate}{}",
                    share(nowhere),
                    if dnat > 0.0 {
                        " (a probability leak)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        for o in t.outcomes.iter().filter(|o| {
            o.dnat.is_none() && o.verdict == Verdict::Accept && !o.conditions.is_empty()
        }) {
            let fate = if o.delivery == "local" {
                "is delivered to the node itself"
            } else {
                "is forwarded unchanged"
            };
            v.push((
                false,
                format!(
                    "{name}: {who} reaches no endpoint{}: {} {fate}",
                    when(o),
                    share(o.probability)
                ),
            ));
        }
        for o in &t.outcomes {
            doubts.extend(o.doubts.iter().map(|d| {
                (
                    d.reason.clone(),
                    format!("{} {}", d.rule.table, d.rule.chain),
                    d.rule.line,
                )
            }));
        }
    }
    v.extend(doubt_lines(doubts).into_iter().map(|m| (false, m)));
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.1.clone()));
    v.sort_by_key(|x| !x.0);
    (v, intended)
}

/// Whether some way into the port certainly fails: a drop or reject the Service does not ask for,
/// or traffic that reaches no endpoint, in every world the input leaves open (the ✗ lines).
pub fn fails(r: &PortReport) -> bool {
    problems(r).0.iter().any(|(err, _)| *err)
}

/// ` if the packet arrives on `docker0` and unless …`; empty for an outcome without conditions.
fn when(o: &Outcome) -> String {
    if o.conditions.is_empty() {
        return String::new();
    }
    let p: Vec<String> = o.conditions.iter().map(|c| c.phrase()).collect();
    format!(" {}", p.join(" and "))
}

/// One line per kind of doubt: three endpoint chains missing from a paste are one finding, not three.
/// Reasons that differ only in the name they quote (in backticks) are grouped.
fn doubt_lines(mut doubts: Vec<(String, String, u32)>) -> Vec<String> {
    doubts.sort();
    doubts.dedup();
    let shape = |reason: &str| -> (String, Option<String>) {
        let mut parts = reason.splitn(3, '`');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(name), Some(b)) => (format!("{a}`…`{b}"), Some(name.to_string())),
            _ => (reason.to_string(), None),
        }
    };
    // (reason shape, rule's chain, quoted names, lines, first full reason)
    type Group = (String, String, Vec<String>, Vec<u32>, String);
    let mut groups: Vec<Group> = Vec::new();
    for (reason, rule, line) in doubts {
        let (key, name) = shape(&reason);
        match groups.iter_mut().find(|g| g.0 == key && g.1 == rule) {
            Some(g) => {
                g.2.extend(name);
                g.3.push(line);
            }
            None => groups.push((key, rule, name.into_iter().collect(), vec![line], reason)),
        }
    }
    groups
        .into_iter()
        .map(|(key, rule, names, mut lines, reason)| {
            lines.sort_unstable();
            lines.dedup();
            let at = if lines.len() == 1 {
                format!("{rule} line {}", lines[0])
            } else {
                let l: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                format!("{rule} lines {}", l.join(", "))
            };
            if names.len() > 1 {
                let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                let text = key.replacen("`…`", &format!("of {} chains", names.len()), 1);
                let text = text.replace("chain of ", "");
                format!("approximate: {text}: {} ({at})", quoted.join(", "))
            } else {
                format!("approximate: {reason} ({at})")
            }
        })
        .collect()
}

fn headline(r: &PortReport) -> String {
    let sp = &r.port;
    let mut parts = vec![format!(
        "{}{}",
        sp.display_name(),
        sp.protocol.map(|p| format!("/{p}")).unwrap_or_default()
    )];
    if let Some((ip, port)) = sp.cluster_ip() {
        parts.push(format!("cluster IP {}", host_port(ip, port)));
    }
    if let Some(np) = sp.node_port() {
        parts.push(format!("NodePort {np}"));
    }
    for ip in sp.addresses(EntryKind::LoadBalancer) {
        parts.push(format!("load balancer {ip}"));
    }
    for ip in sp.addresses(EntryKind::ExternalIp) {
        parts.push(format!("external IP {ip}"));
    }
    let n = sp.endpoints.len();
    parts.push(format!("{n} endpoint{}", if n == 1 { "" } else { "s" }));
    if sp.external_local {
        parts.push(format!(
            "{} local (externalTrafficPolicy Local)",
            sp.local_endpoints.len()
        ));
    }
    parts.join(" · ")
}

pub fn human(all: &[(&Ruleset, Vec<PortReport>)], all_paths: bool, every_endpoint: bool) -> String {
    let mut out = String::new();
    for (rs, reports) in all {
        if all.len() > 1 {
            out += &paint(DIM, format!("── {}\n", rs.source.name));
        }
        for r in reports {
            out += &paint(BOLD, prose(&headline(r), 2));
            let (probs, intended) = problems(r);
            let shown = 6;
            for (err, msg) in probs.iter().take(shown) {
                if *err {
                    out += &paint(BAD, prose(&format!("✗ {msg}"), 2));
                } else {
                    out += &paint(WARN, prose(&format!("~ {msg}"), 2));
                }
            }
            if probs.len() > shown {
                out += &format!("  … and {} more\n", probs.len() - shown);
            }
            if r.probes.is_empty() {
                // Nothing was traced: no ✓ for a Service whose ways in the input does not show.
                out += &paint(
                    WARN,
                    prose("? no way into this Service is in the input (no cluster IP, NodePort or other entry rule): nothing to trace", 2),
                );
            } else if probs.is_empty() {
                let ok = if intended.is_empty() {
                    "✓ every way in reaches an endpoint"
                } else {
                    "✓ every way in reaches an endpoint, but for the drops the Service asks for"
                };
                out += &paint(super::style::GOOD, prose(ok, 2));
            }
            for line in &intended {
                out += &paint(DIM, prose(&format!("· {line}"), 2));
            }
            out += &probe_table(r, every_endpoint);
            out += &counters_table(r);
            if let Some(s) = r.port.affinity_seconds {
                out += &prose(&format!(
                    "session affinity: a returning client sticks to its first endpoint for {s} s (-m recent); shares are for new clients"
                ), 2);
            }
            out += &paths(r, all_paths);
            let mut notes: Vec<&String> = r.notes.iter().collect();
            if let Some((_, t)) = r.probes.first() {
                notes.extend(t.notes.iter());
            }
            for n in notes {
                out += &paint(DIM, prose(&format!("note: {n}"), 6));
            }
            out.push('\n');
        }
    }
    out
}

/// Packets each endpoint's DNAT rule has counted (`iptables-save -c`, `iptables -L -v`), beside the
/// share the rules give it: a quick check that traffic really spreads as expected.
fn counters_table(r: &PortReport) -> String {
    let Some(rows) = r.port.counted_packets() else {
        return String::new();
    };
    // Expected shares: from the exact probe that reaches the most endpoints (a pod or an outside
    // client to the cluster IP, usually).
    let best = r
        .probes
        .iter()
        .filter(|(_, t)| !t.approximate())
        .max_by_key(|(_, t)| {
            t.outcomes
                .iter()
                .filter(|o| o.endpoint_chain.is_some())
                .count()
        });
    let mut expected: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
    if let Some((_, t)) = best {
        for o in &t.outcomes {
            if let Some(c) = o.endpoint_chain.as_deref() {
                *expected.entry(c).or_default() += o.probability;
            }
        }
    }
    let total: u64 = rows.iter().map(|(_, h)| h).sum();
    let mut t = table();
    t.set_header(vec!["endpoint", "expected", "counted packets", "observed"]);
    for (e, h) in &rows {
        t.add_row(vec![
            e.address
                .as_deref()
                .map_or_else(|| e.chain.to_string(), str::to_string),
            expected
                .get(e.chain.as_str())
                .map(|p| share(*p))
                .unwrap_or_else(|| "–".into()),
            h.to_string(),
            if total > 0 {
                share(*h as f64 / total as f64)
            } else {
                "–".into()
            },
        ]);
    }
    format!(
        "\n{}\n{}",
        paint(
            DIM,
            "counters in the input (packets through each endpoint's DNAT rule):"
        ),
        finish(&t)
    )
}

/// Endpoints beyond which equal shares are one row ("35 endpoints, 2.86% each").
const GROUPED: usize = 8;

/// Whether a trace's outcomes are many endpoints with equal shares and no conditions: (share
/// each, largest difference from it). Rows alike in everything but the address are then grouped.
fn equal_shares(t: &Trace) -> Option<(f64, f64)> {
    let n = t.outcomes.len();
    if n <= GROUPED {
        return None;
    }
    let alike = t.outcomes.iter().all(|o| {
        o.verdict == Verdict::Accept
            && o.dnat.is_some()
            && o.conditions.is_empty()
            && !o.approximate
    });
    if !alike {
        return None;
    }
    let each = 1.0 / n as f64;
    let dev = t
        .outcomes
        .iter()
        .map(|o| (o.probability - each).abs())
        .fold(0.0, f64::max);
    (dev < 1e-6).then_some((each, dev))
}

/// The rows of a trace whose endpoints have equal shares: endpoints alike in masquerading and
/// locality are one row; a group of one or two (the hairpin client's own endpoint) keeps its
/// address. (label, outcomes in the row, masquerade cell.)
fn groups<'t>(r: &PortReport, t: &'t Trace) -> Vec<(String, Vec<&'t Outcome>, String)> {
    type Key = (String, Option<bool>);
    let mut by: Vec<(Key, Vec<&Outcome>)> = Vec::new();
    for o in &t.outcomes {
        let key = (masq_cell(o), is_local(r, o));
        match by.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(o),
            None => by.push((key, vec![o])),
        }
    }
    let several = by.len() > 1;
    let mut rows = Vec::new();
    for ((m, local), os) in by {
        if os.len() <= 2 {
            for o in os {
                rows.push((reaches(r, o), vec![o], m.clone()));
            }
            continue;
        }
        let n = os.len();
        let label = match (local, several) {
            (Some(true), _) => format!("{n} local endpoints"),
            (Some(false), _) => format!("{n} other endpoints"),
            (None, true) => format!("{n} other endpoints"),
            (None, false) => format!("{n} endpoints"),
        };
        rows.push((label, os, m));
    }
    rows
}

fn probe_table(r: &PortReport, every_endpoint: bool) -> String {
    let legend = super::conditions::Legend::of(r.probes.iter().flat_map(|(_, t)| &t.outcomes));
    let mut t = table();
    let mut header = vec!["entry", "from", "reaches", "share", "exact", "masquerade"];
    if !legend.is_empty() {
        header.push("depends on");
    }
    t.set_header(header);
    // The exact column earns its width only when a share has more digits than the percentage shows
    // (the kernel's 0.333333333488554); 50% and 25% say it all.
    let needs_exact = r
        .probes
        .iter()
        .flat_map(|(_, t)| t.outcomes.iter())
        .any(|o| exact(o.probability).len() > 6);
    let mut last_entry = String::new();
    let mut first_sig: Option<Signature> = None;
    let mut first_from = String::new();
    let mut grouped_any = false;
    for (p, trace) in &r.probes {
        let entry = entry_label(p);
        let new_entry = entry != last_entry;
        if new_entry {
            first_sig = None;
            last_entry = entry.clone();
            first_from = from_label(p);
        }
        let sig = signature(trace);
        let masq: Vec<String> = trace.outcomes.iter().map(masq_cell).collect();
        let uniform = masq.windows(2).all(|w| w[0] == w[1]);
        let same = first_sig.as_ref() == Some(&sig) && trace.outcomes.len() > 1 && uniform;
        let mut first_row = true;
        let row =
            |reaches: String, sh: String, ex: String, m: String, cond: String, first: &mut bool| {
                let e = if new_entry && *first {
                    entry.clone()
                } else {
                    String::new()
                };
                let f = if *first { from_label(p) } else { String::new() };
                *first = false;
                let mut v = vec![e, f, reaches, sh, ex, m];
                if !legend.is_empty() {
                    v.push(cond);
                }
                v
            };
        let grouped = if every_endpoint {
            None
        } else {
            equal_shares(trace)
        };
        if let (Some((each, dev)), false) = (grouped, same) {
            grouped_any = true;
            let n = trace.outcomes.len();
            for (label, os, m) in groups(r, trace) {
                let (sh, ex) = if os.len() == 1 {
                    (share(os[0].probability), exact(os[0].probability))
                } else if dev > 0.0 {
                    (
                        format!("{} each", share(each)),
                        format!("1/{n} ± {dev:.0e}"),
                    )
                } else {
                    (format!("{} each", share(each)), format!("1/{n}"))
                };
                let row = row(label, sh, ex, m, legend.cell(os[0]), &mut first_row);
                t.add_row(row);
            }
        } else if same {
            let r = row(
                format!("same as from {first_from}"),
                String::new(),
                String::new(),
                masq[0].clone(),
                legend.cell(&trace.outcomes[0]),
                &mut first_row,
            );
            t.add_row(r);
        } else {
            for (o, m) in trace.outcomes.iter().zip(masq) {
                let sh = if o.approximate {
                    format!("~{}", share(o.probability))
                } else {
                    share(o.probability)
                };
                let r = row(
                    reaches(r, o),
                    sh,
                    exact(o.probability),
                    m,
                    legend.cell(o),
                    &mut first_row,
                );
                t.add_row(r);
            }
        }
        if first_sig.is_none() {
            first_sig = Some(sig);
        }
    }
    if !needs_exact {
        if let Some(c) = t.column_mut(4) {
            c.set_constraint(comfy_table::ColumnConstraint::Hidden);
        }
    }
    // Narrow terminals lose the 15-digit exact shares first: the percentage says most of it.
    // Entry and client are prose and wrap at blanks; an endpoint, a share or a masquerade cell
    // reads as one and stays whole.
    super::style::fit(&mut t, &[4], &[(5, "masq"), (6, "cond")], &[2, 3, 4, 5]);
    let mut out = finish(&t);
    if grouped_any {
        out += &paint(
            DIM,
            prose(
                "(endpoints with equal shares are one row: `--endpoints` lists them)",
                1,
            ),
        );
    }
    out += &legend.footer();
    out
}

fn paths(r: &PortReport, all: bool) -> String {
    let mut out = String::new();
    for (i, (p, t)) in r.probes.iter().enumerate() {
        for (j, o) in t.outcomes.iter().enumerate() {
            if !all && (i > 0 || j > 0) {
                continue;
            }
            out.push('\n');
            out += &prose(
                &format!(
                    "path of {} from {} ({}) → {}",
                    entry_label(p),
                    from_label(p),
                    p.source,
                    outcome_label(o)
                ),
                2,
            );
            for s in &o.path {
                out += &prose(&format!("  {}", step_line(s)), 6);
            }
        }
    }
    if !all {
        out += &paint(DIM, "(--all-paths shows the path of every row)\n");
    }
    out
}

pub fn outcome_json(o: &Outcome) -> Value {
    serde_json::to_value(o).unwrap()
}

pub fn json(query: &str, all: &[(&Ruleset, Vec<PortReport>)]) -> String {
    let mut entries = Vec::new();
    let mut service: Option<String> = None;
    let mut notes: Vec<String> = Vec::new();
    let mut ports = Vec::new();
    for (rs, reports) in all {
        for r in reports {
            service = service.or_else(|| r.port.service.clone());
            ports.push(serde_json::to_value(crate::render::ls::port_json(rs, &r.port)).unwrap());
            for n in r.notes.iter() {
                if !notes.contains(n) {
                    notes.push(n.clone());
                }
            }
            for (p, t) in &r.probes {
                for n in &t.notes {
                    if !notes.contains(n) {
                        notes.push(n.clone());
                    }
                }
                entries.push(json!({
                    "port_name": r.port.port_name,
                    "protocol": p.protocol.to_string(),
                    "kind": p.kind,
                    "address": p.address.to_string(),
                    "port": p.port,
                    "from": p.from,
                    "source": p.source.to_string(),
                    "source_detail": p.detail,
                    "input": rs.source.name,
                    "family": rs.family,
                    "outcomes": t.outcomes.iter().map(outcome_json).collect::<Vec<_>>(),
                }));
            }
        }
    }
    let (found, expected): (Vec<_>, Vec<_>) = all
        .iter()
        .flat_map(|(_, rs)| rs.iter())
        .map(problems)
        .unzip();
    let problems: Vec<Value> = found
        .into_iter()
        .flatten()
        .map(|(err, m)| json!({"severity": if err { "error" } else { "note" }, "message": m}))
        .collect();
    let expected: Vec<String> = expected.into_iter().flatten().collect();
    let v = json!({
        "schema_version": super::SCHEMA_VERSION,
        "service": service.unwrap_or_else(|| query.to_string()),
        "ports": ports,
        "entries": entries,
        "problems": problems,
        "expected_drops": expected,
        "notes": notes,
    });
    serde_json::to_string_pretty(&v).unwrap() + "\n"
}
