//! Errors about the user's input: one struct with a span and a kind, rendered by miette.
//!
//! Messages are lowercase and quote the user's own text in backticks. A file's errors are all
//! collected and reported together ([`InputErrors`]), so a person fixes them in one pass.

use crate::model::{Source, Span};
use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub span: Span,
    pub kind: ParseErrorKind,
    /// A second place that explains the first (e.g. the earlier declaration of a duplicate chain).
    pub cause: Option<(Span, String)>,
}

impl ParseError {
    pub fn new(span: Span, kind: ParseErrorKind) -> Self {
        ParseError {
            span,
            kind,
            cause: None,
        }
    }

    pub fn with_cause(mut self, span: Span, label: impl Into<String>) -> Self {
        self.cause = Some((span, label.into()));
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("the input is empty")]
    Empty,
    #[error("no line of the input is iptables-save text")]
    NotSave,
    #[error("the input is not text: {0}")]
    NotText(String),
    #[error("the input is not text: invalid UTF-8")]
    InvalidUtf8,
    #[error("the input contains a NUL byte")]
    NulByte,
    #[error("line is {len} bytes long, over the limit of {limit}")]
    LineTooLong { len: usize, limit: usize },
    #[error("unterminated quote")]
    UnterminatedQuote,
    #[error("unknown table `{0}`")]
    UnknownTable(String),
    #[error("`{0}` before any `*table` line")]
    OutsideTable(String),
    #[error("table `{0}` has no `COMMIT`")]
    MissingCommit(String),
    #[error("`COMMIT` without a table")]
    StrayCommit,
    #[error("chain `{0}` is declared twice")]
    DuplicateChain(String),
    #[error("rule for chain `{0}`, which was never declared")]
    UndeclaredChain(String),
    #[error("invalid chain declaration `{0}`")]
    BadChainDecl(String),
    #[error("invalid policy `{0}`")]
    BadPolicy(String),
    #[error("invalid counters `{0}`")]
    BadCounters(String),
    #[error("invalid address `{0}`")]
    BadAddress(String),
    #[error("invalid port `{0}`")]
    BadPort(String),
    #[error("invalid probability `{0}`")]
    BadProbability(String),
    #[error("invalid number `{0}`")]
    BadNumber(String),
    #[error("invalid protocol `{0}`")]
    BadProtocol(String),
    #[error("invalid `{option}` value `{value}`")]
    BadValue { option: String, value: String },
    #[error("`{0}` needs a value")]
    MissingValue(String),
    #[error("unexpected `{0}`")]
    Unexpected(String),
    #[error("unknown option `{0}`")]
    UnknownOption(String),
    #[error("`-j`/`-g` given twice")]
    TwoTargets,
    #[error("unrecognised line `{0}`")]
    UnknownLine(String),
    #[error("{0}")]
    Other(String),
}

impl ParseErrorKind {
    pub fn help(&self) -> Option<&'static str> {
        Some(match self {
            ParseErrorKind::Empty => "pipe a dump in: `iptables-save | kptrace …`",
            ParseErrorKind::NotSave => "expected `*table`, `:CHAIN`, `-A …` or `COMMIT` lines; for `iptables -L` output or a script of commands, let the form be detected or give --input-format listing|script",
            ParseErrorKind::NotText(_) => "give the output of `iptables-save`, `iptables -L` or `iptables -S`, or a script of iptables commands",
            ParseErrorKind::InvalidUtf8 => "iptables-save prints text; is this a binary file or another encoding?",
            ParseErrorKind::NulByte => "iptables-save never prints NUL; the file may be truncated or binary",
            ParseErrorKind::UnterminatedQuote => "close the quote with `\"`; inside quotes, write `\\\"` for a quote",
            ParseErrorKind::UnknownTable(_) => "known tables are raw, mangle, nat, filter and security",
            ParseErrorKind::OutsideTable(_) => "a dump starts each table with `*nat`, `*filter`…; a grep'd fragment has only `-A` lines",
            ParseErrorKind::MissingCommit(_) => "the dump looks truncated: each table ends with `COMMIT`",
            ParseErrorKind::DuplicateChain(_) => "iptables-restore refuses a chain declared twice in one table",
            ParseErrorKind::UndeclaredChain(_) => "declare it with `:NAME - [0:0]` after the `*table` line, as iptables-save does",
            ParseErrorKind::BadChainDecl(_) => "a declaration reads `:NAME POLICY [packets:bytes]`, with policy `-` for user chains",
            ParseErrorKind::BadPolicy(_) => "a built-in chain's policy is ACCEPT or DROP; a user chain's is `-`",
            ParseErrorKind::BadAddress(_) => "expected an IPv4 or IPv6 address, optionally with /prefix (0-32 for IPv4, 0-128 for IPv6)",
            ParseErrorKind::BadPort(_) => "a port is 0-65535; a range is `lo:hi`",
            ParseErrorKind::BadProbability(_) => "a probability is a number from 0 to 1",
            ParseErrorKind::LineTooLong { .. } => "no iptables rule is this long; the input may be corrupt",
            ParseErrorKind::StrayCommit => "each `COMMIT` closes the table opened by the `*table` line before it",
            ParseErrorKind::UnknownLine(_) => "expected `*table`, `:CHAIN`, `-A CHAIN …`, `COMMIT` or a `#` comment",
            ParseErrorKind::MissingValue(_) => "the option's value is missing",
            ParseErrorKind::TwoTargets => "a rule has one target",
            _ => return None,
        })
    }

    pub fn label(&self) -> &'static str {
        match self {
            ParseErrorKind::UnterminatedQuote => "quote opened here",
            ParseErrorKind::DuplicateChain(_) => "declared again here",
            ParseErrorKind::MissingCommit(_) => "table opened here",
            ParseErrorKind::UndeclaredChain(_) => "not declared",
            _ => "here",
        }
    }
}

/// All errors of one input, rendered together against its source.
#[derive(Debug)]
pub struct InputErrors {
    pub source: Arc<Source>,
    pub errors: Vec<OneError>,
}

/// At most this many errors of one input are shown; the count says how many there were.
pub const SHOWN_ERRORS: usize = 20;

impl std::fmt::Display for InputErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{} error{} in `{}`",
            n,
            if n == 1 { "" } else { "s" },
            self.source.name
        )?;
        if n > SHOWN_ERRORS {
            write!(f, " (the first {SHOWN_ERRORS} are shown)")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputErrors {}

impl Diagnostic for InputErrors {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new("kptrace::input"))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(
            self.errors
                .iter()
                .take(SHOWN_ERRORS)
                .map(|e| e as &dyn Diagnostic),
        ))
    }
}

/// One error as miette shows it; its source is the report's.
pub struct OneError(pub ParseError);

impl std::fmt::Debug for OneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::fmt::Display for OneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.kind.fmt(f)
    }
}
impl std::error::Error for OneError {}
impl Diagnostic for OneError {
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.0
            .kind
            .help()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let mut v = vec![LabeledSpan::new_with_span(
            Some(self.0.kind.label().to_string()),
            self.0.span,
        )];
        if let Some((s, l)) = &self.0.cause {
            v.push(LabeledSpan::new_with_span(Some(l.clone()), *s));
        }
        Some(Box::new(v.into_iter()))
    }
}

/// Renders the errors of one input as a miette report (graphical on a terminal, plain in a pipe).
pub fn report(source: &Arc<Source>, errors: Vec<ParseError>) -> miette::Report {
    let named = NamedSource::new(source.name.clone(), SharedText(source.clone()));
    miette::Report::new(InputErrors {
        source: source.clone(),
        errors: errors.into_iter().map(OneError).collect(),
    })
    .with_source_code(named)
}

/// Lets miette read an `Arc<Source>` without copying a 150 MB dump.
#[derive(Debug, Clone)]
pub struct SharedText(pub Arc<Source>);

/// Lines longer than this are shown as an excerpt around the label.
const SHOWN_LINE: usize = 400;

/// A snippet inside a very long line (a corrupt dump can hold a 50 MB line): only the span's own
/// line, cut to the label with a little text either side, so an error prints (and renders) in
/// constant time. The column still counts from the start of the real line.
fn clip_long_line<'a>(
    src: &'a Source,
    start: usize,
    end: usize,
) -> Option<Box<dyn miette::SpanContents<'a> + 'a>> {
    let text: &str = &src.text;
    let line = src.line_of(start as u32);
    let line_lo = src.line_start(line);
    let line_hi =
        memchr::memchr(b'\n', &text.as_bytes()[line_lo..]).map_or(text.len(), |i| line_lo + i);
    if line_hi - line_lo <= SHOWN_LINE || end > line_hi {
        return None;
    }
    let floor = |mut i: usize| {
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let a = floor(start.saturating_sub(60).max(line_lo));
    let b = floor((end + 60).min(line_hi).max(end));
    let data = &text.as_bytes()[a..b];
    Some(Box::new(miette::MietteSpanContents::new(
        data,
        miette::SourceSpan::new(a.into(), b - a),
        line as usize - 1,
        text[line_lo..start].chars().count(),
        1,
    )))
}

impl SourceCode for SharedText {
    /// miette's own `str` implementation counts lines from the start of the text for every snippet;
    /// on a 200 MB dump with hundreds of findings that is quadratic. The line index finds the few
    /// lines a snippet needs, and miette only sees those.
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let src = &self.0;
        let text: &str = &src.text;
        let start = span.offset().min(text.len());
        let end = (span.offset() + span.len()).min(text.len());
        if let Some(clipped) = clip_long_line(src, start, end) {
            return Ok(clipped);
        }
        let first_line = src
            .line_of(start as u32)
            .saturating_sub(before as u32)
            .max(1);
        let last_line = src.line_of(end as u32) + after as u32;
        let lo = src.line_start(first_line);
        let hi = src.line_start(last_line + 1).max(lo);
        let window = &text[lo..hi];
        let inner_span = miette::SourceSpan::new((start - lo).into(), end - start);
        let inner = window.read_span(&inner_span, before, after)?;
        let data: &'a [u8] = inner.data();
        let offset = data.as_ptr() as usize - text.as_ptr() as usize;
        Ok(Box::new(miette::MietteSpanContents::new(
            data,
            miette::SourceSpan::new(offset.into(), data.len()),
            inner.line() + first_line as usize - 1,
            inner.column(),
            inner.line_count(),
        )))
    }
}
