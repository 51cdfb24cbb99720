//! Turns the tokens of one rule specification (`-d 10.0.0.1/32 -p tcp -m tcp --dport 80 -j X`) into a
//! typed [`Rule`].
//!
//! Options are read as iptables reads them: basic options (`-s`, `-d`, `-p`, `-i`, `-o`) anywhere;
//! other options belong to the most recently loaded `-m` module that knows them, else to the module
//! the protocol loads implicitly (`-p tcp --dport 80`). That makes both orders work: the kernel's
//! normalised one and the one kube-proxy writes (`-m tcp -p tcp -d … --dport …`). Unknown modules and
//! targets are kept verbatim.

use super::extensions::{self, Arity};
use super::lexer::{tokenize, Token};
use super::value;
use crate::error::{ParseError, ParseErrorKind};
use crate::model::criterion::*;
use crate::model::target::*;
use crate::model::{Rule, Span};

/// Parses the specification `text` (starting at byte `base`) of a rule on `line`.
pub fn parse_rule(
    text: &str,
    base: usize,
    line: u32,
    line_span: Span,
) -> Result<Rule, Vec<ParseError>> {
    let tokens = tokenize(text, base).map_err(|e| vec![e])?;
    let mut p = SpecParser {
        toks: &tokens,
        i: 0,
        matches: Vec::with_capacity(tokens.len() / 2),
        modules: Vec::new(),
        last_instance: None,
        proto: None,
        target: None,
        errors: Vec::new(),
        stat: None,
        recent: None,
        counters: None,
    };
    p.run();
    if !p.errors.is_empty() {
        return Err(p.errors);
    }
    Ok(Rule {
        line,
        span: line_span,
        counters: p.counters,
        matches: p.matches.into_boxed_slice(),
        target: p.target,
        invalid: false,
    })
}

struct StatAcc {
    /// Where in the rule's criteria the module stands (criteria keep source order).
    pos: usize,
    start: Span,
    negated: bool,
    mode: Option<String>,
    threshold: Option<u32>,
    every: Option<u32>,
    packet: u32,
    /// A value was already reported as bad: do not also report it missing.
    failed: bool,
}

struct RecentAcc {
    pos: usize,
    start: Span,
    negated: bool,
    r: Recent,
    mode_set: bool,
}

/// A module a rule loaded (`-m NAME`): its options (None when iptables does not ship it), found
/// once, and whether any option of the rule went to it.
struct Loaded<'a> {
    name: std::borrow::Cow<'a, str>,
    opts: Option<extensions::Opts>,
    used: bool,
}

struct SpecParser<'t, 'a> {
    toks: &'t [Token<'a>],
    i: usize,
    matches: Vec<Match>,
    /// Modules loaded so far (`-m NAME`), most recent last.
    modules: Vec<Loaded<'a>>,
    /// The module instance (index into `modules`) of the last criterion pushed.
    last_instance: Option<usize>,
    proto: Option<Protocol>,
    target: Option<Target>,
    errors: Vec<ParseError>,
    stat: Option<StatAcc>,
    recent: Option<RecentAcc>,
    counters: Option<crate::model::Counters>,
}

const TCP_FLAG_NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];

fn tcp_flag_set(s: &str) -> Option<u8> {
    let mut bits = 0u8;
    for f in s.split(',') {
        bits |= match f.to_ascii_uppercase().as_str() {
            "ALL" => 0xff,
            "NONE" => 0,
            f => 1 << TCP_FLAG_NAMES.iter().position(|n| *n == f)?,
        };
    }
    Some(bits)
}

impl<'a> SpecParser<'_, 'a> {
    fn peek(&self) -> Option<&Token<'a>> {
        self.toks.get(self.i)
    }

    fn err(&mut self, span: Span, kind: ParseErrorKind) {
        self.errors.push(ParseError::new(span, kind));
    }

    /// The value after option `opt` (at index `self.i - 1`); handles the old `--opt ! value` form.
    fn value(&mut self, opt: &Token<'a>, negated: &mut bool) -> Option<Token<'a>> {
        if self.peek().is_some_and(|t| t.is("!")) {
            *negated = !*negated;
            self.i += 1;
        }
        match self.toks.get(self.i) {
            Some(t) if !t.is_option() || t.quoted => {
                self.i += 1;
                Some(t.clone())
            }
            _ => {
                self.err(opt.span, ParseErrorKind::MissingValue(opt.text.to_string()));
                None
            }
        }
    }

    /// Whether the next word is no value: the end, an option, or a negation.
    fn no_value_next(&self) -> bool {
        self.peek()
            .is_none_or(|t| (t.is_option() || t.is("!")) && !t.quoted)
    }

    /// Values up to the next option (for verbatim unknown options and sloppy unquoted comments).
    fn values_until_option(&mut self) -> Vec<Token<'a>> {
        let mut v = Vec::new();
        while !self.no_value_next() {
            v.push(self.toks[self.i].clone());
            self.i += 1;
        }
        v
    }

    fn push(&mut self, negated: bool, criterion: Criterion, span: Span) {
        self.push_from(negated, criterion, span, None);
    }

    /// Pushes a criterion that an option of module instance `instance` (index into `modules`)
    /// gave: consecutive options of one `-m` stay one match (`-m limit --limit 5/min
    /// --limit-burst 10` is one rate limiter, not two).
    fn push_from(
        &mut self,
        negated: bool,
        criterion: Criterion,
        span: Span,
        instance: Option<usize>,
    ) {
        // Statistic and recent criteria are placed when their `-m` ends; until then the order of
        // the criteria is not final.
        let continues = instance.is_some()
            && self.last_instance == instance
            && self.stat.is_none()
            && self.recent.is_none()
            && !self.matches.is_empty();
        self.matches.push(Match {
            negated,
            continues,
            criterion,
            span,
        });
        self.last_instance = instance;
    }

    /// Keeps an option of a module kptrace does not model, verbatim.
    fn push_other(
        &mut self,
        negated: bool,
        module: &str,
        option: &str,
        args: Vec<Box<str>>,
        span: Span,
        instance: Option<usize>,
    ) {
        let other = Criterion::Other(Box::new(OtherMatch {
            module: module.into(),
            option: option.into(),
            args,
        }));
        // A module given no option is one match of its own.
        let instance = instance.filter(|_| !option.is_empty());
        self.push_from(negated, other, span, instance);
    }

    fn run(&mut self) {
        let mut negate = false;
        let mut neg_span: Option<Span> = None;
        while let Some(tok) = self.peek().cloned() {
            self.i += 1;
            if tok.is("!") {
                negate = true;
                neg_span = Some(tok.span);
                continue;
            }
            let start = neg_span.take().unwrap_or(tok.span);
            let neg = std::mem::take(&mut negate);
            if tok.quoted || !tok.is_option() {
                self.err(tok.span, ParseErrorKind::Unexpected(tok.text.to_string()));
                continue;
            }
            match &*tok.text {
                "-m" | "--match" => {
                    self.finish_accumulators();
                    let mut n = false;
                    if let Some(m) = self.value(&tok, &mut n) {
                        let opts = extensions::match_opts(&m.text);
                        self.modules.push(Loaded {
                            name: m.text.clone(),
                            opts,
                            used: opts.is_none(),
                        });
                        if opts.is_none() {
                            self.unknown_module_options(&m, start);
                        }
                    }
                }
                "-j" | "--jump" | "-g" | "--goto" => {
                    self.finish_accumulators();
                    let mut n = false;
                    if let Some(name) = self.value(&tok, &mut n) {
                        if self.target.is_some() {
                            self.err(tok.span, ParseErrorKind::TwoTargets);
                        }
                        let goto = matches!(&*tok.text, "-g" | "--goto");
                        self.parse_target(&name, goto, start);
                    }
                }
                "-c" | "--set-counters" => {
                    let mut n = false;
                    let p = self.value(&tok, &mut n);
                    let b = self.value(&tok, &mut n);
                    if let (Some(p), Some(b)) = (p, b) {
                        match (p.text.parse(), b.text.parse()) {
                            (Ok(packets), Ok(bytes)) => {
                                self.counters = Some(crate::model::Counters { packets, bytes })
                            }
                            _ => self.err(
                                p.span.join(b.span),
                                ParseErrorKind::BadCounters(format!("{} {}", p.text, b.text)),
                            ),
                        }
                    }
                }
                _ => self.option(&tok, neg, start),
            }
        }
        self.finish_accumulators();
        // A module loaded with no option of its own still tests something (`-m limit` alone is a
        // rate limit of 3/hour, `-m socket` needs a socket), except a protocol's module, which
        // only repeats `-p`.
        for i in 0..self.modules.len() {
            let m = &self.modules[i];
            let protocol = matches!(
                &*m.name,
                "tcp" | "udp" | "udplite" | "sctp" | "dccp" | "icmp" | "icmp6" | "icmpv6"
            );
            if !m.used && !protocol {
                let name = m.name.clone();
                self.modules[i].used = true;
                let span = self.toks.first().map(|t| t.span).unwrap_or(Span::NONE);
                self.push_other(false, &name, "", Vec::new(), span, Some(i));
            }
        }
    }

    fn basic(&mut self, tok: &Token<'a>, mut neg: bool, start: Span) -> bool {
        let opt = &*tok.text;
        let kind = match opt {
            "-s" | "--source" | "--src" => 's',
            "-d" | "--destination" | "--dst" => 'd',
            "-p" | "--protocol" => 'p',
            "-i" | "--in-interface" => 'i',
            "-o" | "--out-interface" => 'o',
            "-f" | "--fragment" => 'f',
            _ => return false,
        };
        if kind == 'f' {
            self.push(neg, Criterion::Fragment, start.join(tok.span));
            return true;
        }
        let Some(v) = self.value(tok, &mut neg) else {
            return true;
        };
        let span = start.join(v.span);
        let c = match kind {
            's' | 'd' => match value::address(&v.text) {
                Ok(n) if kind == 's' => Criterion::Source(n),
                Ok(n) => Criterion::Destination(n),
                Err(e) => match value::masked_address(&v.text) {
                    Some((addr, mask)) => Criterion::Masked(Box::new(Masked {
                        dir: if kind == 's' { Dir::Src } else { Dir::Dst },
                        addr,
                        mask,
                    })),
                    None => return self.fail(v.span, e),
                },
            },
            'p' => match Protocol::parse(&v.text) {
                Some(p) => {
                    self.proto = Some(p);
                    Criterion::Protocol(p)
                }
                None => return self.fail(v.span, ParseErrorKind::BadProtocol(v.text.to_string())),
            },
            'i' => Criterion::InIface(Iface(v.text.as_ref().into())),
            _ => Criterion::OutIface(Iface(v.text.as_ref().into())),
        };
        self.push(neg, c, span);
        true
    }

    fn fail(&mut self, span: Span, kind: ParseErrorKind) -> bool {
        self.err(span, kind);
        true
    }

    fn option(&mut self, tok: &Token<'a>, neg: bool, start: Span) {
        if self.basic(tok, neg, start) {
            return;
        }
        let opt: &str = &tok.text;
        // The most recently loaded module that knows the option; else the protocol's implicit module.
        // As getopt_long: an option's whole name before an abbreviation of another's. Each
        // module's options were found once, at its `-m`.
        let (mut exact, mut abbreviated) = (None, None);
        for (i, m) in self.modules.iter().enumerate().rev() {
            match m.opts.and_then(|o| extensions::option_in(o, opt)) {
                Some(f) if f.0 == opt => {
                    exact = Some((i, f));
                    break;
                }
                Some(f) => {
                    abbreviated.get_or_insert((i, f));
                }
                None => {}
            }
        }
        let found = exact.or(abbreviated);
        let resolved = match found {
            Some((i, f)) => {
                self.modules[i].used = true;
                Some((self.modules[i].name.clone(), Some(i), f))
            }
            // The module the protocol loads implicitly (`-p tcp --dport 80`).
            None => self.proto.and_then(|p| {
                let name = p.to_string();
                let f =
                    extensions::match_opts(&name).and_then(|o| extensions::option_in(o, opt))?;
                Some((std::borrow::Cow::Owned(name), None, f))
            }),
        };
        if let Some((module, instance, (full, arity))) = resolved {
            // An abbreviated option (`--dport` for multiport's `--dports`) by its full name; the
            // usual whole name is passed on as it is (no copy on the path of every option).
            if full != opt {
                let tok = Token {
                    text: std::borrow::Cow::Borrowed(full),
                    ..tok.clone()
                };
                return self.module_option(&module, &tok, neg, start, instance, arity);
            }
            return self.module_option(&module, tok, neg, start, instance, arity);
        }
        // Only target options are left; a target without a model keeps them (see parse_target).
        if let Some(Target {
            kind: TargetKind::Other { .. } | TargetKind::ConnMark { .. } | TargetKind::Log { .. },
            ..
        }) = &self.target
        {
            let vals: Vec<Box<str>> = self
                .values_until_option()
                .into_iter()
                .map(|t| t.text.as_ref().into())
                .collect();
            if let Some(Target {
                kind:
                    TargetKind::Other { args, .. }
                    | TargetKind::ConnMark { args }
                    | TargetKind::Log { args },
                ..
            }) = &mut self.target
            {
                if neg {
                    args.push("!".into());
                }
                args.push(opt.into());
                args.extend(vals);
            }
            return;
        }
        // An option of a loaded module that this table does not list (a newer iptables than the
        // table): iptables accepted it, so it is kept with the last module loaded, verbatim.
        if let Some(i) = self
            .modules
            .len()
            .checked_sub(1)
            .filter(|_| opt.starts_with("--"))
        {
            self.modules[i].used = true;
            let module = self.modules[i].name.clone();
            let args = self.values_until_option();
            let end = args.last().map(|a| a.span).unwrap_or(tok.span);
            let args = args.iter().map(|a| a.text.as_ref().into()).collect();
            self.push_other(neg, &module, opt, args, start.join(end), Some(i));
            return;
        }
        self.err(tok.span, ParseErrorKind::UnknownOption(opt.to_string()));
    }

    fn unknown_module_options(&mut self, module: &Token<'a>, start: Span) {
        let instance = Some(self.modules.len() - 1);
        let mut any = false;
        loop {
            let neg = self.peek().is_some_and(|t| t.is("!"));
            let at = self.i + neg as usize;
            let Some(t) = self.toks.get(at) else { break };
            if !t.is_option() || !t.text.starts_with("--") {
                break;
            }
            let t = t.clone();
            self.i = at + 1;
            let args = self.values_until_option();
            let end = args.last().map(|a| a.span).unwrap_or(t.span);
            let args = args.iter().map(|a| a.text.as_ref().into()).collect();
            self.push_other(neg, &module.text, &t.text, args, t.span.join(end), instance);
            any = true;
        }
        if !any {
            self.push_other(
                false,
                &module.text,
                "",
                Vec::new(),
                start.join(module.span),
                instance,
            );
        }
    }

    fn module_option(
        &mut self,
        module: &str,
        tok: &Token<'a>,
        mut neg: bool,
        start: Span,
        instance: Option<usize>,
        arity: Arity,
    ) {
        let opt = &*tok.text;
        if module == "statistic" {
            return self.statistic_option(tok, neg, start);
        }
        if module == "recent" {
            return self.recent_option(tok, neg, start, arity);
        }
        if arity == Arity::Flag {
            let c = match opt {
                "--syn" => Criterion::TcpFlags {
                    mask: 0b0001_0111, // FIN,SYN,RST,ACK
                    comp: 0b0000_0010, // SYN
                },
                "--physdev-is-in" => Criterion::Physdev(Physdev::IsIn),
                "--physdev-is-out" => Criterion::Physdev(Physdev::IsOut),
                "--physdev-is-bridged" => Criterion::Physdev(Physdev::IsBridged),
                "--limit-iface-in" => Criterion::AddrTypeLimitIface { dir: Dir::Src },
                "--limit-iface-out" => Criterion::AddrTypeLimitIface { dir: Dir::Dst },
                _ => {
                    let span = start.join(tok.span);
                    return self.push_other(neg, module, opt, Vec::new(), span, instance);
                }
            };
            self.push_from(neg, c, start.join(tok.span), instance);
            return;
        }
        if opt == "--comment" {
            // iptables-save quotes multi-word comments; some hand-written dumps do not.
            let vals = self.values_until_option();
            if vals.is_empty() {
                self.err(tok.span, ParseErrorKind::MissingValue(opt.into()));
                return;
            }
            let text = vals
                .iter()
                .map(|t| t.text.as_ref())
                .collect::<Vec<_>>()
                .join(" ");
            let end = vals.last().unwrap().span;
            self.push_from(
                false,
                Criterion::Comment(text.into()),
                start.join(end),
                instance,
            );
            return;
        }
        if opt == "--tcp-flags" {
            let mask = self.value(tok, &mut neg);
            let comp = self.value(tok, &mut neg);
            if let (Some(m), Some(c)) = (mask, comp) {
                match (tcp_flag_set(&m.text), tcp_flag_set(&c.text)) {
                    (Some(mask), Some(comp)) => self.push_from(
                        neg,
                        Criterion::TcpFlags { mask, comp },
                        start.join(c.span),
                        instance,
                    ),
                    _ => self.err(
                        m.span.join(c.span),
                        ParseErrorKind::BadValue {
                            option: opt.into(),
                            value: format!("{} {}", m.text, c.text),
                        },
                    ),
                }
            }
            return;
        }
        if opt == "--match-set" {
            let name = self.value(tok, &mut neg);
            let flags = self.value(tok, &mut neg);
            if let (Some(n), Some(f)) = (name, flags) {
                self.push_from(
                    neg,
                    Criterion::Set(Box::new(SetMatch {
                        name: n.text.as_ref().into(),
                        flags: f.text.as_ref().into(),
                    })),
                    start.join(f.span),
                    instance,
                );
            }
            return;
        }
        if arity == Arity::Two || (arity == Arity::Optional && self.no_value_next()) {
            // Options of two words, and an optional value that is absent: kept verbatim.
            let mut args = Vec::new();
            let mut end = tok.span;
            for _ in 0..(arity == Arity::Two) as usize * 2 {
                match self.value(tok, &mut neg) {
                    Some(v) => {
                        end = v.span;
                        args.push(v.text.as_ref().into());
                    }
                    None => return,
                }
            }
            return self.push_other(neg, module, opt, args, start.join(end), instance);
        }
        let Some(v) = self.value(tok, &mut neg) else {
            return;
        };
        let span = start.join(v.span);
        let val = &*v.text;
        let parsed: Result<Criterion, ParseErrorKind> = match (module, opt) {
            (_, "--sport" | "--source-port") => {
                value::port_range(val).map(|range| Criterion::Port {
                    dir: Dir::Src,
                    range,
                })
            }
            (_, "--dport" | "--destination-port") => {
                value::port_range(val).map(|range| Criterion::Port {
                    dir: Dir::Dst,
                    range,
                })
            }
            ("multiport", o) => value::port_list(val).map(|ports| Criterion::Multiport {
                dir: match o {
                    "--sports" | "--source-ports" => MultiDir::Src,
                    "--ports" => MultiDir::Either,
                    _ => MultiDir::Dst,
                },
                ports,
            }),
            ("addrtype", o) => val
                .split(',')
                .map(|k| AddrKind::parse(k).ok_or(()))
                .collect::<Result<Vec<_>, ()>>()
                .map(|kinds| Criterion::AddrType {
                    dir: if o == "--src-type" {
                        Dir::Src
                    } else {
                        Dir::Dst
                    },
                    kinds,
                })
                .map_err(|_| ParseErrorKind::BadValue {
                    option: o.into(),
                    value: val.into(),
                }),
            ("mark", _) => value::mark(val).map(|(value, mask)| Criterion::Mark { value, mask }),
            ("connmark", _) => {
                value::mark(val).map(|(value, mask)| Criterion::ConnMark { value, mask })
            }
            ("conntrack", "--ctstate") | ("state", "--state") => val
                .split(',')
                .map(|s| CtState::parse(s).ok_or(()))
                .collect::<Result<Vec<_>, ()>>()
                .map(|states| Criterion::CtState {
                    states,
                    state_module: module == "state",
                })
                .map_err(|_| ParseErrorKind::BadValue {
                    option: opt.into(),
                    value: val.into(),
                }),
            ("physdev", "--physdev-in") => Ok(Criterion::Physdev(Physdev::In(Iface(val.into())))),
            ("physdev", "--physdev-out") => Ok(Criterion::Physdev(Physdev::Out(Iface(val.into())))),
            _ => {
                let args = vec![val.into()];
                return self.push_other(neg, module, opt, args, span, instance);
            }
        };
        match parsed {
            Ok(c) => self.push_from(neg, c, span, instance),
            Err(e) => self.err(v.span, e),
        }
    }

    fn statistic_option(&mut self, tok: &Token<'a>, mut neg: bool, start: Span) {
        let pos = self.matches.len();
        let acc = self.stat.get_or_insert(StatAcc {
            pos,
            start,
            negated: false,
            mode: None,
            threshold: None,
            every: None,
            packet: 0,
            failed: false,
        });
        acc.start = acc.start.join(start);
        let _ = acc;
        let Some(v) = self.value(tok, &mut neg) else {
            return;
        };
        let acc = self.stat.as_mut().unwrap();
        acc.start = acc.start.join(v.span);
        acc.negated |= neg;
        let r = match &*tok.text {
            "--mode" => {
                acc.mode = Some(v.text.to_string());
                if v.text != "random" && v.text != "nth" {
                    Err(ParseErrorKind::BadValue {
                        option: "--mode".into(),
                        value: v.text.to_string(),
                    })
                } else {
                    Ok(())
                }
            }
            "--probability" => value::probability(&v.text).map(|t| acc.threshold = Some(t)),
            "--every" => value::number(&v.text).map(|n| acc.every = Some(n)),
            _ => value::number(&v.text).map(|n| acc.packet = n),
        };
        if let Err(e) = r {
            acc.failed = true;
            self.err(v.span, e);
        }
    }

    fn recent_option(&mut self, tok: &Token<'a>, mut neg: bool, start: Span, arity: Arity) {
        if self.recent.is_none() {
            self.recent = Some(RecentAcc {
                pos: self.matches.len(),
                start,
                negated: false,
                r: Recent {
                    name: "DEFAULT".into(),
                    mode: RecentMode::Set,
                    seconds: None,
                    hitcount: None,
                    reap: false,
                    rttl: false,
                    rdest: false,
                    mask: None,
                },
                mode_set: false,
            });
        }
        let opt = &*tok.text;
        let val = if arity == Arity::Flag {
            None
        } else {
            match self.value(tok, &mut neg) {
                Some(v) => Some(v),
                None => return,
            }
        };
        let acc = self.recent.as_mut().unwrap();
        acc.start = acc.start.join(start).join(tok.span);
        if let Some(v) = &val {
            acc.start = acc.start.join(v.span);
        }
        let mode = |acc: &mut RecentAcc, m| {
            acc.r.mode = m;
            acc.mode_set = true;
            acc.negated |= neg;
        };
        let mut bad = None;
        match opt {
            "--set" => mode(acc, RecentMode::Set),
            "--rcheck" => mode(acc, RecentMode::Rcheck),
            "--update" => mode(acc, RecentMode::Update),
            "--remove" => mode(acc, RecentMode::Remove),
            "--reap" => acc.r.reap = true,
            "--rttl" => acc.r.rttl = true,
            "--rsource" => acc.r.rdest = false,
            "--rdest" => acc.r.rdest = true,
            "--name" => acc.r.name = val.unwrap().text.as_ref().into(),
            "--mask" => acc.r.mask = Some(val.unwrap().text.as_ref().into()),
            "--seconds" | "--hitcount" => {
                let v = val.unwrap();
                match value::number(&v.text) {
                    Ok(n) if opt == "--seconds" => acc.r.seconds = Some(n),
                    Ok(n) => acc.r.hitcount = Some(n),
                    Err(e) => bad = Some((v.span, e)),
                }
            }
            _ => {}
        }
        if let Some((s, e)) = bad {
            self.err(s, e);
        }
    }

    fn finish_accumulators(&mut self) {
        let mut done: Vec<(usize, Match)> = Vec::new();
        if let Some(acc) = self.stat.take().filter(|a| !a.failed) {
            let c = match acc.mode.as_deref() {
                Some("nth") => match acc.every {
                    Some(every) if every > 0 => Some(Statistic::Nth {
                        every,
                        packet: acc.packet,
                    }),
                    _ => {
                        self.err(acc.start, ParseErrorKind::MissingValue("--every".into()));
                        None
                    }
                },
                Some(_) => match acc.threshold {
                    Some(threshold) => Some(Statistic::Random { threshold }),
                    None => {
                        self.err(
                            acc.start,
                            ParseErrorKind::MissingValue("--probability".into()),
                        );
                        None
                    }
                },
                None => {
                    self.err(acc.start, ParseErrorKind::MissingValue("--mode".into()));
                    None
                }
            };
            if let Some(s) = c {
                done.push((
                    acc.pos,
                    Match {
                        continues: false,
                        negated: acc.negated,
                        criterion: Criterion::Statistic(s),
                        span: acc.start,
                    },
                ));
            }
        }
        if let Some(acc) = self.recent.take() {
            done.push((
                acc.pos,
                Match {
                    continues: false,
                    negated: acc.negated,
                    criterion: Criterion::Recent(Box::new(acc.r)),
                    span: acc.start,
                },
            ));
        }
        done.sort_by_key(|d| d.0);
        for (shift, (pos, m)) in done.into_iter().enumerate() {
            self.matches
                .insert((pos + shift).min(self.matches.len()), m);
        }
    }

    fn parse_target(&mut self, name: &Token<'a>, goto: bool, start: Span) {
        let n = &*name.text;
        let mut end = name.span;
        let mut flags: Vec<Box<str>> = Vec::new();
        let mut to: Option<NatRange> = None;
        let mut ports: Option<PortRange> = None;
        let mut reject_with = None;
        let mut mark: Option<MarkOp> = None;
        let mut args: Vec<Box<str>> = Vec::new();
        // Target options follow the target; anything a target does not know goes back to matches.
        while let Some(t) = self.peek().cloned() {
            if !t.is_option() || !t.text.starts_with("--") {
                break;
            }
            let looked = extensions::target_lookup(n, &t.text);
            let o = looked.map_or(&*t.text, |(full, _)| full);
            let arity = match looked {
                Some((_, a)) => a,
                None if extensions::is_target(n) => break,
                // A target iptables does not ship: its options are everything no module claims.
                None if self.modules.iter().any(|m| {
                    m.opts
                        .is_some_and(|x| extensions::option_in(x, o).is_some())
                }) =>
                {
                    break
                }
                None => Arity::Optional,
            };
            self.i += 1;
            if arity == Arity::Flag || (arity == Arity::Optional && self.no_value_next()) {
                flags.push(o.into());
                args.push(o.into());
                end = t.span;
                continue;
            }
            if arity == Arity::Two {
                args.push(o.into());
                let mut neg = false;
                for _ in 0..2 {
                    if let Some(v) = self.value(&t, &mut neg) {
                        end = v.span;
                        args.push(v.text.as_ref().into());
                    }
                }
                continue;
            }
            let mut neg = false;
            let Some(v) = self.value(&t, &mut neg) else {
                continue;
            };
            end = v.span;
            let val = &*v.text;
            let r: Result<(), ParseErrorKind> = match o {
                "--to-destination" | "--to-source" => value::nat_range(val).map(|r| {
                    to.get_or_insert(r);
                }),
                "--to-ports" => value::port_range(val).map(|p| ports = Some(p)),
                "--reject-with" => {
                    reject_with = Some(val.into());
                    Ok(())
                }
                "--set-xmark" | "--set-mark" | "--or-mark" | "--and-mark" | "--xor-mark"
                    if n == "MARK" =>
                {
                    value::mark(val).map(|(v, m)| {
                        let has_mask = val.contains('/');
                        mark = Some(match o {
                            "--set-xmark" => MarkOp {
                                value: v,
                                mask: m,
                                form: MarkForm::SetXmark,
                            },
                            "--set-mark" => MarkOp {
                                value: v,
                                mask: if has_mask { m | v } else { u32::MAX },
                                form: MarkForm::SetMark,
                            },
                            "--or-mark" => MarkOp {
                                value: v,
                                mask: v,
                                form: MarkForm::OrMark,
                            },
                            "--and-mark" => MarkOp {
                                value: 0,
                                mask: !v,
                                form: MarkForm::AndMark,
                            },
                            _ => MarkOp {
                                value: v,
                                mask: 0,
                                form: MarkForm::XorMark,
                            },
                        })
                    })
                }
                _ => {
                    args.push(o.into());
                    args.push(val.into());
                    Ok(())
                }
            };
            if let Err(e) = r {
                self.err(v.span, e);
            }
        }
        let kind = match n {
            "ACCEPT" => TargetKind::Accept,
            "DROP" => TargetKind::Drop,
            "RETURN" => TargetKind::Return,
            "REJECT" => TargetKind::Reject { with: reject_with },
            "DNAT" => TargetKind::Dnat {
                to: to.map(Box::new),
                flags,
            },
            "SNAT" => TargetKind::Snat {
                to: to.map(Box::new),
                flags,
            },
            "MASQUERADE" => TargetKind::Masquerade {
                to_ports: ports,
                flags,
            },
            "REDIRECT" => TargetKind::Redirect {
                to_ports: ports,
                flags,
            },
            "MARK" => match mark {
                Some(m) => TargetKind::Mark(m),
                None => {
                    self.err(
                        name.span,
                        ParseErrorKind::MissingValue("--set-xmark".into()),
                    );
                    return;
                }
            },
            "CONNMARK" => TargetKind::ConnMark { args },
            "LOG" => TargetKind::Log { args },
            _ if !args.is_empty() || extensions::is_target(n) => TargetKind::Other {
                name: n.into(),
                args,
            },
            _ => TargetKind::Chain(n.into()),
        };
        self.target = Some(Target {
            goto,
            kind,
            span: start.join(end),
            before: Box::new([]),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> Rule {
        parse_rule(s, 0, 1, Span::new(0, s.len())).unwrap()
    }

    fn crits(r: &Rule) -> Vec<(bool, Criterion)> {
        r.matches
            .iter()
            .map(|m| (m.negated, m.criterion.clone()))
            .collect()
    }

    #[test]
    fn both_option_orders_give_the_same_rule() {
        let kernel = rule(
            r#"-d 10.0.0.1/32 -p tcp -m comment --comment "ns/a:p cluster IP" -m tcp --dport 80 -j KUBE-SVC-X"#,
        );
        let kube = rule(
            r#"-m comment --comment "ns/a:p cluster IP" -m tcp -p tcp -d 10.0.0.1 --dport 80 -j KUBE-SVC-X"#,
        );
        let mut a = crits(&kernel);
        let mut b = crits(&kube);
        let key = |c: &(bool, Criterion)| format!("{c:?}");
        a.sort_by_key(key);
        b.sort_by_key(key);
        assert_eq!(a, b);
        assert_eq!(kernel.jump_target(), Some("KUBE-SVC-X"));
    }

    #[test]
    fn negations_in_both_forms() {
        let r = rule("! -s 10.0.0.0/8 -m mark ! --mark 0x4000/0x4000 -m addrtype --src-type ! LOCAL -j RETURN");
        let c = crits(&r);
        assert!(c[0].0 && matches!(c[0].1, Criterion::Source(_)));
        assert_eq!(
            c[1],
            (
                true,
                Criterion::Mark {
                    value: 0x4000,
                    mask: 0x4000
                }
            )
        );
        assert!(c[2].0);
    }

    #[test]
    fn statistic_and_recent_are_one_criterion_each() {
        let r = rule("-m recent --name KUBE-SEP-X --mask 255.255.255.255 --rsource --rcheck --seconds 10800 --reap -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-X");
        assert_eq!(r.matches.len(), 2);
        assert_eq!(
            r.statistic(),
            Some(&Statistic::Random {
                threshold: 715827883
            })
        );
        match &r.matches[0].criterion {
            Criterion::Recent(rec) => {
                assert_eq!(rec.mode, RecentMode::Rcheck);
                assert_eq!(rec.seconds, Some(10800));
                assert!(rec.reap);
            }
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn marks_normalise_to_xmark() {
        let or = rule("-j MARK --or-mark 0x4000");
        let xm = rule("-j MARK --set-xmark 0x4000/0x4000");
        assert_eq!(or.target_kind(), xm.target_kind());
        let TargetKind::Mark(m) = or.target_kind().unwrap() else {
            panic!()
        };
        assert_eq!(m.apply(0x1), 0x4001);
        let xor = rule("-j MARK --xor-mark 0x4000");
        let TargetKind::Mark(m) = xor.target_kind().unwrap() else {
            panic!()
        };
        assert_eq!(m.apply(0x4001), 0x1);
        let set = rule("-j MARK --set-mark 0x4000");
        let TargetKind::Mark(m) = set.target_kind().unwrap() else {
            panic!()
        };
        assert_eq!(m.apply(0x8001), 0x4000);
    }

    #[test]
    fn dnat_and_masquerade() {
        let r = rule("-p tcp -m tcp -j DNAT --to-destination 10.254.6.217:80");
        assert!(
            matches!(r.target_kind(), Some(TargetKind::Dnat { to: Some(t), .. }) if t.to_string() == "10.254.6.217:80")
        );
        let m = rule("-j MASQUERADE --random-fully");
        assert!(
            matches!(m.target_kind(), Some(TargetKind::Masquerade { flags, .. }) if flags.len() == 1)
        );
    }

    #[test]
    fn unknown_modules_and_targets_are_kept() {
        let r = rule("-m nfacct --nfacct-name localhost_nps_accepted_pkts -m foo -j CT --notrack");
        assert!(
            matches!(&r.matches[0].criterion, Criterion::Other(o) if &*o.module == "nfacct" && &*o.option == "--nfacct-name" && o.args.len() == 1)
        );
        assert!(matches!(&r.matches[1].criterion, Criterion::Other(o) if &*o.module == "foo"));
        assert!(matches!(r.target_kind(), Some(TargetKind::Other { name, .. }) if &**name == "CT"));
    }

    #[test]
    fn unquoted_multiword_comment() {
        let r = rule("-m comment --comment kubernetes service portals -j KUBE-SERVICES");
        assert_eq!(r.comment(), Some("kubernetes service portals"));
        assert_eq!(r.jump_target(), Some("KUBE-SERVICES"));
    }

    #[test]
    fn errors_point_at_values() {
        let s =
            "-d 10.0.0.0/33 -p tcp --dport 70000 -m statistic --mode random --probability 1.5 -j X";
        let e = parse_rule(s, 0, 1, Span::new(0, s.len())).unwrap_err();
        assert_eq!(e.len(), 3);
        assert_eq!(&s[e[0].span.range()], "10.0.0.0/33");
        assert_eq!(&s[e[1].span.range()], "70000");
        assert_eq!(&s[e[2].span.range()], "1.5");
    }
}
