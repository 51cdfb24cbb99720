//! Conditions beside shares: each question the input cannot answer gets a number, the outcomes
//! say which answers they need (`if 1`, `unless 2`), and a legend below the table states the
//! questions once, so a table row never grows past the width of a terminal.

use super::style::{paint, WARN};
use crate::engine::state::Condition;
use crate::engine::Outcome;

/// The numbered questions of a set of outcomes, in order of first appearance.
#[derive(Default)]
pub struct Legend {
    facts: Vec<(String, String, String)>,
}

impl Legend {
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Legend {
        let mut l = Legend::default();
        for o in outcomes {
            for c in &o.conditions {
                l.number(c);
            }
        }
        l
    }

    fn number(&mut self, c: &Condition) -> usize {
        match self.facts.iter().position(|(f, _, _)| *f == c.fact) {
            Some(i) => i + 1,
            None => {
                // Line 0: a rule kptrace assumed (not in the input) asked.
                let at = match c.rule.line {
                    0 => format!("{} {}, assumed", c.rule.table, c.rule.chain),
                    n => format!("{} {} line {n}", c.rule.table, c.rule.chain),
                };
                self.facts.push((c.fact.clone(), c.text.clone(), at));
                self.facts.len()
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }

    /// `if 1, unless 2`; empty for an outcome that holds in every world.
    pub fn cell(&self, o: &Outcome) -> String {
        o.conditions
            .iter()
            .map(|c| {
                let n = self
                    .facts
                    .iter()
                    .position(|(f, _, _)| *f == c.fact)
                    .map_or(0, |i| i + 1);
                format!("{} {n}", if c.holds { "if" } else { "unless" })
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The legend under a table: a heading, then one line per question
    /// (`1: the packet arrives on `docker0` (filter FORWARD line 12)`); empty without questions.
    pub fn footer(&self) -> String {
        if self.facts.is_empty() {
            return String::new();
        }
        let mut out = paint(
            WARN,
            "the input cannot decide these; each share holds where its conditions do:\n",
        );
        for (i, (_, text, at)) in self.facts.iter().enumerate() {
            out += &paint(
                WARN,
                super::style::prose(&format!("  {}: {text} ({at})", i + 1), 5),
            );
        }
        out
    }
}
