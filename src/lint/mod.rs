//! `kptrace lint`: rules that catch rule sets which would lose, misroute or leak Service traffic.
//!
//! Each rule is one file under [`rules`], with a stable kebab-case name, a code and its documentation
//! in its `//!` comment (docs/rules/ is generated from those). A rule looks at one chain at a time
//! through a [`ChainContext`], in the sweep that reads every chain once and keeps no rule parsed,
//! and at the whole rule set afterwards through a [`Context`] that also holds the chain graph and
//! the Services recovered from the rules.

pub mod baseline;
pub mod chain_context;
pub mod context;
pub mod finding;
pub mod ladder;
pub mod lost_match;
pub mod modes;
pub mod rules;

pub use chain_context::ChainContext;
pub use context::Context;
pub use finding::{Finding, Label, Meta, Scope, Severity};

/// What a rule does: look at the rule set and report findings.
pub trait Rule: Sync {
    fn meta(&self) -> &'static Meta;
    /// Checks one chain. Runs in the sweep that reads every chain once, on all cores, before the
    /// chain graph and the Services are known (see [`Finding::for_its_service`]).
    fn check_chain(&self, _cx: &ChainContext, _out: &mut Vec<Finding>) {}
    /// Checks the whole rule set, after the sweep. `out` already holds this rule's findings from
    /// [`Rule::check_chain`], for it to keep, merge or drop.
    fn check(&self, _cx: &Context, _out: &mut Vec<Finding>) {}
}

/// Settings that change what rules report.
#[derive(Clone, Debug)]
pub struct Options {
    /// Largest difference between two endpoints' shares that `uneven-distribution` accepts.
    pub uneven_tolerance: f64,
    /// The node's uplink (where the default route leaves), when the user names it: rules that
    /// test `-o` decide as on the node instead of becoming conditions.
    pub uplink: Option<String>,
    /// The pod interface, when the user names it.
    pub pod_iface: Option<String>,
    /// Report findings about other tools' chains at their rules' severity (`--scope all`), not
    /// as notes.
    pub scope_all: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            uneven_tolerance: 1e-4,
            uplink: None,
            pod_iface: None,
            scope_all: false,
        }
    }
}

/// Sets whether a finding concerns kube-proxy: a Service, or a chain kube-proxy or kubelet writes,
/// among the chains it is about. Another tool's orphan, duplicate or shadowed rule that touches no
/// Service is that tool's business: a note, unless `--scope all`.
fn scope(f: &mut Finding, opts: &Options) {
    use crate::kube::owner::Owner;
    let kube = f.service.is_some()
        || f.chain
            .iter()
            .chain(&f.concerns)
            .any(|c| Owner::of(c).is_kube());
    if kube {
        return;
    }
    f.scope = Scope::Other;
    if f.rule.scoped && !opts.scope_all && f.severity > Severity::Note {
        f.severity = Severity::Note;
        let whose = match f.chain.as_deref().map(Owner::of) {
            Some(Owner::Other(Some(tool))) => format!("{tool}'s rules"),
            _ => "rules of another tool".to_string(),
        };
        let note = format!(
            "{whose}, on no Service's path: a note (`--scope all` reports it as a {})",
            f.rule.severity.name()
        );
        f.help = Some(match f.help.take() {
            Some(h) => format!("{h}; {note}"),
            None => note,
        });
    }
}

/// Runs every rule on one rule set; findings come sorted by position.
///
/// Reads the dump once: one sweep over every chain builds the Services, the chain graph and every
/// rule's per-chain findings, keeping no rule parsed; the whole-dump checks follow.
pub fn run(rs: &crate::model::Ruleset, opts: &Options) -> Vec<Finding> {
    use crate::graph::{read_jumps, ChainGraph, Dangling};
    use rayon::prelude::*;
    use std::sync::Mutex;
    // Few chains have findings or undeclared targets: a list each, not a slot per chain.
    let found = Mutex::new(Vec::new());
    let dangling = Dangling::default();
    let mut graph = ChainGraph::with_chains(rs);
    // Which chains hold a DNAT rule, in node order: table by table, chain by chain.
    let mut dnats: Vec<bool> = Vec::with_capacity(graph.graph.node_count());
    let catalog = crate::kube::Catalog::build_resolved_with(
        rs,
        |ti, v| {
            let table = &rs.tables[ti];
            let cx = ChainContext::new(rs, table, v, opts);
            let mut mine = Vec::new();
            for r in rules::ALL {
                r.check_chain(&cx, &mut mine);
            }
            if !mine.is_empty() {
                found.lock().unwrap().extend(mine);
            }
            let jumps = read_jumps(ti, table, v, &dangling);
            let dnat = v
                .rules()
                .any(|r| matches!(r.target_kind(), Some(crate::model::TargetKind::Dnat { .. })));
            (jumps, dnat)
        },
        // The jumps of a window go into the graph as soon as it is done.
        |ti, first, window| {
            let jumps = window.into_iter().map(|(j, d)| {
                dnats.push(d);
                j
            });
            graph.add_jumps(ti, first, jumps);
        },
    );
    graph.set_dangling(dangling.into_inner().unwrap());
    let mut per_rule: Vec<Vec<Finding>> = rules::ALL.iter().map(|_| Vec::new()).collect();
    let mut found = found.into_inner().unwrap();
    // Chains are checked on all cores: put their findings back in source order.
    found.sort_by_key(|f| f.primary.as_ref().map(|l| l.span.start).unwrap_or(u32::MAX));
    for f in found {
        if let Some(i) = rules::ALL
            .iter()
            .position(|r| std::ptr::eq(r.meta(), f.rule))
        {
            per_rule[i].push(f);
        }
    }
    let cx = Context::new(rs, graph, dnats, &catalog, opts);
    let mut all: Vec<Finding> = rules::ALL
        .par_iter()
        .zip(per_rule)
        .flat_map_iter(|(r, mut out)| {
            r.check(&cx, &mut out);
            out
        })
        .collect();
    for f in &mut all {
        if f.for_its_service {
            f.service = f.chain.as_deref().and_then(|c| cx.service_of(c));
        }
        scope(f, opts);
    }
    all.sort_by_key(|f| {
        (
            f.primary.as_ref().map(|l| l.span.start).unwrap_or(u32::MAX),
            f.rule.code,
        )
    });
    drop(cx);
    // A large dump's catalogue is a million small allocations: free them beside the rendering
    // that comes next rather than before it.
    std::thread::spawn(move || drop(catalog));
    all
}
