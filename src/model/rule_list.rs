//! The rules of a chain: slots kept in a list, or a run of consecutive source lines read into slots
//! the first time anything looks at them.
//!
//! `iptables-save` writes a chain's rules on consecutive lines, so a front end can record a chain's
//! rules as "n lines from here" while it indexes the dump. `svc` on a 50,000-Service dump then
//! builds slots for the few chains its trace reaches instead of for all 1.9 million rules.

use super::chain::RuleSlot;
use super::source::Source;
use std::sync::{Arc, OnceLock};

/// Reads `len` consecutive rule lines from line `line` on. Set by the front end that recorded the
/// run: only it knows the line syntax.
pub type RunReader = fn(source: &Source, line: u32, len: u32) -> Vec<RuleSlot>;

/// Where a front end's runs of lines are read from, and how: one for a whole rule set, which every
/// chain's run points to (a pointer a chain, not a copy of both).
pub struct RunSource {
    pub source: Arc<Source>,
    pub read: RunReader,
}

struct Run {
    from: Arc<RunSource>,
    line: u32,
    len: u32,
}

/// A chain's slots as [`RuleList::peek`] found them: kept in the list, or read for the caller only.
pub enum Slots<'a> {
    Kept(&'a [RuleSlot]),
    Read(Vec<RuleSlot>),
}

impl std::ops::Deref for Slots<'_> {
    type Target = [RuleSlot];
    fn deref(&self) -> &[RuleSlot] {
        match self {
            Slots::Kept(s) => s,
            Slots::Read(v) => v,
        }
    }
}

/// Dereferences to the chain's list of slots, reading a pending run first.
#[derive(Default)]
pub struct RuleList {
    /// Boxed: the list a chain reads its run into sits behind a pointer, so the many chains whose
    /// rules nothing reads carry 16 bytes here rather than 32.
    #[allow(clippy::box_collection)]
    slots: OnceLock<Box<Vec<RuleSlot>>>,
    run: Option<Run>,
}

impl RuleList {
    pub fn new() -> RuleList {
        RuleList::default()
    }

    /// Records the rule on line `line` as part of this chain's run of lines, when it continues it
    /// (or starts it, for a chain with no rules yet). Returns false when it cannot: the caller then
    /// appends a slot.
    pub fn extend_run(&mut self, from: &Arc<RunSource>, line: u32) -> bool {
        if self.slots.get().is_some() {
            return false;
        }
        match &mut self.run {
            None => {
                self.run = Some(Run {
                    from: from.clone(),
                    line,
                    len: 1,
                });
                true
            }
            Some(run) if run.line.checked_add(run.len) == Some(line) => {
                run.len += 1;
                true
            }
            Some(_) => false,
        }
    }

    /// Adds the `n` lines after the end of the pending run to it, when the run ends on the line
    /// before `line`; returns whether it did. For a front end that found the lines of one chain
    /// together (see [`RuleList::extend_run`]).
    pub fn extend_run_by(&mut self, line: u32, n: u32) -> bool {
        match (self.slots.get(), &mut self.run) {
            (None, Some(run)) if run.line.checked_add(run.len) == Some(line) => {
                run.len += n;
                true
            }
            _ => false,
        }
    }

    /// The number of rules, without reading a pending run.
    pub fn count(&self) -> usize {
        match (self.slots.get(), &self.run) {
            (Some(v), _) => v.len(),
            (None, Some(run)) => run.len as usize,
            (None, None) => 0,
        }
    }

    /// The lines a pending run covers: (first line, count). None once its slots are kept.
    pub fn run_lines(&self) -> Option<(u32, u32)> {
        match (self.slots.get(), &self.run) {
            (None, Some(run)) => Some((run.line, run.len)),
            _ => None,
        }
    }

    /// The slots without keeping a pending run read: for passes that look at each chain once, so
    /// a whole-dump command need not hold a slot for every rule of the dump at the same time.
    pub fn peek(&self) -> Slots<'_> {
        match self.slots.get() {
            Some(v) => Slots::Kept(v),
            None => Slots::Read(self.read()),
        }
    }

    fn read(&self) -> Vec<RuleSlot> {
        self.run
            .as_ref()
            .map(|r| (r.from.read)(&r.from.source, r.line, r.len))
            .unwrap_or_default()
    }
}

impl std::ops::Deref for RuleList {
    type Target = Vec<RuleSlot>;
    fn deref(&self) -> &Vec<RuleSlot> {
        self.slots.get_or_init(|| Box::new(self.read()))
    }
}

impl std::ops::DerefMut for RuleList {
    fn deref_mut(&mut self) -> &mut Vec<RuleSlot> {
        if self.slots.get().is_none() {
            let v = Box::new(self.read());
            let _ = self.slots.set(v);
        }
        self.run = None;
        self.slots.get_mut().expect("set just above")
    }
}

impl std::fmt::Debug for RuleList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
