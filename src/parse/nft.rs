//! nftables text: what `nft list ruleset` prints (tables as blocks, with or without `nft -a`'s
//! `# handle N`), and the `add table/chain/rule/set/map/element …` transaction form kube-proxy
//! writes (and `nft -f` reads).
//!
//! Rules become the model's rules: `ip saddr 10.0.0.0/8` a source match, `tcp dport 80` a
//! protocol and a port, `ct state new` a conntrack state, `fib saddr type local` an address
//! type, `meta mark & 0x4000 == 0` a mark match, set lookups and verdict maps the model's
//! nftables criteria and targets. Statements kptrace does not model are kept as criteria that
//! may match, never refused.

use crate::error::{ParseError, ParseErrorKind};
use crate::model::criterion::{AddrKind, CtState, Dir, Iface, OtherMatch, PortRange};
use crate::model::nft::{
    priority_name, Atom, BaseChain, Element, Field, Hook, Lookup, MapVerdict, NamedSet, NftTable,
    SetRef, Vmap, VmapKey,
};
use crate::model::rule_list::{RuleList, RunSource};
use crate::model::target::{MarkForm, MarkOp, NatRange};
use crate::model::{
    Chain, ChainId, ChainOrigin, Criterion, Family, InputFormat, Match, Policy, Protocol, Rule,
    RuleSlot, Ruleset, Source, Span, Table, Target, TargetKind,
};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Whether the text is nftables: a `table FAMILY NAME {` block or `add table|chain|rule …` lines.
pub fn looks_like(text: &str) -> bool {
    for l in text.lines().take(200) {
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        // iptables' forms start otherwise: `*nat`, `:CHAIN`, `-A`, `Chain X (policy …)`.
        if t.starts_with('*')
            || t.starts_with(':')
            || t.starts_with("-A ")
            || t.starts_with("Chain ")
        {
            return false;
        }
        let mut w = t.split_whitespace();
        let first = w.next().unwrap_or("");
        let second = w.next().unwrap_or("");
        // A paste may start inside a table: `chain NAME {`.
        if matches!(first, "table" | "chain" | "set" | "map") && t.ends_with('{') {
            return true;
        }
        if matches!(
            first,
            "add" | "insert" | "create" | "flush" | "delete" | "destroy"
        ) && matches!(
            second,
            "table" | "chain" | "rule" | "set" | "map" | "element" | "ruleset"
        ) {
            return true;
        }
        // Lines a table's block holds before its first chain.
        if first == "comment" || first == "flags" {
            continue;
        }
        return false;
    }
    false
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum K {
    Word,
    Str,
    LBrace,
    RBrace,
    Semi,
    Comma,
    Newline,
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    k: K,
    start: u32,
    end: u32,
}

/// The token at or after byte `i` (blanks, `\`-newlines and `#` comments skipped) and the byte
/// after it; None at the end of the text.
fn next_token(b: &[u8], mut i: usize) -> Result<Option<(Tok, usize)>, ParseError> {
    let tok = |k, s: usize, e: usize| Tok {
        k,
        start: s as u32,
        end: e as u32,
    };
    while i < b.len() {
        let c = b[i];
        let one = |k| Ok(Some((tok(k, i, i + 1), i + 1)));
        match c {
            b'\n' => return one(K::Newline),
            b' ' | b'\t' | b'\r' => i += 1,
            b'\\' if b.get(i + 1) == Some(&b'\n') => i += 2,
            b'#' => {
                i = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n);
            }
            b'{' => return one(K::LBrace),
            b'}' => return one(K::RBrace),
            b';' => return one(K::Semi),
            b',' => return one(K::Comma),
            b'"' => {
                let s = i;
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= b.len() || b[i] != b'"' {
                    return Err(ParseError::new(
                        Span::new(s, s + 1),
                        ParseErrorKind::UnterminatedQuote,
                    ));
                }
                return Ok(Some((tok(K::Str, s, i + 1), i + 1)));
            }
            _ => {
                let s = i;
                while i < b.len()
                    && !matches!(
                        b[i],
                        b' ' | b'\t' | b'\r' | b'\n' | b'{' | b'}' | b';' | b',' | b'"'
                    )
                {
                    i += 1;
                }
                return Ok(Some((tok(K::Word, s, i), i)));
            }
        }
    }
    Ok(None)
}

/// Every token of `b[from..to]`, with offsets into `b`.
fn lex_range(b: &[u8], from: usize, to: usize) -> Result<Vec<Tok>, ParseError> {
    let mut out = Vec::new();
    let mut i = from;
    while let Some((t, next)) = next_token(&b[..to], i)? {
        out.push(t);
        i = next;
    }
    Ok(out)
}

/// A table while it is read: the model's table, and its nftables objects.
struct TableB {
    table: Table,
    nft: NftTable,
    /// Chains a `delete chain` removed (until declared again), taken out when the table is done.
    deleted: std::collections::HashSet<ChainId>,
    /// Base chains' `policy` statements.
    policies: HashMap<ChainId, Policy>,
}

struct P<'s> {
    src: &'s Source,
    /// The source as chains name it; None when only one rule is read (see [`slot_parser`]).
    arc: Option<&'s Arc<Source>>,
    text: &'s str,
    /// Tokens read ahead of the statement being parsed; emptied between statements, so a large
    /// rule set is never held as tokens.
    toks: Vec<Tok>,
    i: usize,
    /// Where the next token is lexed from.
    pos: usize,
    /// A line the last fast lookup found, and where it starts: statements come in text order.
    line_hint: (u32, usize),
    runs: Option<Arc<RunSource>>,
    tables: Vec<TableB>,
    errors: Vec<ParseError>,
    /// What a paste left out: cut marks (`...`) in chains (table, chain, rule index, line), and
    /// notes on the rest (a block the paste ends inside, chains outside any table).
    cuts: Vec<(usize, String, u32, u32)>,
    notes: Vec<String>,
    fragment: bool,
    /// The table of a paste that starts inside one.
    implicit: Option<usize>,
    /// The chain named last: (table, name, id).
    last_chain: Option<(usize, &'s str, ChainId)>,
    /// Where the text before has been handed back (see [`P::release_read`]).
    released: usize,
    /// A chain was declared since then.
    declared_in_window: bool,
    /// The text is a transaction (`add …` lines) rather than a listing.
    add_form: bool,
}

const FAMILIES: &[&str] = &["ip", "ip6", "inet", "arp", "bridge", "netdev"];

impl<'s> P<'s> {
    fn s(&self, t: Tok) -> &'s str {
        &self.text[t.start as usize..t.end as usize]
    }
    /// Lexes until `n` tokens past the current one are read (or the text ends).
    fn fill(&mut self, n: usize) {
        while self.toks.len() <= self.i + n {
            match next_token(self.text.as_bytes(), self.pos) {
                Ok(Some((t, next))) => {
                    self.toks.push(t);
                    self.pos = next;
                }
                Ok(None) => return,
                Err(e) => {
                    // Reported, and the rest of its line skipped.
                    let at = e.span.start as usize;
                    if self.errors.len() < crate::parse::input::MAX_ERRORS {
                        self.errors.push(e);
                    }
                    let b = self.text.as_bytes();
                    self.pos = memchr::memchr(b'\n', &b[at..]).map_or(b.len(), |n| at + n);
                }
            }
        }
    }
    fn peek(&mut self) -> Option<Tok> {
        self.fill(0);
        self.toks.get(self.i).copied()
    }
    fn peek_at(&mut self, n: usize) -> Option<Tok> {
        self.fill(n);
        self.toks.get(self.i + n).copied()
    }
    fn word(&mut self) -> Option<&'s str> {
        self.peek().filter(|t| t.k == K::Word).map(|t| self.s(t))
    }
    /// Whether nothing but blank lines and comments is left.
    fn rest_blank(&mut self) -> bool {
        while let Some(t) = self.peek() {
            if t.k != K::Newline {
                return false;
            }
            self.i += 1;
        }
        true
    }
    fn line(&self, t: Tok) -> u32 {
        self.src.line_of(t.start)
    }
    /// The line of `offset`, found from the last one looked up when it is at or after it.
    fn line_near(&mut self, offset: usize) -> u32 {
        let (mut no, start) = self.line_hint;
        if offset < start {
            no = self.src.line_of(offset as u32);
        } else {
            let last = self.src.line_count() as u32 + 1;
            while no < last && self.src.line_start(no + 1) <= offset {
                no += 1;
            }
        }
        self.line_hint = (no, self.src.line_start(no));
        no
    }
    fn err(&mut self, t: Tok, kind: ParseErrorKind) {
        if self.errors.len() < crate::parse::input::MAX_ERRORS {
            self.errors.push(ParseError::new(
                Span::new(t.start as usize, t.end as usize),
                kind,
            ));
        }
    }
    fn skip_blank(&mut self) {
        while self
            .peek()
            .is_some_and(|t| matches!(t.k, K::Newline | K::Semi))
        {
            self.i += 1;
        }
        // Between statements no token is held by index: what was read can go.
        if self.i > 0 {
            self.toks.drain(..self.i);
            self.i = 0;
        }
        self.release_read();
    }
    /// Hands back the pages of text read so far, a window at a time: a mapped file's pages count
    /// as this process's memory while they stay mapped (rules kept as text fault theirs back in
    /// when read). A transaction's windows that declared chains are kept: chain names are spans
    /// of the text, and the rules after them look their chains up by name.
    fn release_read(&mut self) {
        if self.arc.is_none() || self.pos < self.released + crate::model::source::WINDOW {
            return;
        }
        let upto = self.toks.first().map_or(self.pos, |t| t.start as usize);
        if !(self.add_form && self.declared_in_window) {
            self.src.text.release(self.released..upto);
        }
        self.released = upto;
        self.declared_in_window = false;
    }
    /// Tokens up to the end of the statement (a newline or `;` outside braces, or the `}` that
    /// closes the enclosing block), consumed.
    fn statement(&mut self) -> Vec<Tok> {
        let mut depth = 0i32;
        let mut out = Vec::new();
        while let Some(t) = self.peek() {
            match t.k {
                K::Newline | K::Semi if depth == 0 => break,
                K::Newline => {
                    self.i += 1;
                    continue;
                }
                K::LBrace => depth += 1,
                K::RBrace if depth == 0 => break,
                K::RBrace => depth -= 1,
                _ => {}
            }
            out.push(t);
            self.i += 1;
        }
        out
    }
    fn table(&mut self, family: &str, name: &str) -> usize {
        // One model table per name; a second family's table of the same name is told apart.
        let key = match self.tables.iter().position(|t| &*t.table.name == name) {
            Some(i) if *self.tables[i].nft.family == *family => return i,
            Some(_) => format!("{family} {name}"),
            None => name.to_string(),
        };
        if let Some(i) = self.tables.iter().position(|t| *t.table.name == *key) {
            return i;
        }
        self.tables.push(TableB {
            table: Table::new(&key, None),
            nft: NftTable {
                family: family.into(),
                ..NftTable::default()
            },
            deleted: Default::default(),
            policies: HashMap::new(),
        });
        self.tables.len() - 1
    }

    /// The chain named by token `name` (a word or a quoted string) in table `ti`, declared now
    /// when it is new. Unquoted names are kept as spans of the text, not copies.
    fn chain(&mut self, ti: usize, name: Tok) -> ChainId {
        let raw = self.s(name);
        let unq = unquote(raw);
        // A transaction names one chain on many lines in a row, and the chains it fills in the
        // order it declared them: the chain named last and the one declared after it are tried
        // before the index (whose probes miss the caches on a large table).
        if let Some((t, n, id)) = self.last_chain {
            if t == ti {
                if n == unq {
                    return id;
                }
                let next = ChainId(id.0 + 1);
                let chains = &self.tables[ti].table.chains;
                if chains.get(next.0 as usize).is_some_and(|c| *c.name == *unq)
                    && (self.tables[ti].deleted.is_empty()
                        || !self.tables[ti].deleted.contains(&next))
                {
                    self.last_chain = Some((ti, unq, next));
                    return next;
                }
            }
        }
        let tb = &mut self.tables[ti];
        if let Some(id) = tb.table.id(unq) {
            if !tb.deleted.is_empty() {
                tb.deleted.remove(&id);
            }
            self.last_chain = Some((ti, unq, id));
            return id;
        }
        // A large table: room for as many chains as a third of the lines, at once, rather than
        // the index rebuilt as it doubles (hashing every name again from the text).
        if tb.table.chains.len() == 4096 {
            tb.table.reserve(self.src.line_count() / 3);
        }
        let chain = if unq.len() == raw.len() {
            Chain::in_source(
                self.arc.expect("a whole parse has its source"),
                Span::new(name.start as usize, name.end as usize),
                ChainOrigin::Declared,
                &tb.table.name,
            )
        } else {
            Chain::new(unq, ChainOrigin::Declared, &tb.table.name)
        };
        let id = tb.table.declare(chain).expect("looked up just above");
        self.declared_in_window = true;
        self.last_chain = Some((ti, unq, id));
        id
    }

    fn chain_name(&self, ti: usize, id: ChainId) -> String {
        self.tables[ti].table.get(id).name.to_string()
    }

    /// Records where chain `id` is declared, when nothing did before.
    fn declared(&mut self, ti: usize, id: ChainId, span: Span) {
        let c = self.tables[ti].table.get_mut(id);
        if c.decl.is_none() {
            c.decl = Some(span);
        }
    }

    /// `add chain [FAMILY] TABLE NAME` and `add rule [FAMILY] TABLE NAME RULE` as kube-proxy
    /// writes them (one space between words, a rule simple enough to be read alone), read
    /// straight from the line: a large transaction is mostly these. Returns false, having read
    /// nothing, for any other line, which the statement parser then reads.
    fn fast_add(&mut self, start: usize) -> bool {
        let b = self.text.as_bytes();
        let eol = memchr::memchr(b'\n', &b[start..]).map_or(b.len(), |n| start + n);
        // The words up to the chain's or set's name, each ended by one space (or the line).
        let mut at = start;
        let mut word = || {
            if at > eol {
                return None;
            }
            let end = memchr::memchr(b' ', &b[at..eol]).map_or(eol, |n| at + n);
            let w = &self.text[at..end];
            at = end + 1;
            Some(w)
        };
        let (Some("add"), Some(what), Some(w1), Some(w2)) = (word(), word(), word(), word()) else {
            return false;
        };
        if !matches!(what, "chain" | "rule" | "element") {
            return false;
        }
        let (family, table, name) = if FAMILIES.contains(&w1) {
            match word() {
                Some(n) => (w1, w2, n),
                None => return false,
            }
        } else {
            ("ip", w1, w2)
        };
        self.add_form = true;
        // Words up to the name hold nothing the statement parser would read otherwise (checked
        // a vector at a time: this runs for every line of a large transaction).
        let name_end = name.as_ptr() as usize - self.text.as_ptr() as usize + name.len();
        let head = &b[start..name_end];
        let plain = !table.is_empty()
            && !name.is_empty()
            && memchr::memchr3(b'{', b'}', b'"', head).is_none()
            && memchr::memchr3(b';', b'#', b'\\', head).is_none()
            && memchr::memchr3(b'\r', b'\t', b',', head).is_none();
        if !plain {
            return false;
        }
        // What follows the name.
        let rest = &self.text[name_end..eol];
        let name_tok = Tok {
            k: K::Word,
            start: (name_end - name.len()) as u32,
            end: name_end as u32,
        };
        match what {
            "element" => {
                let Some(els) = rest.strip_prefix(" { ").and_then(|r| r.strip_suffix(" }")) else {
                    return false;
                };
                let Some(el) = self.fast_element(els, name_end + 3) else {
                    return false;
                };
                let ti = self.table(family, table);
                let sets = &mut self.tables[ti].nft.sets;
                match sets.get_mut(name) {
                    Some(set) => set.elements.push(el),
                    None => {
                        let set = NamedSet {
                            name: name.into(),
                            line: el.line,
                            elements: vec![el],
                            ..NamedSet::default()
                        };
                        sets.insert(name.into(), set);
                    }
                }
                self.pos = eol;
                true
            }
            "chain" if rest.is_empty() => {
                let ti = self.table(family, table);
                let ci = self.chain(ti, name_tok);
                self.declared(ti, ci, Span::new(start, name_end));
                self.pos = eol;
                true
            }
            "rule" => {
                let Some(body) = rest.strip_prefix(' ') else {
                    return false;
                };
                let first = body.split(' ').next().unwrap_or("");
                if first.is_empty() || matches!(first, "handle" | "position" | "index") {
                    return false;
                }
                let ti = self.table(family, table);
                let ci = self.chain(ti, name_tok);
                let own_line = start == 0 || b[start - 1] == b'\n';
                self.defer_rule(ti, ci, name_end + 1, own_line)
            }
            _ => false,
        }
    }

    /// One element written `KEY [. KEY …] [: VERDICT]` with single spaces (`els` starts at byte
    /// `at`), as kube-proxy adds them one a line; None for anything else (several elements,
    /// comments, timeouts), which the statement parser reads.
    fn fast_element(&mut self, els: &str, at: usize) -> Option<Element> {
        let (key, verdict) = match els.split_once(" : ") {
            Some((k, v)) => {
                // `accept` or `goto NAME`: one or two words, kept on the stack (a line each).
                let (verb, target) = v.split_once(' ').unwrap_or((v, ""));
                if target.contains(' ') {
                    return None;
                }
                let words = [verb, target];
                let words = if target.is_empty() {
                    &words[..1]
                } else {
                    &words[..]
                };
                (k, Some(map_verdict(words)?))
            }
            None => (els, None),
        };
        let mut atoms = Vec::with_capacity(3);
        for (k, w) in key.split(" . ").enumerate() {
            if w.is_empty()
                || w.bytes().any(|c| {
                    matches!(
                        c,
                        b' ' | b',' | b'"' | b'{' | b'}' | b';' | b'#' | b'\t' | b'\r'
                    )
                })
            {
                return None;
            }
            // Keys are values, never words a statement knows (`timeout`, `comment`, …).
            if k == 0 && !w.as_bytes()[0].is_ascii_alphanumeric() {
                return None;
            }
            atoms.push(atom(w)?);
        }
        Some(Element {
            key: atoms,
            verdict,
            comment: None,
            line: self.line_near(at),
            expires: None,
        })
    }

    /// `[family] name` after `table`, `add chain`, …
    fn family_and_name(&mut self) -> Option<(String, Tok)> {
        let first = self.peek().filter(|t| t.k == K::Word)?;
        self.i += 1;
        let f = self.s(first);
        if FAMILIES.contains(&f) {
            if let Some(n) = self.peek().filter(|t| t.k == K::Word) {
                self.i += 1;
                return Some((f.to_string(), n));
            }
        }
        Some(("ip".to_string(), first))
    }

    fn run(&mut self) {
        let b = self.text.as_bytes();
        loop {
            // Lines of a transaction read straight from the text, without tokens.
            while self.toks.get(self.i).is_some_and(|t| t.k == K::Newline) {
                self.i += 1;
            }
            if self.i == self.toks.len() {
                self.toks.clear();
                self.i = 0;
                while b.get(self.pos) == Some(&b'\n') {
                    self.pos += 1;
                }
                if b[self.pos..].starts_with(b"add ") && self.fast_add(self.pos) {
                    self.release_read();
                    continue;
                }
            }
            self.skip_blank();
            let Some(t) = self.peek() else { break };
            let w = self.s(t);
            match (t.k, w) {
                (K::Word, "table") => {
                    self.i += 1;
                    let Some((family, name)) = self.family_and_name() else {
                        self.err(t, ParseErrorKind::MissingValue("table".into()));
                        continue;
                    };
                    let ti = self.table(&family, self.s(name));
                    if self.peek().is_some_and(|t| t.k == K::LBrace) {
                        self.i += 1;
                        self.table_block(ti);
                    }
                }
                (
                    K::Word,
                    "add" | "create" | "insert" | "replace" | "flush" | "delete" | "destroy",
                ) => self.command(),
                // A paste that starts inside a table: its chains, sets and maps, and the `}` that
                // closed the table it cut.
                (K::Word, "chain" | "set" | "map" | "comment" | "flags") => {
                    let ti = self.implicit_table();
                    if matches!(w, "comment" | "flags") {
                        let _ = self.statement();
                    } else {
                        self.table_item(ti, t);
                    }
                }
                (K::RBrace, _) => {
                    self.fragment = true;
                    self.i += 1;
                }
                (K::Word, w) if is_cut(w) => {
                    self.fragment = true;
                    self.notes.push(format!(
                        "the paste is cut at line {} (`{w}`): what it left out is not known",
                        self.line(t)
                    ));
                    self.i += 1;
                }
                (K::Word, "define" | "include") => {
                    self.err(
                        t,
                        ParseErrorKind::Other(format!(
                            "`{w}` is not supported: give the ruleset as `nft list ruleset` prints it"
                        )),
                    );
                    self.statement();
                }
                _ => {
                    self.err(t, ParseErrorKind::Unexpected(w.to_string()));
                    let _ = self.statement();
                    if self.peek().is_some_and(|t| t.k == K::RBrace) {
                        self.i += 1;
                    }
                }
            }
        }
    }

    /// The inside of `table … {`, up to and with its `}`.
    fn table_block(&mut self, ti: usize) {
        loop {
            self.skip_blank();
            let Some(t) = self.peek() else {
                let name = self.tables[ti].table.name.to_string();
                self.ends_inside(format!("table `{name}`"));
                return;
            };
            if t.k == K::RBrace {
                self.i += 1;
                return;
            }
            self.table_item(ti, t);
        }
    }

    /// The table a paste that starts inside one is read into: kube-proxy's when its objects are
    /// there, iptables-nft's nat for kube-proxy's and CNI's NAT chains, else its filter. Decided
    /// once, at the first object outside any table.
    fn implicit_table(&mut self) -> usize {
        if let Some(ti) = self.implicit {
            return ti;
        }
        self.fragment = true;
        let text = self.text;
        let name = if [
            "mark-for-masquerade",
            "@service-ips",
            "rules for kube-proxy",
        ]
        .iter()
        .any(|k| text.contains(k))
        {
            "kube-proxy"
        } else {
            let first = self.peek_at(1).map(|n| self.s(n)).unwrap_or("");
            // kube-proxy's NAT chains (as a grep'd fragment is placed), and CNIs' hostport DNATs.
            let nat = super::fragment::is_nat_chain(first)
                || ["CNI-DN-", "CNI-HOSTPORT-", "cali-nat-"]
                    .iter()
                    .any(|p| first.starts_with(p));
            if nat {
                "nat"
            } else {
                "filter"
            }
        };
        self.notes.push(format!(
            "the paste starts inside a table: what precedes its first `}}` is read as table `{name}`"
        ));
        let ti = self.table("ip", name);
        self.implicit = Some(ti);
        ti
    }

    /// A paste that ends inside a block is cut there.
    fn ends_inside(&mut self, what: String) {
        self.fragment = true;
        self.notes.push(format!(
            "the paste ends inside {what}: what follows is not known"
        ));
    }

    /// One item of a table: a chain, set or map block, a comment, or an object kptrace skips.
    fn table_item(&mut self, ti: usize, t: Tok) {
        let w = self.s(t);
        match w {
            "chain" | "set" | "map" => {
                self.i += 1;
                let Some(name_tok) = self.peek().filter(|t| t.k == K::Word || t.k == K::Str) else {
                    self.err(t, ParseErrorKind::MissingValue(w.into()));
                    return;
                };
                self.i += 1;
                let name = unquote(self.s(name_tok)).to_string();
                if !self.peek().is_some_and(|t| t.k == K::LBrace) {
                    // A paste cut right after the name.
                    if self.rest_blank() {
                        self.ends_inside(format!("`{w} {name}`"));
                        return;
                    }
                    self.err(
                        t,
                        ParseErrorKind::Other(format!("`{w} {name}` has no `{{`")),
                    );
                    return;
                }
                self.i += 1;
                if w == "chain" {
                    let ci = self.chain(ti, name_tok);
                    self.declared(ti, ci, Span::new(t.start as usize, name_tok.end as usize));
                    self.chain_body(ti, ci);
                } else {
                    let mut set = NamedSet {
                        name: name.clone().into(),
                        is_map: w == "map",
                        line: self.line(t),
                        ..NamedSet::default()
                    };
                    self.set_body(&mut set, true);
                    self.tables[ti].nft.sets.insert(name.into(), set);
                }
            }
            "comment" => {
                let st = self.statement();
                if let Some(c) = st.get(1) {
                    self.tables[ti].nft.comment = Some(unquote(self.s(*c)).into());
                }
            }
            w if is_cut(w) => {
                self.fragment = true;
                self.notes.push(format!(
                    "the paste is cut at line {} (`{w}`): chains it left out are not known",
                    self.line(t)
                ));
                self.i += 1;
            }
            _ => {
                // flowtables, counters, quotas, ct helpers…: objects kptrace does not model
                // (a statement takes a block whole).
                let _ = self.statement();
            }
        }
    }

    /// A chain's lines, up to and with its `}`.
    fn chain_body(&mut self, ti: usize, ci: ChainId) {
        loop {
            self.skip_blank();
            let Some(t) = self.peek() else {
                let name = self.chain_name(ti, ci);
                self.ends_inside(format!("chain `{name}`"));
                return;
            };
            if t.k == K::RBrace {
                self.i += 1;
                return;
            }
            if t.k == K::Word && is_cut(self.s(t)) {
                let at = self.tables[ti].table.get(ci).rules.count() as u32;
                let name = self.chain_name(ti, ci);
                let line = self.line(t);
                self.cuts.push((ti, name, at, line));
                self.fragment = true;
                self.i += 1;
                continue;
            }
            if t.k == K::Word
                && self.toks.len() == self.i + 1
                && !matches!(
                    self.s(t),
                    "type" | "policy" | "comment" | "devices" | "flags"
                )
            {
                let first_on_line = self.text[..t.start as usize]
                    .bytes()
                    .rev()
                    .take_while(|c| *c != b'\n')
                    .all(|c| c == b' ' || c == b'\t');
                if self.defer_rule(ti, ci, t.start as usize, first_on_line) {
                    continue;
                }
            }
            let st = self.statement();
            if self.peek().is_some_and(|t| t.k == K::Semi) {
                self.i += 1;
            }
            if st.is_empty() {
                continue;
            }
            let first = self.s(st[0]);
            match first {
                "type" => self.base_chain(ti, ci, &st),
                "policy" => {
                    let p = st.get(1).map(|t| self.s(*t));
                    let policy = match p {
                        Some("drop") => Policy::Drop,
                        _ => Policy::Accept,
                    };
                    self.tables[ti].policies.insert(ci, policy);
                }
                "comment" | "devices" | "flags" => {}
                _ => {
                    let rules = self.rule(&st);
                    let chain = self.tables[ti].table.get_mut(ci);
                    for r in rules {
                        chain.push_rule(RuleSlot::ready(r));
                    }
                }
            }
        }
    }

    /// Records the rule whose text starts at `body` and ends with its line as a slot parsed when
    /// first needed, when it is simple enough to be read alone (see [`simple_rule_end`]); as part
    /// of its chain's run of lines when `own_line` (the rule is its line, so the run's reader can
    /// find it again). Returns false, having read nothing, when it is not.
    fn defer_rule(&mut self, ti: usize, ci: ChainId, body: usize, own_line: bool) -> bool {
        let b = self.text.as_bytes();
        let eol = memchr::memchr(b'\n', &b[body..]).map_or(b.len(), |n| body + n);
        let Some(len) = simple_rule_end(&b[body..eol]) else {
            return false;
        };
        let line = self.line_near(body);
        let chain = self.tables[ti].table.get_mut(ci);
        let runs = self.runs.as_ref().expect("a whole parse has a run source");
        if !(own_line && chain.rules.extend_run(runs, line)) {
            chain.push_rule(RuleSlot::pending(
                line,
                Span::new(body, body + len),
                body as u32,
                None,
            ));
        }
        // What was read ahead of the rule is dropped; its newline comes next.
        self.toks.truncate(self.i);
        self.pos = eol;
        true
    }

    fn base_chain(&mut self, ti: usize, ci: ChainId, st: &[Tok]) {
        let words: Vec<&str> = st.iter().map(|t| unquote(self.s(*t))).collect();
        let at = |k: &str| {
            words
                .iter()
                .position(|w| *w == k)
                .and_then(|i| words.get(i + 1))
        };
        let kind = at("type").copied().unwrap_or("filter");
        let Some(hook) = at("hook").and_then(|h| Hook::parse(h)) else {
            return;
        };
        let mut priority = 0i32;
        if let Some(i) = words.iter().position(|w| *w == "priority") {
            let rest = &words[i + 1..];
            let base = rest.first().copied().unwrap_or("0");
            let mut p = priority_name(base)
                .or_else(|| base.parse().ok())
                .unwrap_or(0);
            if let (Some(op), Some(n)) =
                (rest.get(1), rest.get(2).and_then(|n| n.parse::<i32>().ok()))
            {
                match *op {
                    "-" => p -= n,
                    "+" => p += n,
                    _ => {}
                }
            }
            priority = p;
        }
        let chain = self.chain_name(ti, ci);
        let t = &mut self.tables[ti].nft;
        t.bases.retain(|b| *b.chain != *chain);
        t.bases.push(BaseChain {
            chain: chain.into(),
            kind: kind.into(),
            hook,
            priority,
        });
    }

    /// The inside of `set|map NAME {`, up to its `}`.
    fn set_body(&mut self, set: &mut NamedSet, block: bool) {
        loop {
            self.skip_blank();
            let Some(t) = self.peek() else { return };
            if t.k == K::RBrace {
                self.i += 1;
                return;
            }
            let w = self.s(t);
            match w {
                "elements" => {
                    self.i += 1;
                    if self.word() == Some("=") {
                        self.i += 1;
                    }
                    if self.peek().is_some_and(|t| t.k == K::LBrace) {
                        let els = self.elements();
                        set.elements.extend(els);
                    }
                }
                _ => {
                    let st = self.statement();
                    let words: Vec<&str> = st.iter().map(|t| self.s(*t)).collect();
                    match words.first().copied() {
                        Some("type") | Some("typeof") => {
                            set.is_map |= words.contains(&":");
                        }
                        Some("flags") => {
                            set.interval |= words.contains(&"interval");
                            set.dynamic |= words.contains(&"dynamic");
                        }
                        Some("comment") => {
                            set.comment = words.get(1).map(|c| unquote(c).into());
                        }
                        _ => {}
                    }
                }
            }
            if !block {
                return;
            }
        }
    }

    /// `{ elem, elem : verdict, … }`, its braces included.
    fn elements(&mut self) -> Vec<Element> {
        let open = self.peek().unwrap();
        self.i += 1;
        let mut out = Vec::new();
        let mut cur: Vec<Tok> = Vec::new();
        let mut depth = 0;
        while let Some(t) = self.peek() {
            self.i += 1;
            match t.k {
                K::Newline => continue,
                K::LBrace => depth += 1,
                K::RBrace if depth == 0 => {
                    if !cur.is_empty() {
                        out.extend(self.element(&cur));
                    }
                    return out;
                }
                K::RBrace => depth -= 1,
                K::Comma if depth == 0 => {
                    if !cur.is_empty() {
                        out.extend(self.element(&cur));
                    }
                    cur.clear();
                    continue;
                }
                _ => {}
            }
            cur.push(t);
        }
        self.err(open, ParseErrorKind::Other("`{` is never closed".into()));
        out
    }

    fn element(&mut self, toks: &[Tok]) -> Option<Element> {
        let words: Vec<&str> = toks.iter().map(|t| self.s(*t)).collect();
        let mut key = Vec::new();
        let mut comment = None;
        let mut verdict = None;
        let mut expires = None;
        let mut i = 0;
        while i < words.len() {
            match words[i] {
                "." => {}
                "expires" => {
                    expires = words.get(i + 1).map(|e| (*e).into());
                    i += 1;
                }
                "timeout" | "counter" | "packets" | "bytes" => {
                    i += 1;
                }
                "comment" => {
                    comment = words.get(i + 1).map(|c| unquote(c).into());
                    i += 1;
                }
                ":" => {
                    let rest = &words[i + 1..];
                    verdict = map_verdict(rest).or_else(|| map_data(rest));
                    break;
                }
                w => match atom(w) {
                    Some(a) => key.push(a),
                    None => {
                        self.err(
                            toks[i],
                            ParseErrorKind::BadValue {
                                option: "element".into(),
                                value: w.to_string(),
                            },
                        );
                        return None;
                    }
                },
            }
            i += 1;
        }
        if key.is_empty() {
            return None;
        }
        Some(Element {
            key,
            verdict,
            comment,
            line: self.line(toks[0]),
            expires,
        })
    }

    /// One `add|insert|flush|delete …` command.
    fn command(&mut self) {
        let verb_tok = self.peek().unwrap();
        let verb = self.s(verb_tok);
        self.i += 1;
        let Some(what) = self.word() else {
            self.err(verb_tok, ParseErrorKind::MissingValue(verb.into()));
            self.statement();
            return;
        };
        let what_tok = self.peek().unwrap();
        self.i += 1;
        if what == "ruleset" {
            self.statement();
            return;
        }
        let Some((family, tname)) = self.family_and_name() else {
            self.err(what_tok, ParseErrorKind::MissingValue(what.into()));
            return;
        };
        let ti = self.table(&family, self.s(tname));
        if what == "table" {
            if verb == "flush" {
                for c in &mut self.tables[ti].table.chains {
                    c.rules = RuleList::new();
                }
            }
            if self.peek().is_some_and(|t| t.k == K::LBrace) {
                self.i += 1;
                self.table_block(ti);
            }
            self.statement();
            return;
        }
        let Some(name) = self.peek().filter(|t| t.k == K::Word || t.k == K::Str) else {
            self.err(what_tok, ParseErrorKind::MissingValue(what.into()));
            self.statement();
            return;
        };
        self.i += 1;
        let name_s = unquote(self.s(name));
        match (verb, what) {
            ("add" | "create", "chain") => {
                let ci = self.chain(ti, name);
                self.declared(
                    ti,
                    ci,
                    Span::new(verb_tok.start as usize, name.end as usize),
                );
                if self.peek().is_some_and(|t| t.k == K::LBrace) {
                    self.i += 1;
                    self.chain_body(ti, ci);
                }
            }
            ("flush", "chain") => {
                let ci = self.chain(ti, name);
                self.tables[ti].table.get_mut(ci).rules = RuleList::new();
            }
            ("delete" | "destroy", "chain") => {
                self.last_chain = None;
                if let Some(ci) = self.tables[ti].table.id(name_s) {
                    self.tables[ti].table.get_mut(ci).rules = RuleList::new();
                    self.tables[ti].deleted.insert(ci);
                }
            }
            ("add" | "insert" | "replace" | "create", "rule") => {
                let ci = self.chain(ti, name);
                // kube-proxy's transactions write a rule a line: kept as text until needed.
                if verb == "add" && self.toks.len() == self.i {
                    if let Some(t) = self.peek().filter(|t| {
                        t.k == K::Word && !matches!(self.s(*t), "handle" | "position" | "index")
                    }) {
                        let own_line = name.k == K::Word
                            && self.text[..verb_tok.start as usize]
                                .bytes()
                                .next_back()
                                .is_none_or(|c| c == b'\n');
                        if self.toks.len() == self.i + 1
                            && self.defer_rule(ti, ci, t.start as usize, own_line)
                        {
                            return;
                        }
                    }
                }
                let mut st = self.statement();
                // `add rule t c handle N …` / `position N`: where in the chain, not what.
                if st
                    .first()
                    .is_some_and(|t| matches!(self.s(*t), "handle" | "position" | "index"))
                {
                    st.drain(..2.min(st.len()));
                }
                let rules = self.rule(&st);
                let chain = self.tables[ti].table.get_mut(ci);
                if verb == "insert" {
                    for (k, r) in rules.into_iter().enumerate() {
                        chain.rules.insert(k, RuleSlot::ready(r));
                    }
                } else {
                    for r in rules {
                        chain.push_rule(RuleSlot::ready(r));
                    }
                }
                return;
            }
            ("add" | "create", "set" | "map") => {
                let line = self.line(name);
                let mut set = self.tables[ti]
                    .nft
                    .sets
                    .remove(name_s)
                    .unwrap_or_else(|| NamedSet {
                        name: name_s.into(),
                        is_map: what == "map",
                        line,
                        ..NamedSet::default()
                    });
                if self.peek().is_some_and(|t| t.k == K::LBrace) {
                    self.i += 1;
                    self.set_body(&mut set, true);
                }
                self.tables[ti].nft.sets.insert(name_s.into(), set);
            }
            ("flush", "set" | "map") => {
                if let Some(s) = self.tables[ti].nft.sets.get_mut(name_s) {
                    s.elements.clear();
                }
            }
            ("delete" | "destroy", "set" | "map") => {
                self.tables[ti].nft.sets.remove(name_s);
            }
            ("add" | "create" | "delete" | "destroy", "element")
                if self.peek().is_some_and(|t| t.k == K::LBrace) =>
            {
                let els = self.elements();
                let line = self.line(name);
                let set = self.tables[ti]
                    .nft
                    .sets
                    .entry(name_s.into())
                    .or_insert_with(|| NamedSet {
                        name: name_s.into(),
                        line,
                        ..NamedSet::default()
                    });
                if verb == "add" || verb == "create" {
                    set.elements.extend(els);
                } else {
                    set.elements.retain(|e| !els.iter().any(|d| d.key == e.key));
                }
            }
            _ => {}
        }
        self.statement();
    }
}

/// `...`, `....`, `…`: where a paste left something out.
fn is_cut(w: &str) -> bool {
    (w.len() >= 3 && w.chars().all(|c| c == '.')) || w == "…"
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

fn map_verdict(words: &[&str]) -> Option<MapVerdict> {
    Some(match *words.first()? {
        "accept" => MapVerdict::Accept,
        "drop" => MapVerdict::Drop,
        "reject" => MapVerdict::Reject,
        "return" => MapVerdict::Return,
        "continue" => MapVerdict::Continue,
        "jump" => MapVerdict::Jump(unquote(words.get(1)?).into()),
        "goto" => MapVerdict::Goto(unquote(words.get(1)?).into()),
        _ => return None,
    })
}

/// N of `numgen random mod N …` (the words from `numgen` on); 1 when the text gives none.
fn numgen_modulus(w: &[&str]) -> u32 {
    w.iter()
        .position(|x| *x == "mod")
        .and_then(|k| w.get(k + 1))
        .and_then(|n| number(n))
        .unwrap_or(1) as u32
}

fn number(w: &str) -> Option<u64> {
    match w.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => w.parse().ok(),
    }
}

/// One atom of an element or a value: an address, prefix or range, a protocol, a number or range,
/// or a string.
fn atom(w: &str) -> Option<Atom> {
    if w.starts_with('"') {
        return Some(Atom::Str(unquote(w).into()));
    }
    if let Ok(n) = w.parse::<IpNet>() {
        return Some(Atom::Net(n));
    }
    if let Ok(a) = w.parse::<IpAddr>() {
        return Some(Atom::Net(IpNet::from(a)));
    }
    if let Some((a, b)) = w.split_once('-') {
        if let (Ok(a), Ok(b)) = (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
            return Some(Atom::Range(a, b));
        }
        if let (Some(a), Some(b)) = (number(a), number(b)) {
            return Some(Atom::Num(a, b));
        }
    }
    if let Some(n) = number(w) {
        return Some(Atom::Num(n, n));
    }
    if let Some(p) = Protocol::parse(w).filter(|p| !matches!(p, Protocol::Number(_))) {
        return Some(Atom::Proto(p));
    }
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.*+".contains(c))
    {
        return Some(Atom::Str(w.into()));
    }
    None
}

/// Words that begin a statement, so an expression kptrace does not know ends before them.
const STATEMENTS: &[&str] = &[
    "jump",
    "goto",
    "accept",
    "drop",
    "reject",
    "return",
    "continue",
    "counter",
    "comment",
    "masquerade",
    "dnat",
    "snat",
    "redirect",
    "log",
    "notrack",
    "queue",
];

struct Rb {
    matches: Vec<Match>,
    target: Option<TargetKind>,
    goto: bool,
    /// Statements that change the packet before the verdict (`meta mark set … accept`).
    before: Vec<TargetKind>,
}

impl Rb {
    fn m(&mut self, c: Criterion, negated: bool, span: Span) {
        self.matches.push(Match {
            negated,
            continues: false,
            criterion: c,
            span,
        });
    }
    fn t(&mut self, k: TargetKind) {
        if let Some(prev) = self.target.take() {
            self.before.push(prev);
        }
        self.target = Some(k);
    }
}

impl P<'_> {
    /// One rule line: its model rules (two when a statement changes the packet before a verdict).
    fn rule(&mut self, st: &[Tok]) -> Vec<Rule> {
        let Some(first) = st.first() else {
            return Vec::new();
        };
        let last = st.last().unwrap();
        let span = Span::new(first.start as usize, last.end as usize);
        let w: Vec<&str> = st.iter().map(|t| self.s(*t)).collect();
        let sp = |a: usize, b: usize| {
            Span::new(st[a].start as usize, st[b.min(st.len() - 1)].end as usize)
        };
        let mut r = Rb {
            matches: Vec::new(),
            target: None,
            goto: false,
            before: Vec::new(),
        };
        let mut i = 0;
        while i < w.len() {
            let start = i;
            match w[i] {
                "comment" => {
                    let c = w.get(i + 1).map(|c| unquote(c)).unwrap_or("");
                    r.m(Criterion::Comment(c.into()), false, sp(i, i + 1));
                    i += 2;
                }
                "counter" => {
                    i += 1;
                    while i + 1 < w.len() && matches!(w[i], "packets" | "bytes" | "name") {
                        i += 2;
                    }
                }
                "jump" | "goto" => {
                    let c = w.get(i + 1).map(|c| unquote(c)).unwrap_or("");
                    r.goto = w[i] == "goto";
                    r.t(TargetKind::Chain(c.into()));
                    i += 2;
                }
                "accept" => {
                    r.t(TargetKind::Accept);
                    i += 1;
                }
                "drop" => {
                    r.t(TargetKind::Drop);
                    i += 1;
                }
                "return" => {
                    r.t(TargetKind::Return);
                    i += 1;
                }
                "continue" => i += 1,
                "reject" => {
                    let mut with = None;
                    i += 1;
                    if w.get(i) == Some(&"with") {
                        with = Some(
                            w[i + 1..]
                                .iter()
                                .take(3)
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(" ")
                                .into(),
                        );
                        i = w.len();
                    }
                    r.t(TargetKind::Reject { with });
                }
                "masquerade" => {
                    i += 1;
                    let mut flags = Vec::new();
                    while i < w.len() && matches!(w[i], "fully-random" | "random" | "persistent") {
                        flags.push(w[i].into());
                        i += 1;
                    }
                    r.t(TargetKind::Masquerade {
                        to_ports: None,
                        flags,
                    });
                }
                "dnat" | "snat" => {
                    let verb = w[i];
                    i += 1;
                    if matches!(w.get(i), Some(&"ip") | Some(&"ip6")) {
                        i += 1;
                    }
                    // `dnat ip addr . port to …`: address and port as one concatenation.
                    if w.get(i) == Some(&"addr")
                        && w.get(i + 1) == Some(&".")
                        && w.get(i + 2) == Some(&"port")
                    {
                        i += 3;
                    }
                    if w.get(i) == Some(&"to") {
                        i += 1;
                    }
                    // kube-proxy ≥ 1.36: `dnat ip to numgen random mod N map { 0 : ADDR . PORT, … }`
                    // chooses the endpoint in the rule itself, each value's share exact.
                    if verb == "dnat" && w.get(i) == Some(&"numgen") {
                        let modulus = numgen_modulus(&w[i..]);
                        let offset = w
                            .iter()
                            .skip(i)
                            .take_while(|x| **x != "map")
                            .any(|x| *x == "offset");
                        let Some(m) = w.iter().skip(i).position(|x| *x == "map").map(|k| i + k)
                        else {
                            r.m(other(&w[i..]), false, sp(i, w.len()));
                            break;
                        };
                        if offset {
                            // Values shifted by an offset: not what kube-proxy writes, kept unread.
                            r.m(other(&w[i..=m]), false, sp(i, m));
                        }
                        let (map, next) = self.set_ref(st, m + 1);
                        r.t(TargetKind::Vmap(Box::new(Vmap {
                            key: VmapKey::Numgen { modulus },
                            map,
                        })));
                        i = next;
                        while i < w.len()
                            && matches!(w[i], "fully-random" | "random" | "persistent")
                        {
                            i += 1;
                        }
                        continue;
                    }
                    let to = if w.get(i + 1) == Some(&".") {
                        let to = w.get(i + 2).and_then(|p| nat_pair(w[i], p)).map(Box::new);
                        i += 2;
                        to
                    } else {
                        w.get(i).and_then(|a| nat_range(a)).map(Box::new)
                    };
                    if to.is_none() {
                        if let Some(t) = st.get(i) {
                            self.err(*t, ParseErrorKind::BadAddress(w[i].into()));
                        }
                    }
                    i += 1;
                    let mut flags = Vec::new();
                    while i < w.len() && matches!(w[i], "fully-random" | "random" | "persistent") {
                        flags.push(w[i].into());
                        i += 1;
                    }
                    r.t(if verb == "dnat" {
                        TargetKind::Dnat { to, flags }
                    } else {
                        TargetKind::Snat { to, flags }
                    });
                }
                "redirect" => {
                    // redirect [to] [:]PORT
                    i += 1;
                    if w.get(i) == Some(&"to") {
                        i += 1;
                    }
                    let to_ports = w
                        .get(i)
                        .and_then(|p| p.trim_start_matches(':').parse::<u16>().ok())
                        .map(PortRange::single);
                    if to_ports.is_some() {
                        i += 1;
                    }
                    r.t(TargetKind::Redirect {
                        to_ports,
                        flags: Vec::new(),
                    });
                }
                "notrack" => {
                    r.t(TargetKind::Other {
                        name: "NOTRACK".into(),
                        args: Vec::new(),
                    });
                    i += 1;
                }
                "update" | "add" if w.get(i + 1).is_some_and(|s| s.starts_with('@')) => {
                    // Adds the packet's key to a dynamic set (affinity): the next packet's
                    // business, not this one's.
                    i += 2;
                    if st.get(i).is_some_and(|t| t.k == K::LBrace) {
                        while i < w.len() && st[i].k != K::RBrace {
                            i += 1;
                        }
                        i += 1;
                    }
                }
                "numgen" => {
                    // numgen random mod N [offset M] vmap MAP
                    let modulus = numgen_modulus(&w[i..]);
                    let Some(v) = w.iter().skip(i).position(|x| *x == "vmap").map(|k| i + k) else {
                        r.m(other(&w[i..]), false, sp(i, w.len()));
                        break;
                    };
                    let (map, next) = self.set_ref(st, v + 1);
                    r.t(TargetKind::Vmap(Box::new(Vmap {
                        key: VmapKey::Numgen { modulus },
                        map,
                    })));
                    i = next;
                }
                "fib" => {
                    // fib saddr|daddr [. iif|oif] type [!=] local
                    let dir = if w.get(i + 1) == Some(&"saddr") {
                        Dir::Src
                    } else {
                        Dir::Dst
                    };
                    let Some(k) = w.iter().skip(i).position(|x| *x == "type").map(|k| i + k) else {
                        r.m(other(&w[i..]), false, sp(i, w.len()));
                        break;
                    };
                    let mut j = k + 1;
                    let negated = w.get(j) == Some(&"!=");
                    if negated || w.get(j) == Some(&"==") {
                        j += 1;
                    }
                    let kind = match w.get(j).copied() {
                        Some("local") => Some(AddrKind::Local),
                        Some("unicast") => Some(AddrKind::Unicast),
                        Some("broadcast") => Some(AddrKind::Broadcast),
                        Some("multicast") => Some(AddrKind::Multicast),
                        _ => None,
                    };
                    match kind {
                        Some(kind) => r.m(
                            Criterion::AddrType {
                                dir,
                                kinds: vec![kind],
                            },
                            negated,
                            sp(start, j),
                        ),
                        None => r.m(other(&w[start..=j.min(w.len() - 1)]), false, sp(start, j)),
                    }
                    i = j + 1;
                }
                // iptables-nft's `-m statistic --mode random --probability p`, as nft prints it:
                // `meta random & 2147483647 < lround(p · 2³¹)`.
                "meta"
                    if w.get(i + 1) == Some(&"random")
                        && w.get(i + 2) == Some(&"&")
                        && w.get(i + 3).and_then(|m| number(m)) == Some(0x7fff_ffff)
                        && w.get(i + 4) == Some(&"<") =>
                {
                    match w.get(i + 5).and_then(|n| number(n)) {
                        Some(threshold) if threshold <= 1 << 31 => r.m(
                            Criterion::Statistic(crate::model::criterion::Statistic::Random {
                                threshold: threshold as u32,
                            }),
                            false,
                            sp(i, i + 5),
                        ),
                        _ => r.m(other(&w[i..(i + 6).min(w.len())]), false, sp(i, i + 5)),
                    }
                    i += 6;
                }
                "xt" => {
                    r.m(other(&w[i..(i + 3).min(w.len())]), false, sp(i, i + 2));
                    i += 3;
                }
                "ct" if matches!(w.get(i + 1), Some(&"state") | Some(&"status")) => {
                    let mut j = i + 2;
                    let negated = w.get(j) == Some(&"!=");
                    if negated || w.get(j) == Some(&"==") {
                        j += 1;
                    }
                    let mut states = Vec::new();
                    while j < w.len() {
                        let s = match w[j] {
                            "new" => Some(CtState::New),
                            "established" => Some(CtState::Established),
                            "related" => Some(CtState::Related),
                            "invalid" => Some(CtState::Invalid),
                            "untracked" => Some(CtState::Untracked),
                            "dnat" => Some(CtState::Dnat),
                            "snat" => Some(CtState::Snat),
                            _ => None,
                        };
                        match s {
                            Some(s) => states.push(s),
                            None => break,
                        }
                        j += 1;
                        if st.get(j).is_some_and(|t| t.k == K::Comma) {
                            j += 1;
                        } else {
                            break;
                        }
                    }
                    r.m(
                        Criterion::CtState {
                            states,
                            state_module: false,
                        },
                        negated,
                        sp(i, j - 1),
                    );
                    i = j;
                }
                _ => {
                    i = self.expression(st, &w, i, &mut r);
                }
            }
            if i == start {
                i += 1;
            }
        }
        let before = r.before.into_boxed_slice();
        vec![Rule {
            line: self.src.line_of(first.start),
            span,
            counters: None,
            matches: r.matches.into_boxed_slice(),
            target: r.target.map(|kind| Target {
                goto: r.goto,
                kind,
                span,
                before,
            }),
            invalid: false,
        }]
    }

    /// `@name` or `{ … }` at `at`: the set, and the index after it.
    fn set_ref(&mut self, st: &[Tok], at: usize) -> (SetRef, usize) {
        let Some(t) = st.get(at) else {
            return (SetRef::Inline(Box::new([])), at);
        };
        if t.k == K::LBrace {
            // Re-read the braces' tokens as elements.
            let mut depth = 0;
            let mut end = at;
            for (k, t) in st.iter().enumerate().skip(at) {
                match t.k {
                    K::LBrace => depth += 1,
                    K::RBrace => {
                        depth -= 1;
                        if depth == 0 {
                            end = k;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            // Read as a block of their own: nothing past them is lexed meanwhile.
            let saved = (std::mem::take(&mut self.toks), self.i, self.pos);
            self.toks = st[at..=end].to_vec();
            self.i = 0;
            self.pos = self.text.len();
            let els = self.elements();
            (self.toks, self.i, self.pos) = saved;
            return (SetRef::Inline(els.into_boxed_slice()), end + 1);
        }
        let name = self.s(*t).trim_start_matches('@');
        (SetRef::Named(name.into()), at + 1)
    }

    /// A match on packet fields (`ip daddr . meta l4proto . th dport vmap @m`, `tcp dport 80`,
    /// `meta mark & 0x4000 == 0`, `meta mark set meta mark | 0x4000`); returns the index after it.
    fn expression(&mut self, st: &[Tok], w: &[&str], at: usize, r: &mut Rb) -> usize {
        let mut i = at;
        let mut fields: Vec<Field> = Vec::new();
        let mut proto: Option<Protocol> = None;
        loop {
            let (f, n, p) = match (w.get(i).copied(), w.get(i + 1).copied()) {
                (Some("ip" | "ip6"), Some("saddr")) => (Some(Field::SAddr), 2, None),
                (Some("ip" | "ip6"), Some("daddr")) => (Some(Field::DAddr), 2, None),
                (Some("ip"), Some("protocol")) | (Some("ip6"), Some("nexthdr")) => {
                    (Some(Field::L4Proto), 2, None)
                }
                (Some("meta"), Some("l4proto")) => (Some(Field::L4Proto), 2, None),
                (Some("meta"), Some("mark")) => (Some(Field::Mark), 2, None),
                (Some("mark"), _) => (Some(Field::Mark), 1, None),
                (Some("meta"), Some("iifname")) | (Some("iifname"), _) => (
                    Some(Field::IifName),
                    if w[i] == "meta" { 2 } else { 1 },
                    None,
                ),
                (Some("meta"), Some("oifname")) | (Some("oifname"), _) => (
                    Some(Field::OifName),
                    if w[i] == "meta" { 2 } else { 1 },
                    None,
                ),
                (Some("th"), Some("dport")) => (Some(Field::DPort), 2, None),
                (Some("th"), Some("sport")) => (Some(Field::SPort), 2, None),
                (
                    Some(p @ ("tcp" | "udp" | "sctp" | "udplite" | "dccp")),
                    Some(d @ ("dport" | "sport")),
                ) => (
                    Some(if d == "dport" {
                        Field::DPort
                    } else {
                        Field::SPort
                    }),
                    2,
                    Protocol::parse(p),
                ),
                _ => (None, 0, None),
            };
            let Some(f) = f else { break };
            fields.push(f);
            proto = proto.or(p);
            i += n;
            if w.get(i) == Some(&".") {
                i += 1;
                continue;
            }
            break;
        }
        if fields.is_empty() {
            // Not a field kptrace reads: everything up to the next statement, kept as a match.
            let mut j = i + 1;
            while j < w.len() && !STATEMENTS.contains(&w[j]) {
                j += 1;
            }
            r.m(
                other(&w[i..j]),
                false,
                Span::new(st[i].start as usize, st[j - 1].end as usize),
            );
            return j;
        }
        let span_to =
            |j: usize| Span::new(st[at].start as usize, st[j.min(st.len() - 1)].end as usize);
        if let Some(p) = proto {
            r.m(Criterion::Protocol(p), false, span_to(at + 1));
        }
        // `meta mark set EXPR`
        if w.get(i) == Some(&"set") && fields == [Field::Mark] {
            let rest = &w[i + 1..];
            let (op, used) = mark_set(rest);
            match op {
                Some(op) => r.t(TargetKind::Mark(op)),
                None => r.m(other(&w[at..i + 1 + used]), false, span_to(i + used)),
            }
            return i + 1 + used;
        }
        // `meta mark & MASK [==|!=] VALUE`
        let mut mask: Option<u64> = None;
        if matches!(w.get(i), Some(&"&") | Some(&"and")) {
            mask = w.get(i + 1).and_then(|m| number(m));
            i += 2;
        }
        if w.get(i) == Some(&"vmap") {
            let (map, next) = self.set_ref(st, i + 1);
            r.t(TargetKind::Vmap(Box::new(Vmap {
                key: VmapKey::Fields(fields),
                map,
            })));
            return next;
        }
        let mut negated = false;
        match w.get(i).copied() {
            Some("!=") => {
                negated = true;
                i += 1;
            }
            Some("==") => i += 1,
            _ => {}
        }
        let Some(vt) = st.get(i) else {
            r.m(other(&w[at..]), false, span_to(w.len()));
            return w.len();
        };
        if vt.k == K::LBrace || self.s(*vt).starts_with('@') {
            let (set, next) = self.set_ref(st, i);
            r.m(
                Criterion::Lookup(Box::new(Lookup { key: fields, set })),
                negated,
                span_to(next - 1),
            );
            return next;
        }
        let v = self.s(*vt);
        let c = match (fields.as_slice(), atom(v)) {
            ([Field::SAddr], Some(Atom::Net(n))) => Some(Criterion::Source(n)),
            ([Field::DAddr], Some(Atom::Net(n))) => Some(Criterion::Destination(n)),
            ([Field::L4Proto], Some(Atom::Proto(p))) => Some(Criterion::Protocol(p)),
            ([Field::L4Proto], Some(Atom::Num(n, m))) if n == m && n < 256 => {
                Protocol::parse(&n.to_string()).map(Criterion::Protocol)
            }
            ([f @ (Field::DPort | Field::SPort)], Some(Atom::Num(lo, hi))) if hi < 65536 => {
                Some(Criterion::Port {
                    dir: if *f == Field::DPort {
                        Dir::Dst
                    } else {
                        Dir::Src
                    },
                    range: PortRange {
                        lo: lo as u16,
                        hi: hi as u16,
                    },
                })
            }
            ([Field::Mark], Some(Atom::Num(v, _))) => Some(Criterion::Mark {
                value: v as u32,
                mask: mask.unwrap_or(0xffff_ffff) as u32,
            }),
            ([f @ (Field::IifName | Field::OifName)], Some(Atom::Str(s))) => {
                let name: Box<str> = match s.strip_suffix('*') {
                    Some(p) => format!("{p}+").into(),
                    None => s,
                };
                Some(if *f == Field::IifName {
                    Criterion::InIface(Iface(name))
                } else {
                    Criterion::OutIface(Iface(name))
                })
            }
            (_, Some(a)) => Some(Criterion::Lookup(Box::new(Lookup {
                key: fields.clone(),
                set: SetRef::Inline(Box::new([Element {
                    key: vec![a],
                    verdict: None,
                    comment: None,
                    line: 0,
                    expires: None,
                }])),
            }))),
            _ => None,
        };
        match c {
            Some(c) => r.m(c, negated, span_to(i)),
            None => r.m(other(&w[at..=i]), false, span_to(i)),
        }
        i + 1
    }
}

/// `meta mark | 0x4000`, `mark or 0x4000`, `0x1`…: the mark operation, and the words it used.
fn mark_set(rest: &[&str]) -> (Option<MarkOp>, usize) {
    let (start, _) = match rest {
        ["meta", "mark", ..] => (2, ()),
        ["mark", ..] => (1, ()),
        [v, ..] => {
            return (
                number(v).map(|v| MarkOp {
                    value: v as u32,
                    mask: 0xffff_ffff,
                    form: MarkForm::SetMark,
                }),
                1,
            )
        }
        [] => return (None, 0),
    };
    let (Some(op), Some(v)) = (rest.get(start), rest.get(start + 1).and_then(|v| number(v))) else {
        return (None, start);
    };
    let v = v as u32;
    let op = match *op {
        "|" | "or" => MarkOp {
            value: v,
            mask: v,
            form: MarkForm::OrMark,
        },
        "^" | "xor" => MarkOp {
            value: v,
            mask: 0,
            form: MarkForm::XorMark,
        },
        "&" | "and" => MarkOp {
            value: 0,
            mask: !v,
            form: MarkForm::AndMark,
        },
        _ => return (None, start + 2),
    };
    (Some(op), start + 2)
}

/// `10.0.0.1:80`, `[fd00::1]:80`, `10.0.0.1`: a NAT destination.
fn nat_range(w: &str) -> Option<NatRange> {
    let (addr, port) = if let Some(rest) = w.strip_prefix('[') {
        let (a, p) = rest.split_once(']')?;
        (a, p.strip_prefix(':'))
    } else if w.matches(':').count() == 1 {
        let (a, p) = w.split_once(':')?;
        (a, Some(p))
    } else {
        (w, None)
    };
    let addr = if addr.is_empty() {
        None
    } else {
        let a: IpAddr = addr.parse().ok()?;
        Some((a, a))
    };
    let ports = match port {
        Some(p) => {
            let (lo, hi) = p.split_once('-').unwrap_or((p, p));
            Some(PortRange {
                lo: lo.parse().ok()?,
                hi: hi.parse().ok()?,
            })
        }
        None => None,
    };
    Some(NatRange { addr, ports })
}

/// `ADDR . PORT` (a concatenation, as in `dnat ip addr . port to …` and its maps' data).
fn nat_pair(addr: &str, port: &str) -> Option<NatRange> {
    let a: IpAddr = addr.parse().ok()?;
    let p: u16 = port.parse().ok()?;
    Some(NatRange {
        addr: Some((a, a)),
        ports: Some(PortRange::single(p)),
    })
}

/// A map's data that is not a verdict: the address (and port) a `dnat … map` rewrites to.
fn map_data(words: &[&str]) -> Option<MapVerdict> {
    match words {
        [a, ".", p, ..] => nat_pair(a, p).map(MapVerdict::Nat),
        [a] => {
            let a: IpAddr = a.parse().ok()?;
            Some(MapVerdict::Nat(NatRange {
                addr: Some((a, a)),
                ports: None,
            }))
        }
        _ => None,
    }
}

/// A statement kptrace does not model, kept whole: it may or may not match.
fn other(words: &[&str]) -> Criterion {
    Criterion::Other(Box::new(OtherMatch {
        module: "nft".into(),
        option: words.first().copied().unwrap_or("").into(),
        args: words.iter().skip(1).map(|w| (*w).into()).collect(),
    }))
}

/// Where a rule written on one line ends (its length, blanks and a `# handle N` comment left
/// out) when that line can be read alone: braces balanced, quotes closed, no `;` joining another
/// statement, no `\` continuation. None otherwise.
fn simple_rule_end(b: &[u8]) -> Option<usize> {
    let mut end = b.len();
    let mut depth = 0i32;
    if memchr::memchr3(b'"', b'#', b'\\', b).is_none() {
        for at in memchr::memchr3_iter(b'{', b'}', b';', b) {
            match b[at] {
                b'{' => depth += 1,
                b'}' if depth > 0 => depth -= 1,
                _ => return None,
            }
        }
    } else {
        let mut quoted = false;
        let mut k = 0;
        while k < b.len() {
            let c = b[k];
            if quoted {
                match c {
                    b'\\' => k += 1,
                    b'"' => quoted = false,
                    _ => {}
                }
            } else {
                match c {
                    b'"' => quoted = true,
                    b'#' => {
                        end = k;
                        break;
                    }
                    b'{' => depth += 1,
                    b'}' if depth > 0 => depth -= 1,
                    b'}' | b';' | b'\\' => return None,
                    _ => {}
                }
            }
            k += 1;
        }
        if quoted {
            return None;
        }
    }
    if depth != 0 {
        return None;
    }
    while end > 0 && matches!(b[end - 1], b' ' | b'\t' | b'\r') {
        end -= 1;
    }
    (end > 0).then_some(end)
}

/// Where the rule of a line a chain's run holds starts: after `add rule [FAMILY] TABLE CHAIN`
/// in the transaction form, after the indentation in a listing.
fn rule_body(line: &str) -> usize {
    let skip_blank = |at: usize| {
        at + line[at..]
            .bytes()
            .take_while(|c| matches!(c, b' ' | b'\t'))
            .count()
    };
    let word = |at: usize| {
        let end = line[at..].find([' ', '\t']).map_or(line.len(), |n| at + n);
        (&line[at..end], skip_blank(end))
    };
    let start = skip_blank(0);
    let (verb, at) = word(start);
    let (what, at) = word(at);
    if verb != "add" || what != "rule" {
        return start;
    }
    let (first, at) = word(at);
    let at = if FAMILIES.contains(&first) {
        word(at).1
    } else {
        at
    };
    // The table's name was `first` or has just been passed; the chain's comes next.
    word(at).1
}

/// Reads a run of rule lines recorded while indexing (see [`RuleList`]).
fn read_run(source: &Source, line: u32, len: u32) -> Vec<RuleSlot> {
    (line..line + len)
        .map(|no| {
            let (start, end) = source.line_range(no);
            let text = &source.text[start..end];
            let body = start + rule_body(text);
            let len = simple_rule_end(&source.text.as_bytes()[body..end])
                .expect("a run only holds lines indexed as simple rules");
            RuleSlot::pending(no, Span::new(body, body + len), body as u32, None)
        })
        .collect()
}

/// Parses the rule a slot recorded: the text from `body_start` to the end of `span`.
pub fn slot_parser(
    source: &Source,
    _line: u32,
    span: Span,
    body_start: u32,
) -> Result<Rule, Vec<ParseError>> {
    let toks = lex_range(
        source.text.as_bytes(),
        body_start as usize,
        span.end as usize,
    )
    .map_err(|e| vec![e])?;
    let mut p = P::new(source, None, None);
    let mut rules = p.rule(&toks);
    if !p.errors.is_empty() {
        return Err(p.errors);
    }
    // One line, one rule: statements before its verdict are the target's `before`.
    debug_assert_eq!(rules.len(), 1);
    rules.pop().ok_or_else(|| {
        vec![ParseError::new(
            Span::new(body_start as usize, span.end as usize),
            ParseErrorKind::Empty,
        )]
    })
}

impl<'s> P<'s> {
    fn new(src: &'s Source, arc: Option<&'s Arc<Source>>, runs: Option<Arc<RunSource>>) -> Self {
        P {
            src,
            text: &src.text,
            toks: Vec::new(),
            i: 0,
            pos: 0,
            line_hint: (1, 0),
            arc,
            runs,
            tables: Vec::new(),
            errors: Vec::new(),
            cuts: Vec::new(),
            notes: Vec::new(),
            fragment: false,
            implicit: None,
            last_chain: None,
            released: 0,
            declared_in_window: false,
            add_form: false,
        }
    }
}

/// Reads nftables text into a rule set.
pub fn parse(source: Arc<Source>) -> Result<Ruleset, Vec<ParseError>> {
    let runs = Arc::new(RunSource {
        source: source.clone(),
        read: read_run,
    });
    let mut p = P::new(&source, Some(&source), Some(runs));
    p.run();
    if p.tables.is_empty() && p.errors.is_empty() {
        p.errors
            .push(ParseError::new(Span::new(0, 0), ParseErrorKind::Empty));
    }
    if !p.errors.is_empty() {
        return Err(p.errors);
    }
    let mut rs = Ruleset::new(source.clone(), InputFormat::Nft).with_parser(slot_parser);
    let all_v6 = p.tables.iter().all(|t| &*t.nft.family == "ip6");
    rs.family = if all_v6 { Family::Ipv6 } else { Family::Ipv4 };
    rs.fragment = p.fragment;
    for n in std::mem::take(&mut p.notes) {
        rs.note(n, None);
    }
    for (ti, chain, at, line) in std::mem::take(&mut p.cuts) {
        rs.cuts.push(crate::model::Cut {
            table: Some(p.tables[ti].table.name.to_string()),
            chain,
            at,
            line,
        });
    }
    for tb in p.tables {
        let TableB {
            mut table,
            mut nft,
            deleted,
            policies,
        } = tb;
        if !deleted.is_empty() {
            table.retain_chains(|id, _| !deleted.contains(&id));
        }
        // A chain is a base chain by its hook, not by an iptables name.
        for c in table.chains.iter_mut().filter(|c| c.builtin) {
            c.builtin = false;
            c.policy = None;
        }
        for b in &nft.bases {
            if let Some(id) = table.id(&b.chain) {
                let c = table.get_mut(id);
                c.builtin = true;
                c.policy = Some(policies.get(&id).copied().unwrap_or(Policy::Accept));
            }
        }
        for set in nft.sets.values_mut() {
            set.index();
        }
        table.nft = Some(Box::new(nft));
        table.committed = true;
        rs.tables.push(table);
    }
    // A paste that leaves chains out still names them: their rules are not known.
    if rs.fragment {
        for ti in 0..rs.tables.len() {
            let table = &rs.tables[ti];
            let mut missing: Vec<String> = table
                .chains
                .iter()
                .flat_map(|c| {
                    rs.rules(c)
                        .flat_map(|r| r.jump_targets(table))
                        .map(|(t, _)| t.to_string())
                        .collect::<Vec<_>>()
                })
                .filter(|n| table.id(n).is_none())
                .collect();
            missing.sort();
            missing.dedup();
            if !missing.is_empty() {
                let shown: Vec<String> = missing.iter().take(6).cloned().collect();
                rs.note(
                    format!(
                        "{} chain{} jumped to but not in the paste: {}{}",
                        missing.len(),
                        if missing.len() == 1 { " is" } else { "s are" },
                        shown.join(", "),
                        if missing.len() > 6 { ", …" } else { "" }
                    ),
                    None,
                );
            }
            let name = rs.tables[ti].name.to_string();
            for n in missing {
                rs.tables[ti].declare(Chain::new(&n, ChainOrigin::Implicit, &name));
            }
        }
    }
    let late = rs.take_errors();
    if !late.is_empty() && rs.fragment {
        return Err(late);
    }
    Ok(rs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Ruleset {
        parse(Source::new("t", text.to_string())).expect("parses")
    }

    /// Every rule of every chain, as the model holds it once read.
    fn rules(rs: &Ruleset) -> Vec<(String, Vec<Rule>)> {
        rs.tables
            .iter()
            .flat_map(|t| &t.chains)
            .map(|c| (c.name.to_string(), rs.rules(c).cloned().collect()))
            .collect()
    }

    #[test]
    fn lines_read_alone_are_exactly_the_simple_ones() {
        let end = |s: &str| simple_rule_end(s.as_bytes());
        assert_eq!(end("ip daddr 10.0.0.1 accept"), Some(24));
        assert_eq!(end("ip daddr 10.0.0.1 accept   # handle 7"), Some(24));
        assert_eq!(
            end("numgen random mod 2 vmap { 0 : goto a, 1 : goto b }"),
            Some(51)
        );
        assert_eq!(end(r#"comment "a # b; {" accept"#), Some(25));
        // Two statements, an unclosed brace or quote, a continuation: read with the rest.
        assert_eq!(end("ip daddr 10.0.0.1 accept; drop"), None);
        assert_eq!(end("ip saddr { 10.0.0.1,"), None);
        assert_eq!(end(r#"comment "open"#), None);
        assert_eq!(end("ip saddr 10.0.0.1 \\"), None);
        assert_eq!(end("accept }"), None);
        // A statement before the verdict is one rule too.
        assert_eq!(end("meta mark set 0x1 accept"), Some(24));
        assert_eq!(end("ip daddr @reset-ips accept"), Some(26));
    }

    /// The transaction form read line by line and the same rules in blocks (which also take the
    /// deferred path) give the same rules; a statement before a verdict stays on its rule; a
    /// rule inserted after other lines keeps its place.
    #[test]
    fn deferred_rules_read_as_the_statement_parser_reads_them() {
        let add = "add table ip t\n\
            add chain ip t a\n\
            add chain ip t b\n\
            add rule ip t a ip daddr 10.0.0.1 tcp dport 80 jump b\n\
            add rule ip t b meta mark set 0x4000 accept\n\
            add rule ip t b ip saddr != 10.0.0.0/8 counter packets 1 bytes 2 drop\n\
            add rule ip t a numgen random mod 3 vmap { 0-1 : goto b, 2 : jump b }\n\
            insert rule ip t a ct state invalid drop\n";
        let list = "table ip t {\n\
            \tchain a {\n\
            \t\tct state invalid drop\n\
            \t\tip daddr 10.0.0.1 tcp dport 80 jump b # handle 3\n\
            \t\tnumgen random mod 3 vmap { 0-1 : goto b, 2 : jump b }\n\
            \t}\n\
            \tchain b {\n\
            \t\tmeta mark set 0x4000 accept\n\
            \t\tip saddr != 10.0.0.0/8 counter packets 1 bytes 2 drop\n\
            \t}\n\
            }\n";
        let (a, l) = (read(add), read(list));
        let strip = |v: Vec<(String, Vec<Rule>)>| -> Vec<(String, Vec<String>)> {
            v.into_iter()
                .map(|(n, rs)| {
                    let shown = rs
                        .iter()
                        .map(|r| {
                            format!(
                                "{:?} {:?}",
                                r.matches
                                    .iter()
                                    .map(|m| (&m.criterion, m.negated))
                                    .collect::<Vec<_>>(),
                                r.target.as_ref().map(|t| (&t.before, &t.kind, t.goto))
                            )
                        })
                        .collect();
                    (n, shown)
                })
                .collect()
        };
        // Elements know their line, which differs between the two texts.
        let unlined = |v: Vec<(String, Vec<String>)>| -> Vec<(String, Vec<String>)> {
            v.into_iter()
                .map(|(n, rs)| {
                    let rs = rs
                        .into_iter()
                        .map(|r| {
                            r.split("line: ")
                                .enumerate()
                                .map(|(i, p)| match i {
                                    0 => p.to_string(),
                                    _ => p
                                        .trim_start_matches(|c: char| c.is_ascii_digit())
                                        .to_string(),
                                })
                                .collect::<Vec<_>>()
                                .join("line: ")
                        })
                        .collect();
                    (n, rs)
                })
                .collect()
        };
        let (ra, rl) = (unlined(strip(rules(&a))), unlined(strip(rules(&l))));
        assert_eq!(ra, rl);
        assert_eq!(ra[0].1.len(), 3, "{ra:?}");
        assert!(ra[0].1[0].contains("Invalid"), "{ra:?}");
        // `meta mark set … accept`: one rule, the mark before the verdict.
        assert_eq!(ra[1].1.len(), 2, "{ra:?}");
        assert!(
            ra[1].1[0].contains("[Mark(") && ra[1].1[0].contains("Accept"),
            "{ra:?}"
        );
    }

    /// A deferred rule that does not parse is reported when it is read, with its place.
    #[test]
    fn a_bad_deferred_rule_is_an_error_when_read() {
        let text = "add table ip t\nadd chain ip t a\nadd rule ip t a dnat to not-an-address\n";
        let rs = read(text);
        let c = rs.chain("t", "a").unwrap();
        let r = rs.rules(c).next().unwrap();
        assert!(r.invalid);
        let errs = rs.take_errors();
        assert_eq!(errs.len(), 1);
        assert_eq!(rs.source.line_of(errs[0].span.start), 3);
    }
}
