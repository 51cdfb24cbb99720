//! A whole rule set: the tables read from one input, plus what kptrace noticed while reading it.

use super::chain::{Chain, RuleSlot};
use super::rule::Rule;
use super::rule_list::Slots;
use super::source::{Source, Span};
use super::table::{ChainId, Table};
use crate::error::ParseError;
use rayon::prelude::*;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

/// The input language a rule set was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputFormat {
    /// `iptables-save` / `ip6tables-save` output.
    Save,
    /// A shell script of `iptables …` commands.
    Script,
    /// `iptables -L -n [-v]` listings.
    Listing,
    /// nftables text: `nft list ruleset`, or the `add …` form `nft -f` reads.
    Nft,
    /// `nft -j list ruleset`.
    NftJson,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

/// Something kptrace inferred or assumed while reading; shown to the user, never an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub message: String,
    pub span: Option<Span>,
}

/// Parses the rule text of a pending slot. Set by the front end that indexed the source.
pub type RuleParser = fn(&Source, u32, Span, u32) -> Result<Rule, Vec<ParseError>>;

/// One chain as [`Ruleset::sweep`] shows it: its slots (where each rule's text is) and its rules,
/// parsed for the visit.
pub struct Visit<'a> {
    pub id: ChainId,
    pub chain: &'a Chain,
    pub slots: &'a [RuleSlot],
    pub rules: &'a [Cow<'a, Rule>],
}

impl<'a> Visit<'a> {
    /// The rules, as plain references.
    pub fn rules(&self) -> impl Iterator<Item = &'a Rule> + Clone + 'a {
        self.rules.iter().map(|r| &**r)
    }
}

/// Where a paste cut a chain's rules (an elision marker at `line`): rules may be missing between
/// the chain's shown rules `at - 1` and `at` (before its first when `at` is 0, after its last when
/// `at` is its length). `table` is None when the paste did not say which table (a grep'd
/// fragment), and then the chain of that name in any table is meant.
#[derive(Clone, Debug)]
pub struct Cut {
    pub table: Option<String>,
    pub chain: String,
    pub at: u32,
    pub line: u32,
}

impl Ruleset {
    /// The line of the elision marker that cut chain `chain` of `table` just before its shown
    /// rule `at`, if one did.
    pub fn cut_at(&self, table: &str, chain: &str, at: u32) -> Option<u32> {
        self.cuts
            .iter()
            .find(|c| {
                c.at == at && c.chain == chain && c.table.as_deref().is_none_or(|t| t == table)
            })
            .map(|c| c.line)
    }
}

impl Ruleset {
    /// Why the input may not show every rule of chain `chain` of `table`: a grep'd paste (any
    /// chain may have lost lines) or an elision marker in the chain. None when it shows them all.
    pub fn partial(&self, table: &str, chain: &str) -> Option<String> {
        if self.fragment {
            return Some("the paste is a grep and may leave rules out".into());
        }
        self.cuts
            .iter()
            .find(|c| c.chain == chain && c.table.as_deref().is_none_or(|t| t == table))
            .map(|c| format!("the paste cuts `{chain}` at line {}", c.line))
    }
}

/// A rule set: tables, chains and rules as one input holds them.
#[derive(Debug)]
pub struct Ruleset {
    pub source: Arc<Source>,
    pub format: InputFormat,
    pub family: Family,
    pub tables: Vec<Table>,
    /// The input had no `*table` headers (e.g. `iptables-save | grep …`): tables were inferred.
    pub fragment: bool,
    pub notes: Vec<Note>,
    /// Chains a paste cut with an elision marker (`...`, grep's `--`): their shown rules are not
    /// all of them.
    pub cuts: Vec<Cut>,
    pub(crate) parser: Option<RuleParser>,
    /// Errors met while parsing rules on demand; a command reports them before it exits.
    late_errors: Mutex<Vec<ParseError>>,
}

impl Ruleset {
    pub fn new(source: Arc<Source>, format: InputFormat) -> Ruleset {
        Ruleset {
            source,
            format,
            family: Family::Ipv4,
            tables: Vec::new(),
            fragment: false,
            notes: Vec::new(),
            cuts: Vec::new(),
            parser: None,
            late_errors: Mutex::new(Vec::new()),
        }
    }

    pub fn with_parser(mut self, parser: RuleParser) -> Self {
        self.parser = Some(parser);
        self
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| &*t.name == name)
    }

    pub fn table_mut(&mut self, name: &str) -> Option<&mut Table> {
        self.tables.iter_mut().find(|t| &*t.name == name)
    }

    pub fn table_or_insert(&mut self, name: &str) -> &mut Table {
        match self.tables.iter().position(|t| &*t.name == name) {
            Some(i) => &mut self.tables[i],
            None => {
                self.tables.push(Table::new(name, None));
                self.tables.last_mut().unwrap()
            }
        }
    }

    pub fn note(&mut self, message: impl Into<String>, span: Option<Span>) {
        self.notes.push(Note {
            message: message.into(),
            span,
        });
    }

    /// The `i`th rule of a chain, parsed on first use. A rule that fails to parse is reported once
    /// (see [`Ruleset::take_errors`]) and comes back marked `invalid`.
    pub fn rule<'a>(&'a self, chain: &'a Chain, i: usize) -> &'a Rule {
        let slot = &chain.rules[i];
        slot.cell.get_or_init(|| Box::new(self.parse_slot(slot)))
    }

    fn parse_slot(&self, slot: &super::chain::RuleSlot) -> Rule {
        let parser = self
            .parser
            .expect("a pending rule slot always comes with its front end's parser");
        match parser(&self.source, slot.line, slot.span, slot.body_start) {
            Ok(mut r) => {
                r.counters = slot.counters.as_deref().copied();
                r
            }
            Err(errs) => {
                self.late_errors.lock().unwrap().extend(errs);
                Rule {
                    line: slot.line,
                    span: slot.span,
                    counters: slot.counters.as_deref().copied(),
                    matches: Box::new([]),
                    target: None,
                    invalid: true,
                }
            }
        }
    }

    /// The rules of a chain, parsed as needed.
    pub fn rules<'a>(&'a self, chain: &'a Chain) -> impl Iterator<Item = &'a Rule> + Clone + 'a {
        (0..chain.rules.len()).map(move |i| self.rule(chain, i))
    }

    /// The rules of a chain for one look: rules parsed before are borrowed, the others parsed for
    /// the caller and dropped with the result. Whole-dump passes use this so that memory holds one
    /// chain's rules per core rather than every rule of the dump.
    pub fn peek_rules<'a>(&'a self, chain: &'a Chain) -> Vec<Cow<'a, Rule>> {
        self.look_at(&chain.rules.peek())
    }

    /// The rules of `slots`: borrowed where parsed before, else parsed for the caller.
    fn look_at<'a>(&'a self, slots: &Slots<'a>) -> Vec<Cow<'a, Rule>> {
        let look = |s: &'a RuleSlot| match s.get() {
            Some(r) => Cow::Borrowed(r),
            None => Cow::Owned(self.parse_slot(s)),
        };
        // KUBE-SERVICES of a large dump holds 100,000 rules: one core would parse them alone.
        const ALONE: usize = 4096;
        match slots {
            Slots::Kept(slots) if slots.len() > ALONE => slots.par_iter().map(look).collect(),
            Slots::Kept(slots) => slots.iter().map(look).collect(),
            Slots::Read(slots) if slots.len() > ALONE => slots
                .par_iter()
                .map(|s| Cow::Owned(self.parse_slot(s)))
                .collect(),
            Slots::Read(slots) => slots
                .iter()
                .map(|s| Cow::Owned(self.parse_slot(s)))
                .collect(),
        }
    }

    /// What `read` makes of each rule of a chain, in order, parsing on all cores the rules not
    /// parsed before and dropping each as soon as it is read.
    pub fn map_rules<T: Send>(
        &self,
        chain: &Chain,
        read: impl Fn(&Rule) -> Option<T> + Sync + Send,
    ) -> Vec<T> {
        chain
            .rules
            .peek()
            .par_iter()
            .with_min_len(1024)
            .filter_map(|s| match s.get() {
                Some(r) => read(r),
                None => read(&self.parse_slot(s)),
            })
            .collect()
    }

    /// Visits every chain of `table` with its rules, on all cores, a window of chains at a time in
    /// the order the source holds them. Rules are parsed for the visit and dropped after it, and
    /// each window's pages are handed back once it is done: a whole-dump pass holds a window of
    /// text and the rules of the chains in flight, not the 2 million rules of a large dump. Parse
    /// errors are recorded as [`Ruleset::rule`] records them. Results come in chain-id order.
    pub fn sweep<T, F>(&self, table: &Table, visit: F) -> Vec<T>
    where
        T: Send,
        F: Fn(&Visit<'_>) -> T + Sync,
    {
        let mut out = Vec::with_capacity(table.chains.len());
        self.sweep_into(table, visit, |_, results| out.extend(results));
        out
    }

    /// [`Ruleset::sweep`], handing each window's results to `sink` (with the id of the window's
    /// first chain) as soon as the window is done, rather than holding all of them.
    pub fn sweep_into<T, F>(
        &self,
        table: &Table,
        visit: F,
        mut sink: impl FnMut(ChainId, Vec<T>) + Send,
    ) where
        T: Send,
        F: Fn(&Visit<'_>) -> T + Sync,
    {
        // Rules per window: about 8 MB of kube-proxy rule text.
        const WINDOW_RULES: usize = 80_000;
        let first_rule = table
            .chains
            .iter()
            .filter_map(|c| c.rules.run_lines())
            .map(|(l, _)| l)
            .min();
        let mut at = 0;
        // A window's results go to the sink while the next window is read: the sink (adding
        // jumps to a graph, say) runs on one core, and the cores would otherwise wait for it.
        let mut done: Option<(ChainId, Vec<T>)> = None;
        while at < table.chains.len() {
            let mut end = at;
            let mut rules = 0;
            while end < table.chains.len() && (rules < WINDOW_RULES || end == at) {
                rules += table.chains[end].rules.count();
                end += 1;
            }
            let window = &table.chains[at..end];
            let first = at;
            let read = || {
                window
                    .par_iter()
                    .enumerate()
                    .with_min_len(256)
                    .map(|(i, chain)| {
                        let slots = chain.rules.peek();
                        let rules = self.look_at(&slots);
                        visit(&Visit {
                            id: ChainId((first + i) as u32),
                            chain,
                            slots: &slots,
                            rules: &rules,
                        })
                    })
                    .collect::<Vec<T>>()
            };
            let results = match done.take() {
                Some((id, previous)) => rayon::join(read, || sink(id, previous)).0,
                None => read(),
            };
            done = Some((ChainId(first as u32), results));
            // Everything from the table's first rule to this window's last: a visit may have
            // looked at chains elsewhere (a Service chain's endpoints), and their pages count too.
            let last = window
                .iter()
                .filter_map(|c| c.rules.run_lines())
                .map(|(l, n)| l + n - 1)
                .max();
            if let (Some(lo), Some(hi)) = (first_rule, last) {
                if hi >= lo {
                    self.source
                        .text
                        .release(self.source.line_start(lo)..self.source.line_range(hi).1);
                }
            }
            at = end;
        }
        if let Some((id, results)) = done {
            sink(id, results);
        }
    }

    /// Parses every rule now, on all cores, so that every error is known before a whole-dump command runs.
    pub fn parse_all(&self) {
        // Chains in large groups: a dump has hundreds of thousands of two-rule chains, and a task
        // per chain costs more than reading its run and parsing its rules.
        let chains: Vec<&Chain> = self.tables.iter().flat_map(|t| t.chains.iter()).collect();
        chains.par_iter().with_min_len(512).for_each(|&c| {
            for i in 0..c.rules.len() {
                self.rule(c, i);
            }
        });
    }

    /// Errors met so far while parsing rules on demand, in source order.
    pub fn take_errors(&self) -> Vec<ParseError> {
        let mut errs = std::mem::take(&mut *self.late_errors.lock().unwrap());
        errs.sort_by_key(|e| e.span.start);
        // A rule looked at by two passes that keep nothing is parsed, and reported, twice.
        errs.dedup_by(|a, b| a.span == b.span && a.kind == b.kind);
        errs
    }

    pub fn chain(&self, table: &str, chain: &str) -> Option<&Chain> {
        self.table(table)?.chain(chain)
    }

    pub fn rule_count(&self) -> usize {
        self.tables.iter().map(|t| t.rule_count()).sum()
    }

    pub fn chain_by_id(&self, table: &str, id: ChainId) -> Option<&Chain> {
        self.table(table).map(|t| t.get(id))
    }
}
