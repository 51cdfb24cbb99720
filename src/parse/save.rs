//! The `iptables-save` format: `*table`, `:CHAIN POLICY [p:b]`, `[p:b] -A CHAIN spec`, `COMMIT`.
//!
//! The file is indexed line by line; rule specifications are parsed only when a command needs them
//! (see [`crate::model::Ruleset::rule`]). Input with no `*table` header at all is a fragment — what
//! `iptables-save | grep …` prints — and is read leniently: tables are inferred and undeclared chains
//! created, with a note.

use super::fragment;
use super::rule_spec::parse_rule;
use super::value;
use crate::error::{ParseError, ParseErrorKind};
use crate::model::table::KNOWN_TABLES;
use crate::model::*;
use std::sync::Arc;

/// Parses a pending rule slot of a save-format source.
pub fn slot_parser(
    source: &Source,
    line: u32,
    span: Span,
    body_start: u32,
) -> Result<Rule, Vec<ParseError>> {
    let text = &source.text[body_start as usize..span.end as usize];
    parse_rule(text, body_start as usize, line, span)
}

/// Reads a run of consecutive `-A` lines recorded while indexing (see [`RuleList`]).
fn read_run(source: &Source, line: u32, len: u32) -> Vec<RuleSlot> {
    (line..line + len)
        .map(|no| {
            let (start, end) = source.line_range(no);
            let l = Line::trimmed(no, start, &source.text[start..end]);
            appended_slot(&l).expect("a run only holds lines indexed as `-A` rules")
        })
        .collect()
}

/// The slot of an `[p:b] -A CHAIN spec` line, or None when the line is not one.
fn appended_slot(l: &Line<'_>) -> Option<RuleSlot> {
    let t = l.text;
    let (counters, cmd) = match t.strip_prefix('[') {
        Some(_) => {
            let end = t.find(']').map(|i| i + 1).unwrap_or(t.len());
            (
                Some(value::counters(&t[..end]).ok()?),
                t[end..].trim_start(),
            )
        }
        None => (None, t),
    };
    let (verb, rest) = first_word(cmd);
    if verb != "-A" && verb != "--append" {
        return None;
    }
    let (_chain, body) = first_word(rest);
    Some(pending_slot(l, body, counters))
}

/// The slot of a rule whose specification is `body`, a part of line `l`.
fn pending_slot(l: &Line<'_>, body: &str, counters: Option<Counters>) -> RuleSlot {
    let body_start = if body.is_empty() {
        l.start + l.text.len()
    } else {
        l.sub(body).start as usize
    };
    RuleSlot::pending(l.no, l.span(), body_start as u32, counters)
}

/// A line with its 1-based number and its span (without the line ending and trailing blanks).
pub struct Line<'a> {
    pub no: u32,
    pub start: usize,
    pub text: &'a str,
}

impl<'a> Line<'a> {
    /// Line `no` of the text, `raw` starting at byte `start`: trimmed of blanks at both ends and of
    /// a `\r` before the line ending.
    fn trimmed(no: u32, start: usize, raw: &'a str) -> Line<'a> {
        let trimmed_start = raw.trim_start_matches([' ', '\t']);
        let lead = raw.len() - trimmed_start.len();
        Line {
            no,
            start: start + lead,
            text: trimmed_start.trim_end_matches([' ', '\t', '\r']),
        }
    }

    pub fn span(&self) -> Span {
        Span::new(self.start, self.start + self.text.len())
    }
    fn sub(&self, s: &str) -> Span {
        let off = s.as_ptr() as usize - self.text.as_ptr() as usize;
        Span::new(self.start + off, self.start + off + s.len())
    }
}

/// The lines of a text, trimmed of `\r` and blanks at both ends.
pub fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    let bytes = text.as_bytes();
    let mut start = 0usize;
    let mut no = 0u32;
    std::iter::from_fn(move || {
        if start > bytes.len() || (start == bytes.len() && start != 0) {
            return None;
        }
        let end = memchr::memchr(b'\n', &bytes[start..])
            .map(|i| start + i)
            .unwrap_or(bytes.len());
        no += 1;
        let line = Line::trimmed(no, start, &text[start..end]);
        start = end + 1;
        if end == bytes.len() {
            start = bytes.len() + 1;
        }
        Some(line)
    })
}

/// Whether the text looks like iptables-save output (or a grep of it).
pub fn looks_like_save(text: &str) -> bool {
    lines(text)
        .filter(|l| !l.text.is_empty() && !l.text.starts_with('#'))
        .take(50)
        .any(|l| {
            l.text.starts_with("*")
                || l.text.starts_with(":")
                || l.text.starts_with("-A ")
                || (l.text.starts_with('[') && l.text.contains("] -A "))
                || l.text == "COMMIT"
        })
}

/// The rule set being built, line by line; the script front end drives it too.
pub(super) struct State {
    pub(super) rs: Ruleset,
    errors: Vec<ParseError>,
    /// Index into `rs.tables` of the open table.
    open: Option<usize>,
    fragment: bool,
    fragment_rules: Vec<fragment::Item>,
    /// The table the last pasted command line named (`iptables -t nat -S | grep …`), in a fragment.
    prompt_table: Option<String>,
    /// An elision marker was met: the next rule's chain is cut too (at this line).
    cut_pending: Option<u32>,
    /// The lines of elision markers.
    elisions: Vec<u32>,
    skipped: Vec<u32>,
    /// The chain of the previous rule: dumps list a chain's rules together, so this saves a hash
    /// lookup on almost every line.
    last_chain: Option<(usize, ChainId)>,
    /// Parse rules as they come instead of indexing them (scripts: `-D` by spec and `-R` need them).
    pub(super) eager: bool,
    /// What every chain's run of `-A` lines is read from.
    runs: Arc<RunSource>,
    /// Index a large table's declarations on another thread ([`Deferred`]).
    pub(super) defer_index: bool,
    deferred: Option<Deferred>,
    /// The other thread's index did not agree with the chains read here: the input has to be
    /// read again without it (only input with errors in its declarations comes to this).
    pub(super) redo: bool,
}

/// A table whose block of declarations another thread is indexing while this one reads them.
struct Deferred {
    table: usize,
    /// Declarations of the block not read yet.
    remaining: usize,
    /// A declaration of the block was refused: the other thread's index counts it.
    failed: bool,
    index: std::thread::JoinHandle<Option<crate::model::table::ChainIndex>>,
}

/// Below this many declarations, a table is indexed as it is read.
const DEFER_INDEX_FROM: usize = 4096;

/// The index of a table whose built-in chains are `builtins` (ids from 0, in order) and whose
/// declarations are lines `first..first + n`: names read as [`State::declaration`] reads them.
fn index_block(
    source: &Source,
    table: &str,
    builtins: &[&str],
    first: u32,
    n: usize,
) -> Option<crate::model::table::ChainIndex> {
    let mut names: Vec<&str> = Vec::with_capacity(builtins.len() + n);
    names.extend_from_slice(builtins);
    for no in first..first + n as u32 {
        let (start, end) = source.line_range(no);
        let line = Line::trimmed(no, start, &source.text[start..end]);
        let (name, _) = first_word(line.text.strip_prefix(':')?);
        if !crate::model::table::is_builtin_chain(table, name) {
            names.push(name);
        }
    }
    crate::model::table::ChainIndex::of(&names)
}

impl State {
    pub(super) fn new(source: Arc<Source>, format: InputFormat, fragment: bool) -> State {
        let runs = Arc::new(RunSource {
            source: source.clone(),
            read: read_run,
        });
        let mut rs = Ruleset::new(source, format).with_parser(slot_parser);
        rs.fragment = fragment;
        State {
            rs,
            errors: Vec::new(),
            open: None,
            fragment,
            fragment_rules: Vec::new(),
            prompt_table: None,
            cut_pending: None,
            elisions: Vec::new(),
            skipped: Vec::new(),
            last_chain: None,
            eager: false,
            runs,
            defer_index: false,
            deferred: None,
            redo: false,
        }
    }

    /// Waits for the index of a table whose declarations another thread indexed, and installs
    /// it; sets `redo` when it does not agree with the chains read here.
    pub(super) fn settle_index(&mut self) {
        let Some(d) = self.deferred.take() else {
            return;
        };
        let index = d.index.join().ok().flatten();
        let installed = match index {
            Some(index) if !d.failed => self.rs.tables[d.table].install_index(index),
            _ => false,
        };
        self.redo |= !installed;
    }

    pub(super) fn errors(&mut self) -> Vec<ParseError> {
        std::mem::take(&mut self.errors)
    }

    /// Makes `name` the table later lines apply to, creating it (with its built-in chains).
    pub(super) fn select_table(&mut self, name: &str, span: Span) {
        if !KNOWN_TABLES.contains(&name) {
            self.err(span, ParseErrorKind::UnknownTable(name.to_string()));
        }
        let idx = match self.rs.tables.iter().position(|t| &*t.name == name) {
            Some(i) => i,
            None => {
                let mut t = Table::new(name, None);
                for b in crate::model::table::builtin_chains(name) {
                    t.ensure(b, ChainOrigin::Declared);
                }
                t.committed = true;
                self.rs.tables.push(t);
                self.rs.tables.len() - 1
            }
        };
        self.open = Some(idx);
    }

    pub(super) fn skip(&mut self, line: u32) {
        self.skipped.push(line);
    }

    /// One note for the paste's elision markers and the chains they cut.
    pub(super) fn finish_elisions(&mut self) {
        if self.elisions.is_empty() {
            return;
        }
        let mut chains: Vec<&str> = self.rs.cuts.iter().map(|c| c.chain.as_str()).collect();
        chains.dedup();
        let lines: Vec<String> = self
            .elisions
            .iter()
            .take(8)
            .map(|n| n.to_string())
            .collect();
        let n = self.elisions.len();
        let msg = format!(
            "the paste elides rules ({n} marker{} such as `...` or grep's `--`, line {}): {} may hold more rules than shown, and answers through {} are approximate",
            if n == 1 { "" } else { "s" },
            lines.join(", "),
            if chains.is_empty() {
                "chains".to_string()
            } else {
                chains
                    .iter()
                    .take(6)
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            if chains.len() == 1 { "it" } else { "them" }
        );
        self.rs.note(msg, None);
        self.elisions.clear();
    }

    /// One note for every line that was skipped as not being rules.
    pub(super) fn finish_skipped(&mut self, what: &str) {
        if self.skipped.is_empty() {
            return;
        }
        let lines: Vec<String> = self.skipped.iter().take(8).map(|n| n.to_string()).collect();
        let more = if self.skipped.len() > 8 { ", …" } else { "" };
        let one = self.skipped.len() == 1;
        let what = if one {
            what.replacen("are ", "is ", 1)
        } else {
            what.to_string()
        };
        self.rs.note(
            format!(
                "skipped {} line{} that {} (line {}{more})",
                self.skipped.len(),
                if one { "" } else { "s" },
                what,
                lines.join(", ")
            ),
            None,
        );
        self.skipped.clear();
    }
}

pub fn parse(source: Arc<Source>) -> Result<Ruleset, Vec<ParseError>> {
    parse_finding_runs(source, RunsFound::WhenReady)
}

/// When [`parse`] uses the runs of lines another thread finds.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunsFound {
    /// Once they are found; lines met before are read one by one.
    WhenReady,
    /// From the first rule on, waiting for them: the same answer, for tests to compare.
    Wait,
    /// Never: every line is read one by one.
    Never,
}

#[doc(hidden)]
pub fn parse_finding_runs(
    source: Arc<Source>,
    when: RunsFound,
) -> Result<Ruleset, Vec<ParseError>> {
    parse_indexing(source, when, IndexBlocks::Aside)
}

/// How [`parse`] indexes a large table's block of declarations.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexBlocks {
    /// On another thread while this one reads them (read again in line when it disagrees).
    Aside,
    /// As each is read: the same answer, for tests to compare.
    InLine,
}

#[doc(hidden)]
pub fn parse_indexing(
    source: Arc<Source>,
    when: RunsFound,
    blocks: IndexBlocks,
) -> Result<Ruleset, Vec<ParseError>> {
    let src = source.clone();
    let text = &src.text;
    // A paste is a whole dump when any line opens a table, whatever is pasted around it.
    let fragment = !lines(text).any(|l| {
        l.text
            .strip_prefix('*')
            .is_some_and(|t| KNOWN_TABLES.contains(&t.trim()))
    });
    let mut st = State::new(source, InputFormat::Save, fragment);
    st.defer_index = blocks == IndexBlocks::Aside;
    std::thread::scope(|scope| {
        // While this thread reads the declarations, another finds the runs of lines that append
        // to one chain: of each run, this thread then reads the first line only.
        let mut finding = (when != RunsFound::Never).then(|| scope.spawn(|| find_runs(&src)));
        let mut runs = None;
        let mut next_run = 0;
        let mut released = 0;
        let mut lines = src.line_ranges();
        while let Some((no, start, end)) = lines.next() {
            if start - released > crate::model::source::WINDOW {
                // Rules are read again only when a command needs them: hand the pages back.
                text.release(released..start);
                released = start;
            }
            let line = Line::trimmed(no, start, &text[start..end]);
            if line.text.is_empty() || line.text.starts_with('#') {
                continue;
            }
            if line.text.starts_with(':') {
                // Chains are named by their declarations' text, and every lookup by name reads
                // it: declarations stay resident.
                released = end;
            }
            st.line(&line);
            if st.errors.len() > super::input::MAX_ERRORS || st.redo {
                break;
            }
            if !line.text.starts_with("-A ") {
                continue;
            }
            // Until they are found, lines are read one by one (the other thread may still be
            // on its way: a dump's first rules come before the bulk of its declarations).
            if runs.is_none()
                && finding
                    .as_ref()
                    .is_some_and(|f| when == RunsFound::Wait || f.is_finished())
            {
                runs = finding.take().and_then(|f| f.join().ok());
            }
            let Some(runs) = &runs else {
                continue;
            };
            while runs.get(next_run).is_some_and(|r| r.0 < no) {
                next_run += 1;
            }
            if let Some(&(first, n)) = runs.get(next_run) {
                if first == no && st.extend_last_run(no + 1, n - 1) {
                    lines.nth(n as usize - 2);
                }
            }
        }
    });
    st.settle_index();
    if st.redo {
        return parse_indexing(src, when, IndexBlocks::InLine);
    }
    if let Some(i) = st.open {
        let t = &st.rs.tables[i];
        st.errors.push(ParseError::new(
            t.span.unwrap_or(Span::NONE),
            ParseErrorKind::MissingCommit(t.name.to_string()),
        ));
    }
    if st.fragment {
        let rules = std::mem::take(&mut st.fragment_rules);
        fragment::place(&mut st.rs, rules);
    }
    // A fragment where no line was iptables-save text is not an empty rule set: the form is wrong.
    if st.rs.tables.is_empty() && st.errors.is_empty() {
        if let Some(&first) = st.skipped.first() {
            let start = src.line_start(first);
            let end =
                memchr::memchr(b'\n', &text.as_bytes()[start..]).map_or(text.len(), |i| start + i);
            return Err(vec![ParseError::new(
                Span::new(start, end.min(start + 200)),
                ParseErrorKind::NotSave,
            )]);
        }
    }
    st.finish_skipped("are not iptables-save text");
    st.finish_elisions();
    st.rs.family = detect_family(&st.rs);
    if st.errors.is_empty() {
        Ok(st.rs)
    } else {
        Err(st.errors)
    }
}

/// Runs of two or more consecutive `-A CHAIN` lines of one chain, as (first line, lines), in
/// order. Reads the text a window at a time and hands each window's pages back.
fn find_runs(source: &Source) -> Vec<(u32, u32)> {
    let text = &source.text;
    let mut runs = Vec::new();
    let mut run: Option<(&str, u32, u32)> = None;
    let mut released = 0;
    for (no, start, end) in source.line_ranges() {
        if start - released > crate::model::source::WINDOW {
            text.release(released..start);
            released = start;
        }
        let line = Line::trimmed(no, start, &text[start..end]);
        let chain = line.text.strip_prefix("-A ").map(|rest| first_word(rest).0);
        match (chain, &mut run) {
            (Some(c), Some((name, first, n))) if c == *name && *first + *n == no => *n += 1,
            _ => {
                if let Some((_, first, n)) = run.take().filter(|r| r.2 > 1) {
                    runs.push((first, n));
                }
                run = chain.filter(|c| !c.is_empty()).map(|c| (c, no, 1));
            }
        }
    }
    if let Some((_, first, n)) = run.filter(|r| r.2 > 1) {
        runs.push((first, n));
    }
    runs
}

/// An elision marker a person leaves in a paste: `...`, `…`, `[...]`, `<snip>`, grep's `--` group
/// separator.
pub fn is_elision(t: &str) -> bool {
    let x = t.trim();
    x.starts_with("...")
        || x.starts_with('…')
        || x == "--"
        || x == "---"
        || x.starts_with("[...")
        || x.starts_with("[…")
        || x.starts_with("(...")
        || x.starts_with("<...")
        || x.eq_ignore_ascii_case("<snip>")
        || x.eq_ignore_ascii_case("[snip]")
        || x.eq_ignore_ascii_case("(snip)")
        || x.eq_ignore_ascii_case("snip")
}

/// Lines a person pastes around a dump: shell prompts and the commands that printed it.
pub fn is_shell_noise(t: &str) -> bool {
    let t = t.trim_start_matches(['$', '>', ' ']);
    t.starts_with('[') && t.contains("]#") && !t.contains("] -A ")
        || t.starts_with("sudo ")
        || t.starts_with("iptables")
        || t.starts_with("ip6tables")
        || t.starts_with("```")
        || t.starts_with("➜")
}

fn detect_family(rs: &Ruleset) -> Family {
    // A few addresses decide: kube-proxy writes one family per dump.
    let text = &rs.source.text;
    for line in lines(text).take(5000) {
        for key in [" -d ", " -s ", " --to-destination "] {
            if let Some(i) = line.text.find(key) {
                let v = line.text[i + key.len()..].split(' ').next().unwrap_or("");
                if v.contains(':') && !v.starts_with('"') && v.matches(':').count() > 1 {
                    return Family::Ipv6;
                }
                if v.contains('.') {
                    return Family::Ipv4;
                }
            }
        }
    }
    Family::Ipv4
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blanks(s: &str) -> &str {
    let n = s.bytes().take_while(|&b| is_blank(b)).count();
    &s[n..]
}

/// The first blank-separated word and the rest. Runs once or twice per line of a dump that can
/// hold millions, so it works on bytes.
fn first_word(s: &str) -> (&str, &str) {
    let s = skip_blanks(s);
    match memchr::memchr2(b' ', b'\t', s.as_bytes()) {
        Some(i) => (&s[..i], skip_blanks(&s[i..])),
        None => (s, ""),
    }
}

impl State {
    fn err(&mut self, span: Span, kind: ParseErrorKind) {
        self.errors.push(ParseError::new(span, kind));
    }

    pub(super) fn line(&mut self, l: &Line<'_>) {
        let t = l.text;
        if let Some(d) = &self.deferred {
            // Only the block's declarations and `-A` lines go on without the index (`-A` lines
            // find their chain in declaration order, and wait for it otherwise).
            let in_block = d.remaining > 0 && t.starts_with(':');
            if !in_block && !t.starts_with("-A ") {
                self.settle_index();
            }
        }
        // Nearly every line of a large dump is a plain `-A CHAIN …`, most often continuing the
        // previous line's chain.
        if let Some(rest) = t.strip_prefix("-A ") {
            if self.cut_pending.is_none() && self.continues_run(l, rest) {
                return;
            }
            return self.rule(l, "-A", rest, None);
        }
        if let Some(name) = t.strip_prefix('*') {
            return self.table(l, name.trim());
        }
        if t == "COMMIT" {
            match self.open.take() {
                Some(i) => self.rs.tables[i].committed = true,
                None if self.fragment => {}
                None => self.err(l.span(), ParseErrorKind::StrayCommit),
            }
            return;
        }
        if let Some(decl) = t.strip_prefix(':') {
            return self.declaration(l, decl);
        }
        if is_elision(t) {
            return self.elide(l);
        }
        let (counters, cmd) = if t.starts_with('[') {
            let end = t.find(']').map(|i| i + 1).unwrap_or(t.len());
            match value::counters(&t[..end]) {
                Ok(c) => (Some(c), t[end..].trim_start()),
                Err(e) => {
                    if self.fragment && is_shell_noise(t) {
                        self.prompt(t);
                        self.skipped.push(l.no);
                    } else {
                        self.err(l.sub(&t[..end]), e);
                    }
                    return;
                }
            }
        } else {
            (None, t)
        };
        let (verb, rest) = first_word(cmd);
        match verb {
            "-A" | "--append" | "-I" | "--insert" => self.rule(l, verb, rest, counters),
            "-R" | "--replace" if self.eager => self.rule(l, verb, rest, counters),
            "-Z" | "--zero" if self.eager => {}
            "-N" | "--new-chain" | "-X" | "--delete-chain" | "-F" | "--flush" | "-P"
            | "--policy" | "-D" | "--delete"
                if !self.fragment || self.open.is_some() =>
            {
                self.command(l, verb, rest)
            }
            // `iptables -S` declares chains and built-in policies around its `-A` lines.
            "-N" | "--new-chain" | "-P" | "--policy" if self.fragment => {
                let (chain, arg) = first_word(rest);
                let policy = match first_word(arg).0 {
                    "ACCEPT" => Some(Policy::Accept),
                    "DROP" => Some(Policy::Drop),
                    _ => None,
                };
                if chain.is_empty() || (verb.contains('P') && policy.is_none()) {
                    self.skipped.push(l.no);
                } else {
                    self.fragment_rules.push(fragment::Item::Chain {
                        chain: chain.to_string(),
                        policy,
                        table: self.prompt_table.clone(),
                    });
                }
            }
            _ if self.fragment => {
                self.prompt(t);
                self.skipped.push(l.no)
            }
            // Before the first table and between tables: a prompt, a command, text around the dump.
            _ if self.open.is_none() => self.skipped.push(l.no),
            _ => {
                let shown: String = t.chars().take(60).collect();
                self.err(l.span(), ParseErrorKind::UnknownLine(shown))
            }
        }
    }

    /// A pasted command line that names a table (`iptables -t nat -S | grep …`): the fragment's
    /// rules after it belong to that table.
    fn prompt(&mut self, t: &str) {
        if let Some(named) = super::prompt::table_of(t) {
            self.prompt_table = named.filter(|n| KNOWN_TABLES.contains(&n.as_str()));
        }
    }

    /// An elision marker (`...`, grep's `--`): the chain of the rule before it and the chain of the
    /// rule after it hold more rules than the paste shows.
    fn elide(&mut self, l: &Line<'_>) {
        let before = if self.fragment && self.open.is_none() {
            self.fragment_rules.iter().rev().find_map(|i| match i {
                fragment::Item::Rule { chain, table, .. } => Some((table.clone(), chain.clone())),
                _ => None,
            })
        } else {
            self.last_chain.map(|(ti, id)| {
                let t = &self.rs.tables[ti];
                (Some(t.name.to_string()), t.get(id).name.to_string())
            })
        };
        if let Some((table, chain)) = before {
            let at = self.shown_rules(&chain);
            self.rs.cuts.push(Cut {
                table,
                chain,
                at,
                line: l.no,
            });
        }
        self.cut_pending = Some(l.no);
        self.elisions.push(l.no);
    }

    /// How many rules of `chain` (of the open table, or of a fragment) were read so far.
    fn shown_rules(&self, chain: &str) -> u32 {
        match self.open {
            Some(ti) => {
                let t = &self.rs.tables[ti];
                t.id(chain).map_or(0, |id| t.get(id).rules.count() as u32)
            }
            None => self
                .fragment_rules
                .iter()
                .filter(|i| matches!(i, fragment::Item::Rule { chain: c, .. } if c == chain))
                .count() as u32,
        }
    }

    /// Adds the `n` lines from `line` on to the run of the last rule's chain, when that run ends
    /// just before `line`; returns whether it did.
    fn extend_last_run(&mut self, line: u32, n: u32) -> bool {
        match (self.last_chain, self.open) {
            (Some((ti, id)), Some(open)) if ti == open && !self.eager => {
                self.rs.tables[ti].get_mut(id).rules.extend_run_by(line, n)
            }
            _ => false,
        }
    }

    /// Adds an `-A` line to the run of the previous line's chain when it continues it; the
    /// general path ([`State::rule`]) does the same with more checks.
    fn continues_run(&mut self, l: &Line<'_>, rest: &str) -> bool {
        let (Some((ti, id)), Some(open), false) = (self.last_chain, self.open, self.eager) else {
            return false;
        };
        if ti != open {
            return false;
        }
        let c = self.rs.tables[ti].get_mut(id);
        // Compare with the name it should be rather than search for where the name ends.
        let name = c.name.as_bytes();
        let rest = rest.as_bytes();
        rest.starts_with(name)
            && rest.get(name.len()).is_none_or(|&b| is_blank(b))
            && c.rules.extend_run(&self.runs, l.no)
    }

    fn table(&mut self, l: &Line<'_>, name: &str) {
        if let Some(i) = self.open.take() {
            let t = &self.rs.tables[i];
            let e = ParseError::new(
                t.span.unwrap_or(Span::NONE),
                ParseErrorKind::MissingCommit(t.name.to_string()),
            )
            .with_cause(l.span(), "next table starts here");
            self.errors.push(e);
        }
        if !KNOWN_TABLES.contains(&name) {
            self.err(l.span(), ParseErrorKind::UnknownTable(name.to_string()));
        }
        let span = Some(l.span());
        let idx = match self.rs.tables.iter().position(|t| &*t.name == name) {
            Some(i) => {
                self.rs.tables[i].span = span;
                i
            }
            None => {
                let mut t = Table::new(name, span);
                for b in crate::model::table::builtin_chains(name) {
                    t.ensure(b, ChainOrigin::Declared);
                }
                self.rs.tables.push(t);
                self.rs.tables.len() - 1
            }
        };
        self.open = Some(idx);
        // iptables-save declares every chain right after `*table`: count them so the chain list
        // and its index are sized once (growing a hundred-megabyte list by copying costs more
        // than reading the declarations twice).
        let text = self.rs.source.text.as_bytes();
        let mut at = (l.start + l.text.len()).min(text.len());
        let mut declared = 0usize;
        while let Some(nl) = memchr::memchr(b'\n', &text[at..]) {
            at += nl + 1;
            if text.get(at) != Some(&b':') {
                break;
            }
            declared += 1;
        }
        let table = &mut self.rs.tables[idx];
        let builtins = crate::model::table::builtin_chains(name);
        // A fresh table's block of declarations: another thread indexes it meanwhile.
        if self.defer_index
            && !self.eager
            && self.deferred.is_none()
            && declared >= DEFER_INDEX_FROM
            && table.chains.len() == builtins.len()
        {
            table.reserve_chains(declared);
            let source = self.rs.source.clone();
            let (name, first) = (name.to_string(), l.no + 1);
            let index =
                std::thread::spawn(move || index_block(&source, &name, builtins, first, declared));
            self.deferred = Some(Deferred {
                table: idx,
                remaining: declared,
                failed: false,
                index,
            });
        } else {
            table.reserve(declared);
        }
    }

    fn current_table(&mut self, l: &Line<'_>, what: &str) -> Option<usize> {
        if self.open.is_none() && !self.fragment {
            self.err(l.span(), ParseErrorKind::OutsideTable(what.to_string()));
        }
        self.open
    }

    fn declaration(&mut self, l: &Line<'_>, decl: &str) {
        let Some(ti) = self.current_table(l, ":CHAIN") else {
            if self.fragment {
                self.skipped.push(l.no);
            }
            return;
        };
        let deferring = match &mut self.deferred {
            Some(d) if d.table == ti && d.remaining > 0 => {
                d.remaining -= 1;
                true
            }
            _ => false,
        };
        let errors = self.errors.len();
        self.declare(l, decl, ti, deferring);
        if let Some(d) = self.deferred.as_mut().filter(|_| deferring) {
            d.failed |= self.errors.len() > errors;
        }
    }

    /// Reads a declaration of table `ti`; `deferring`: another thread indexes it.
    fn declare(&mut self, l: &Line<'_>, decl: &str, ti: usize, deferring: bool) {
        let (name, rest) = first_word(decl);
        let (policy, rest) = first_word(rest);
        if name.is_empty() || policy.is_empty() {
            return self.err(l.span(), ParseErrorKind::BadChainDecl(l.text.to_string()));
        }
        // Zero counters read as none: every user chain of a dump says `[0:0]`, and 650,000 boxed
        // zeros would be 10 MB that nothing reads.
        let counters = if rest.is_empty() {
            None
        } else {
            match value::counters(rest) {
                Ok(c) => (c.packets != 0 || c.bytes != 0).then_some(c),
                Err(e) => return self.err(l.sub(rest), e),
            }
        };
        let table = &mut self.rs.tables[ti];
        let builtin = crate::model::table::is_builtin_chain(&table.name, name);
        let policy_v = match (builtin, policy) {
            (true, "ACCEPT") => Some(Policy::Accept),
            (true, "DROP") => Some(Policy::Drop),
            // iptables-restore reads `-` on a built-in chain as "leave the policy as it is": a
            // restore payload, which says nothing of the node's policy (the engine takes ACCEPT,
            // the kernel's default) and does not show the whole table.
            (true, "-") => None,
            (false, "-") => None,
            _ => return self.err(l.sub(policy), ParseErrorKind::BadPolicy(policy.to_string())),
        };
        if builtin {
            let id = table.ensure(name, ChainOrigin::Declared);
            let c = table.get_mut(id);
            if let Some(prev) = c.decl {
                let e = ParseError::new(l.span(), ParseErrorKind::DuplicateChain(name.into()))
                    .with_cause(prev, "first declared here");
                return self.errors.push(e);
            }
            c.policy = policy_v;
            c.counters = counters.map(Box::new);
            c.decl = Some(l.span());
            return;
        }
        let mut chain = Chain::in_source(
            &self.rs.source,
            l.sub(name),
            ChainOrigin::Declared,
            &table.name,
        );
        chain.counters = counters.map(Box::new);
        chain.decl = Some(l.span());
        if deferring {
            table.push_unindexed(chain);
        } else if table.declare(chain).is_none() {
            let prev = table.chain(name).and_then(|c| c.decl).unwrap_or(Span::NONE);
            let e = ParseError::new(l.span(), ParseErrorKind::DuplicateChain(name.into()))
                .with_cause(prev, "first declared here");
            self.errors.push(e);
        }
    }

    fn rule(&mut self, l: &Line<'_>, verb: &str, rest: &str, counters: Option<Counters>) {
        if let Some(line) = self.cut_pending.take() {
            let chain = first_word(rest).0.to_string();
            let table = match self.open {
                Some(ti) => Some(self.rs.tables[ti].name.to_string()),
                None => self.prompt_table.clone(),
            };
            let at = self.shown_rules(&chain);
            if !self
                .rs
                .cuts
                .iter()
                .any(|c| c.chain == chain && c.line == line)
            {
                self.rs.cuts.push(Cut {
                    table,
                    chain,
                    at,
                    line,
                });
            }
        }
        let (chain, mut body) = first_word(rest);
        if chain.is_empty() {
            return self.err(l.span(), ParseErrorKind::MissingValue(verb.to_string()));
        }
        let mut position = None;
        let mut replace = None;
        if verb == "-R" || verb == "--replace" {
            let (n, b) = first_word(body);
            match n.parse::<usize>() {
                Ok(n) if n >= 1 => replace = Some(n - 1),
                _ => {
                    return self.err(
                        l.sub(n),
                        ParseErrorKind::Other(format!("`-R` needs a rule number, not `{n}`")),
                    )
                }
            }
            body = b;
        }
        if verb == "-I" || verb == "--insert" {
            let (n, b) = first_word(body);
            if let Ok(n) = n.parse::<usize>() {
                position = Some(n.saturating_sub(1));
                body = b;
            } else {
                position = Some(0);
            }
        }
        // An empty body may be no part of the line (`first_word` answers a literal ""): its
        // start is the line's end.
        let body_start = if body.is_empty() {
            l.start + l.text.len()
        } else {
            l.sub(body).start as usize
        };
        let Some(ti) = self.current_table(l, verb) else {
            // A fragment: parse now, the table is decided once every rule is known.
            match parse_rule(body, body_start, l.no, l.span()) {
                Ok(mut r) => {
                    r.counters = counters;
                    self.fragment_rules.push(fragment::Item::Rule {
                        chain: chain.to_string(),
                        rule: r,
                        table: self.prompt_table.clone(),
                    });
                }
                Err(errs) => self.errors.extend(errs),
            }
            return;
        };
        let table = &mut self.rs.tables[ti];
        // The previous line's chain, or one of the next few declared: iptables-save writes rules
        // chain by chain in declaration order, so the hash lookup is rarely needed.
        let cached = self
            .last_chain
            .filter(|&(t, _)| t == ti)
            .and_then(|(_, id)| {
                (id.0..id.0.saturating_add(4))
                    .take_while(|&i| (i as usize) < table.chains.len())
                    .map(ChainId)
                    .find(|&i| *table.get(i).name == *chain)
            });
        // Built-in chains are in the index from the start: only a user chain waits for the rest.
        if cached.is_none()
            && self.deferred.as_ref().is_some_and(|d| d.table == ti)
            && !crate::model::table::is_builtin_chain(&table.name, chain)
        {
            self.settle_index();
            if self.redo {
                return;
            }
        }
        let table = &mut self.rs.tables[ti];
        let id = match cached.or_else(|| table.id(chain)) {
            Some(id) => id,
            None => {
                let span = l.sub(chain);
                let id = table.ensure(chain, ChainOrigin::Implicit);
                if !self.fragment {
                    self.err(span, ParseErrorKind::UndeclaredChain(chain.to_string()));
                }
                id
            }
        };
        self.last_chain = Some((ti, id));
        let appended = position.is_none() && replace.is_none();
        if appended && !self.eager {
            // Consecutive lines of one chain stay a run of text until something reads them.
            let chain_ref = self.rs.tables[ti].get_mut(id);
            if chain_ref.rules.extend_run(&self.runs, l.no) {
                return;
            }
        }
        let slot = if self.eager {
            match parse_rule(body, body_start, l.no, l.span()) {
                Ok(mut r) => {
                    r.counters = counters;
                    RuleSlot::ready(r)
                }
                Err(errs) => return self.errors.extend(errs),
            }
        } else {
            pending_slot(l, body, counters)
        };
        let chain_ref = self.rs.tables[ti].get_mut(id);
        if appended {
            return chain_ref.push_rule(slot);
        }
        let rules = &mut *chain_ref.rules;
        match (position, replace) {
            (_, Some(i)) if i < rules.len() => rules[i] = slot,
            (_, Some(i)) => self.err(
                l.span(),
                ParseErrorKind::Other(format!("no rule {} in `{chain}` to replace", i + 1)),
            ),
            (Some(p), None) => rules.insert(p.min(rules.len()), slot),
            (None, None) => rules.push(slot),
        }
    }

    fn command(&mut self, l: &Line<'_>, verb: &str, rest: &str) {
        // -X renumbers chains.
        self.last_chain = None;
        let Some(ti) = self.current_table(l, verb) else {
            return;
        };
        let (chain, arg) = first_word(rest);
        let table = &mut self.rs.tables[ti];
        match verb {
            // As iptables-restore says: `option "-N" requires an argument`.
            "-N" | "--new-chain" if chain.is_empty() => {
                self.err(l.span(), ParseErrorKind::MissingValue(verb.to_string()))
            }
            "-N" | "--new-chain" => {
                let c = Chain::new(chain, ChainOrigin::Declared, &table.name);
                if table.declare(c).is_none() {
                    self.err(l.sub(chain), ParseErrorKind::DuplicateChain(chain.into()));
                }
            }
            "-X" | "--delete-chain" => {
                if chain.is_empty() {
                    table.chains.retain(|c| c.builtin);
                    let names: Vec<ChainName> =
                        table.chains.iter().map(|c| c.name.clone()).collect();
                    *table = {
                        let mut t = Table::new(&table.name.clone(), table.span);
                        t.committed = table.committed;
                        for n in names {
                            t.ensure(&n, ChainOrigin::Declared);
                        }
                        t
                    };
                } else if !table.remove_chain(chain) {
                    self.err(
                        l.sub(chain),
                        ParseErrorKind::Other(format!("no chain `{chain}` to delete")),
                    );
                }
            }
            "-F" | "--flush" => {
                if chain.is_empty() {
                    table.chains.iter_mut().for_each(|c| c.rules.clear());
                } else if let Some(id) = table.id(chain) {
                    table.get_mut(id).rules.clear();
                }
            }
            "-P" | "--policy" => {
                let (p, _) = first_word(arg);
                let pol = match p {
                    "ACCEPT" => Policy::Accept,
                    "DROP" => Policy::Drop,
                    _ => return self.err(l.sub(p), ParseErrorKind::BadPolicy(p.into())),
                };
                match table.id(chain) {
                    Some(id) if table.get(id).builtin => table.get_mut(id).policy = Some(pol),
                    _ => self.err(l.sub(chain), ParseErrorKind::BadPolicy(p.into())),
                }
            }
            _ => {
                // -D CHAIN n | -D CHAIN spec
                let Some(id) = table.id(chain) else {
                    return self.err(l.sub(chain), ParseErrorKind::UndeclaredChain(chain.into()));
                };
                if let Ok(n) = arg.trim().parse::<usize>() {
                    let rules = &mut self.rs.tables[ti].get_mut(id).rules;
                    if n >= 1 && n <= rules.len() {
                        rules.remove(n - 1);
                    } else {
                        self.err(
                            l.sub(arg),
                            ParseErrorKind::Other(format!("no rule {n} in `{chain}`")),
                        );
                    }
                    return;
                }
                let body_start = l.sub(arg).start as usize;
                let want = match parse_rule(arg, body_start, l.no, l.span()) {
                    Ok(r) => r,
                    Err(e) => return self.errors.extend(e),
                };
                let rs = &self.rs;
                let c = rs.tables[ti].get(id);
                let pos = (0..c.rules.len())
                    .find(|&i| crate::model::print::same_rule(rs.rule(c, i), &want));
                match pos {
                    Some(i) => {
                        self.rs.tables[ti].get_mut(id).rules.remove(i);
                    }
                    None => self.err(
                        l.sub(arg),
                        ParseErrorKind::Other(format!("no such rule in `{chain}` to delete")),
                    ),
                }
            }
        }
    }
}
