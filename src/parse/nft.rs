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
use crate::model::target::{MarkForm, MarkOp, NatRange};
use crate::model::{
    Chain, ChainOrigin, Criterion, Family, InputFormat, Match, Policy, Protocol, Rule, RuleSlot,
    Ruleset, Source, Span, Table, Target, TargetKind,
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

fn lex(text: &str) -> Result<Vec<Tok>, ParseError> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(text.len() / 6);
    let mut i = 0usize;
    let tok = |k, s: usize, e: usize| Tok {
        k,
        start: s as u32,
        end: e as u32,
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                out.push(tok(K::Newline, i, i + 1));
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'\\' if b.get(i + 1) == Some(&b'\n') => i += 2,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' => {
                out.push(tok(K::LBrace, i, i + 1));
                i += 1;
            }
            b'}' => {
                out.push(tok(K::RBrace, i, i + 1));
                i += 1;
            }
            b';' => {
                out.push(tok(K::Semi, i, i + 1));
                i += 1;
            }
            b',' => {
                out.push(tok(K::Comma, i, i + 1));
                i += 1;
            }
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
                i += 1;
                out.push(tok(K::Str, s, i));
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
                out.push(tok(K::Word, s, i));
            }
        }
    }
    Ok(out)
}

/// A table while it is read: chains keep their rules until the model's table is built.
struct TableB {
    name: String,
    nft: NftTable,
    chains: Vec<(String, u32, Vec<Rule>)>,
    index: HashMap<String, usize>,
}

impl TableB {
    fn chain(&mut self, name: &str, line: u32) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.chains.push((name.to_string(), line, Vec::new()));
        self.index.insert(name.to_string(), self.chains.len() - 1);
        self.chains.len() - 1
    }
}

struct P<'s> {
    src: &'s Source,
    text: &'s str,
    toks: Vec<Tok>,
    i: usize,
    tables: Vec<TableB>,
    errors: Vec<ParseError>,
    /// Base chains' policies, by (table, chain).
    policies: HashMap<(usize, String), Policy>,
    /// Chains a `delete chain` removed.
    deleted: Vec<(usize, String)>,
    /// What a paste left out: cut marks (`...`) in chains (table, chain, rule index, line), and
    /// notes on the rest (a block the paste ends inside, chains outside any table).
    cuts: Vec<(usize, String, u32, u32)>,
    notes: Vec<String>,
    fragment: bool,
    /// The table of a paste that starts inside one.
    implicit: Option<usize>,
    /// Where each chain is declared: the name after `chain` or `add chain`.
    decls: HashMap<(usize, String), Span>,
}

const FAMILIES: &[&str] = &["ip", "ip6", "inet", "arp", "bridge", "netdev"];

impl<'s> P<'s> {
    fn s(&self, t: Tok) -> &'s str {
        &self.text[t.start as usize..t.end as usize]
    }
    fn peek(&self) -> Option<Tok> {
        self.toks.get(self.i).copied()
    }
    fn word(&self) -> Option<&'s str> {
        self.peek().filter(|t| t.k == K::Word).map(|t| self.s(t))
    }
    fn line(&self, t: Tok) -> u32 {
        self.src.line_of(t.start)
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
        let key = match self.tables.iter().position(|t| t.name == name) {
            Some(i) if *self.tables[i].nft.family == *family => return i,
            Some(_) => format!("{family} {name}"),
            None => name.to_string(),
        };
        if let Some(i) = self.tables.iter().position(|t| t.name == key) {
            return i;
        }
        self.tables.push(TableB {
            name: key,
            nft: NftTable {
                family: family.into(),
                ..NftTable::default()
            },
            chains: Vec::new(),
            index: HashMap::new(),
        });
        self.tables.len() - 1
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
        loop {
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
                self.ends_inside(format!("table `{}`", self.tables[ti].name));
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
            let first = self.toks.get(self.i + 1).map(|n| self.s(*n)).unwrap_or("");
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
                let Some(name) = self.peek().filter(|t| t.k == K::Word || t.k == K::Str) else {
                    self.err(t, ParseErrorKind::MissingValue(w.into()));
                    return;
                };
                self.i += 1;
                let name = unquote(self.s(name)).to_string();
                if !self.peek().is_some_and(|t| t.k == K::LBrace) {
                    // A paste cut right after the name.
                    if self.toks[self.i..].iter().all(|t| t.k == K::Newline) {
                        self.i = self.toks.len();
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
                    let line = self.line(t);
                    let ci = self.tables[ti].chain(&name, line);
                    let at = self.toks[self.i - 2];
                    self.decls
                        .entry((ti, name.clone()))
                        .or_insert(Span::new(t.start as usize, at.end as usize));
                    self.chain_body(ti, ci, true);
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

    /// A chain's lines, up to and with its `}` (`block`) or the end of the statement.
    fn chain_body(&mut self, ti: usize, ci: usize, block: bool) {
        loop {
            if block {
                self.skip_blank();
            } else {
                while self.peek().is_some_and(|t| t.k == K::Newline) {
                    self.i += 1;
                }
            }
            let Some(t) = self.peek() else {
                if block {
                    let name = self.tables[ti].chains[ci].0.clone();
                    self.ends_inside(format!("chain `{name}`"));
                }
                return;
            };
            if t.k == K::RBrace {
                self.i += 1;
                return;
            }
            if !block && t.k == K::Newline {
                return;
            }
            if t.k == K::Word && is_cut(self.s(t)) {
                let at = self.tables[ti].chains[ci].2.len() as u32;
                let name = self.tables[ti].chains[ci].0.clone();
                self.cuts.push((ti, name, at, self.line(t)));
                self.fragment = true;
                self.i += 1;
                continue;
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
                    let name = self.tables[ti].chains[ci].0.clone();
                    let policy = match p {
                        Some("drop") => Policy::Drop,
                        _ => Policy::Accept,
                    };
                    self.policies.insert((ti, name), policy);
                }
                "comment" | "devices" | "flags" => {}
                _ => {
                    let rules = self.rule(&st);
                    self.tables[ti].chains[ci].2.extend(rules);
                }
            }
        }
    }

    fn base_chain(&mut self, ti: usize, ci: usize, st: &[Tok]) {
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
        let chain = self.tables[ti].chains[ci].0.clone();
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
        let mut i = 0;
        while i < words.len() {
            match words[i] {
                "." => {}
                "timeout" | "expires" | "counter" | "packets" | "bytes" => {
                    i += 1;
                }
                "comment" => {
                    comment = words.get(i + 1).map(|c| unquote(c).into());
                    i += 1;
                }
                ":" => {
                    verdict = map_verdict(&words[i + 1..]);
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
                for c in &mut self.tables[ti].chains {
                    c.2.clear();
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
        let name_s = unquote(self.s(name)).to_string();
        match (verb, what) {
            ("add" | "create", "chain") => {
                let line = self.line(name);
                let ci = self.tables[ti].chain(&name_s, line);
                self.decls
                    .entry((ti, name_s.clone()))
                    .or_insert(Span::new(verb_tok.start as usize, name.end as usize));
                if self.peek().is_some_and(|t| t.k == K::LBrace) {
                    self.i += 1;
                    self.chain_body(ti, ci, true);
                }
            }
            ("flush", "chain") => {
                let line = self.line(name);
                let ci = self.tables[ti].chain(&name_s, line);
                self.tables[ti].chains[ci].2.clear();
            }
            ("delete" | "destroy", "chain") => {
                if let Some(ci) = self.tables[ti].index.get(&name_s).copied() {
                    self.tables[ti].chains[ci].2.clear();
                    self.deleted.push((ti, name_s));
                }
            }
            ("add" | "insert" | "replace" | "create", "rule") => {
                let line = self.line(name);
                let ci = self.tables[ti].chain(&name_s, line);
                let mut st = self.statement();
                // `add rule t c handle N …` / `position N`: where in the chain, not what.
                if st
                    .first()
                    .is_some_and(|t| matches!(self.s(*t), "handle" | "position" | "index"))
                {
                    st.drain(..2.min(st.len()));
                }
                let rules = self.rule(&st);
                let chain = &mut self.tables[ti].chains[ci].2;
                if verb == "insert" {
                    for (k, r) in rules.into_iter().enumerate() {
                        chain.insert(k, r);
                    }
                } else {
                    chain.extend(rules);
                }
                return;
            }
            ("add" | "create", "set" | "map") => {
                let mut set = self.tables[ti]
                    .nft
                    .sets
                    .remove(name_s.as_str())
                    .unwrap_or_else(|| NamedSet {
                        name: name_s.clone().into(),
                        is_map: what == "map",
                        line: self.line(name),
                        ..NamedSet::default()
                    });
                if self.peek().is_some_and(|t| t.k == K::LBrace) {
                    self.i += 1;
                    self.set_body(&mut set, true);
                }
                self.tables[ti].nft.sets.insert(name_s.into(), set);
            }
            ("flush", "set" | "map") => {
                if let Some(s) = self.tables[ti].nft.sets.get_mut(name_s.as_str()) {
                    s.elements.clear();
                }
            }
            ("delete" | "destroy", "set" | "map") => {
                self.tables[ti].nft.sets.remove(name_s.as_str());
            }
            ("add" | "create" | "delete" | "destroy", "element")
                if self.peek().is_some_and(|t| t.k == K::LBrace) =>
            {
                let els = self.elements();
                let line = self.line(name);
                let set = self.tables[ti]
                    .nft
                    .sets
                    .entry(name_s.clone().into())
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
    /// A statement that changes the packet before the verdict (`meta mark set … accept`).
    first: Option<TargetKind>,
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
            if self.first.is_none() {
                self.first = Some(prev);
            }
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
            first: None,
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
                    if w.get(i) == Some(&"to") {
                        i += 1;
                    }
                    let to = w.get(i).and_then(|a| nat_range(a)).map(Box::new);
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
                    let modulus = w
                        .iter()
                        .skip(i)
                        .position(|x| *x == "mod")
                        .and_then(|k| w.get(i + k + 1))
                        .and_then(|n| number(n))
                        .unwrap_or(1) as u32;
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
        let rule = |matches: Vec<Match>, kind: Option<TargetKind>, goto: bool| Rule {
            line: self.src.line_of(first.start),
            span,
            counters: None,
            matches: matches.into_boxed_slice(),
            target: kind.map(|kind| Target { goto, kind, span }),
            invalid: false,
        };
        match r.first {
            Some(before) => vec![
                rule(r.matches.clone(), Some(before), false),
                rule(r.matches, r.target, r.goto),
            ],
            None => vec![rule(r.matches, r.target, r.goto)],
        }
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
            let saved = (std::mem::take(&mut self.toks), self.i);
            self.toks = st[at..=end].to_vec();
            self.i = 0;
            let els = self.elements();
            self.toks = saved.0;
            self.i = saved.1;
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

/// A statement kptrace does not model, kept whole: it may or may not match.
fn other(words: &[&str]) -> Criterion {
    Criterion::Other(Box::new(OtherMatch {
        module: "nft".into(),
        option: words.first().copied().unwrap_or("").into(),
        args: words.iter().skip(1).map(|w| (*w).into()).collect(),
    }))
}

/// Reads nftables text into a rule set.
pub fn parse(source: Arc<Source>) -> Result<Ruleset, Vec<ParseError>> {
    let text: &str = &source.text;
    let toks = lex(text).map_err(|e| vec![e])?;
    let mut p = P {
        src: &source,
        text,
        toks,
        i: 0,
        tables: Vec::new(),
        errors: Vec::new(),
        policies: HashMap::new(),
        deleted: Vec::new(),
        cuts: Vec::new(),
        notes: Vec::new(),
        fragment: false,
        implicit: None,
        decls: HashMap::new(),
    };
    p.run();
    if p.tables.is_empty() && p.errors.is_empty() {
        p.errors
            .push(ParseError::new(Span::new(0, 0), ParseErrorKind::Empty));
    }
    if !p.errors.is_empty() {
        return Err(p.errors);
    }
    let mut rs = Ruleset::new(source.clone(), InputFormat::Nft);
    let all_v6 = p.tables.iter().all(|t| &*t.nft.family == "ip6");
    rs.family = if all_v6 { Family::Ipv6 } else { Family::Ipv4 };
    let policies = std::mem::take(&mut p.policies);
    let decls = std::mem::take(&mut p.decls);
    let deleted = std::mem::take(&mut p.deleted);
    rs.fragment = p.fragment;
    for n in std::mem::take(&mut p.notes) {
        rs.note(n, None);
    }
    for (ti, chain, at, line) in std::mem::take(&mut p.cuts) {
        rs.cuts.push(crate::model::Cut {
            table: Some(p.tables[ti].name.clone()),
            chain,
            at,
            line,
        });
    }
    for (ti, tb) in p.tables.into_iter().enumerate() {
        let mut table = Table::new(&tb.name, None);
        for (name, _line, rules) in tb.chains {
            if deleted.iter().any(|(t, n)| *t == ti && *n == name) {
                continue;
            }
            let mut chain = Chain::new(&name, ChainOrigin::Declared, &tb.name);
            chain.policy = policies
                .get(&(ti, name.clone()))
                .copied()
                .or_else(|| tb.nft.base(&name).map(|_| Policy::Accept));
            chain.builtin = tb.nft.base(&name).is_some();
            chain.decl = decls.get(&(ti, name.clone())).copied();
            for r in rules {
                chain.push_rule(RuleSlot::ready(r));
            }
            table.declare(chain);
        }
        let mut nft = tb.nft;
        for set in nft.sets.values_mut() {
            set.index();
        }
        table.nft = Some(Box::new(nft));
        // A paste that leaves chains out still names them: their rules are not known.
        if rs.fragment {
            let named: Vec<String> = table
                .chains
                .iter()
                .flat_map(|c| {
                    rs.rules(c)
                        .flat_map(|r| r.jump_targets(&table))
                        .map(|(t, _)| t.to_string())
                        .collect::<Vec<_>>()
                })
                .collect();
            let mut missing: Vec<String> = named
                .into_iter()
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
            for n in missing {
                table.declare(Chain::new(&n, ChainOrigin::Implicit, &tb.name));
            }
        }
        table.committed = true;
        rs.tables.push(table);
    }
    Ok(rs)
}
