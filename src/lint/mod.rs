//! `kptrace lint`: rules that catch rule sets which would lose, misroute or leak Service traffic.
//!
//! Each rule is one file under [`rules`], with a stable kebab-case name, a code and its documentation
//! in its `//!` comment (docs/rules/ is generated from those). Rules see the parsed rule set through a
//! [`Context`] that also holds the chain graph and the Services recovered from the rules.

pub mod baseline;
pub mod context;
pub mod finding;
pub mod ladder;
pub mod rules;

pub use context::Context;
pub use finding::{Finding, Label, Meta, Severity};

/// What a rule does: look at the rule set and report findings.
pub trait Rule: Sync {
    fn meta(&self) -> &'static Meta;
    fn check(&self, cx: &Context, out: &mut Vec<Finding>);
}

/// Settings that change what rules report.
#[derive(Clone, Debug)]
pub struct Options {
    /// Largest difference between two endpoints' shares that `uneven-distribution` accepts.
    pub uneven_tolerance: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            uneven_tolerance: 1e-4,
        }
    }
}

/// Runs every rule on one rule set; findings come sorted by position.
pub fn run(rs: &crate::model::Ruleset, opts: &Options) -> Vec<Finding> {
    rs.parse_all();
    let cx = Context::new(rs, opts);
    let mut all: Vec<Finding> = {
        use rayon::prelude::*;
        rules::ALL
            .par_iter()
            .flat_map_iter(|r| {
                let mut out = Vec::new();
                r.check(&cx, &mut out);
                out
            })
            .collect()
    };
    all.sort_by_key(|f| {
        (
            f.primary.as_ref().map(|l| l.span.start).unwrap_or(u32::MAX),
            f.rule.code,
        )
    });
    all
}
