//! Renders `kptrace trace` for people: a headline, the outcomes, and the path of each.

use super::style::{finish, paint, table, BAD, BOLD, DIM, WARN};
use crate::engine::state::{Step, Verdict};
use crate::engine::{Outcome, Trace};

/// A share as a percentage, with the exact figure beside it when it is not a round number.
pub use crate::model::share::{exact, share};

pub fn outcome_label(o: &Outcome) -> String {
    o.label()
}

pub fn step_line(s: &Step) -> String {
    let line = if s.assumed {
        "assumed".to_string()
    } else if s.line == 0 {
        String::new()
    } else {
        format!("line {}", s.line)
    };
    let prob = s
        .probability
        .map(|p| format!(" (p={})", exact(p)))
        .unwrap_or_default();
    format!(
        "{:<6} {:<28} {:<10} {}{}",
        s.table, s.chain, line, s.action, prob
    )
}

pub fn human(t: &Trace) -> String {
    let mut out = String::new();
    let p = &t.packet;
    out += &paint(
        BOLD,
        format!(
            "{} {}:{} → {}:{} ({:?} hook)",
            p.proto, p.src, p.sport, p.dst, p.dport, p.hook
        )
        .to_lowercase(),
    );
    out.push('\n');
    // The answer first: a packet nothing accepts is what the person is looking for.
    if !t.outcomes.is_empty()
        && t.outcomes
            .iter()
            .all(|o| matches!(o.verdict, Verdict::Drop | Verdict::Reject))
    {
        out += &paint(BAD, "✗ no outcome is accepted\n");
    }
    let legend = super::conditions::Legend::of(&t.outcomes);
    let mut tab = table();
    let mut header = vec![
        "share",
        "exact",
        "outcome",
        "masquerade",
        "verdict",
        "decided by",
    ];
    if !legend.is_empty() {
        header.push("depends on");
    }
    tab.set_header(header);
    for o in &t.outcomes {
        let decided = o
            .verdict_rule
            .as_ref()
            .map(|r| format!("{} {} line {}", r.table, r.chain, r.line))
            .unwrap_or_else(|| match o.verdict {
                Verdict::Unknown => "–".into(),
                _ => "policy / fall-through".into(),
            });
        let mut row = vec![
            if o.approximate {
                format!("~{}", share(o.probability))
            } else {
                share(o.probability)
            },
            exact(o.probability),
            outcome_label(o),
            if o.masquerade {
                "yes".into()
            } else {
                "no".into()
            },
            o.verdict.name().into(),
            decided,
        ];
        if !legend.is_empty() {
            row.push(legend.cell(o));
        }
        tab.add_row(row);
    }
    // Narrow terminals lose the 15-digit exact share first; what decided wraps at blanks.
    super::style::fit(&mut tab, &[1], &[(3, "masq")], &[0, 1, 2, 3, 4]);
    out += &finish(&tab);
    out += &legend.footer();
    for (i, o) in t.outcomes.iter().enumerate() {
        let when = legend.cell(o);
        let when = if when.is_empty() {
            String::new()
        } else {
            format!(" ({when})")
        };
        out.push('\n');
        out += &super::style::prose(&format!("path {} → {}{when}", i + 1, outcome_label(o)), 2);
        for s in &o.path {
            out += &super::style::prose(&format!("  {}", step_line(s)), 6);
        }
        for d in &o.doubts {
            out += &paint(
                WARN,
                super::style::prose(
                    &format!(
                        "  ~ approximate: {} ({} {} line {})",
                        d.reason, d.rule.table, d.rule.chain, d.rule.line
                    ),
                    4,
                ),
            );
        }
    }
    for n in &t.notes {
        out += &paint(DIM, super::style::prose(&format!("note: {n}"), 6));
    }
    out
}

/// `trace --format json`: the trace, with the JSON schema's version first (docs/json.md); the
/// trace's own fields keep their order.
pub fn json(t: &Trace) -> String {
    let body = serde_json::to_string_pretty(t).unwrap();
    let rest = body.strip_prefix('{').unwrap_or(&body);
    format!(
        "{{\n  \"schema_version\": {},{rest}\n",
        super::SCHEMA_VERSION
    )
}
