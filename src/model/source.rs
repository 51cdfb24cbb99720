//! The text a rule set was read from, and byte spans into it.
//!
//! Everything the parser produces points back here, so that diagnostics, paths and lint findings can
//! show the user's own line. Offsets are `u32`: a dump over 4 GiB is refused up front rather than
//! silently wrapping.

use std::sync::Arc;

/// A byte range in a [`Source`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub const fn new(start: usize, end: usize) -> Self {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// A span that points nowhere: used for rules kptrace assumed rather than read.
    pub const NONE: Span = Span { start: 0, end: 0 };

    pub fn is_none(&self) -> bool {
        self.start == 0 && self.end == 0
    }

    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    pub fn join(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.start as usize, s.len()).into()
    }
}

/// Checked UTF-8 text: owned, or a file mapped into memory.
///
/// A 200 MB dump is mapped rather than read, so the kernel's page cache serves it directly instead
/// of the process zeroing and copying 200 MB first.
pub enum Text {
    Owned(String),
    /// Only ever built from bytes that passed UTF-8 validation.
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Text::Owned(s) => s,
            // SAFETY: `Mapped` is only constructed after `std::str::from_utf8` accepted the bytes.
            Text::Mapped(m) => unsafe { std::str::from_utf8_unchecked(m) },
        }
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Text({} bytes)", self.len())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text::Owned(s)
    }
}

/// One input file (or stdin), with an index of where its lines start.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub text: Text,
    line_starts: Vec<u32>,
}

/// How much of a mapped file a whole-file pass reads before handing the pages back.
pub const WINDOW: usize = 8 << 20;

impl Text {
    /// Tells the kernel this process is done with the pages of `range` for now. A mapped file's
    /// pages count towards the process's resident memory for as long as they stay mapped, so a
    /// pass over a 200 MB dump would otherwise hold all 200 MB; the page cache keeps them, and a
    /// later read maps them again. Owned text is left alone.
    pub fn release(&self, range: std::ops::Range<usize>) {
        if let Text::Mapped(map) = self {
            release_pages(map, range);
        }
    }
}

/// Drops the pages of a read-only file map that lie wholly inside `range` from this process's
/// resident memory (the pages at its edges may still be in use).
pub fn release_pages(map: &memmap2::Mmap, range: std::ops::Range<usize>) {
    const PAGE: usize = 4096;
    let start = range.start.div_ceil(PAGE) * PAGE;
    let end = (range.end.min(map.len()) / PAGE) * PAGE;
    if end > start {
        // SAFETY: the map is read-only and backed by a file, so dropping its pages loses no data:
        // the next read faults them in again from the page cache.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }
}

/// Where a window starting at `at` ends: after the first line ending past [`WINDOW`] bytes.
pub fn window_end(bytes: &[u8], at: usize) -> usize {
    let probe = (at + WINDOW).min(bytes.len());
    memchr::memchr(b'\n', &bytes[probe..]).map_or(bytes.len(), |i| probe + i + 1)
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<Text>) -> Arc<Source> {
        let text = text.into();
        let mut line_starts = Vec::with_capacity(text.len() / 64 + 1);
        line_starts.push(0);
        line_starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i as u32 + 1));
        Source::with_line_starts(name, text, line_starts)
    }

    /// A source whose line index a front end already built while reading it: `line_starts` must
    /// be 0 followed by the offset after every `\n` of `text`, in order.
    pub fn with_line_starts(
        name: impl Into<String>,
        text: Text,
        line_starts: Vec<u32>,
    ) -> Arc<Source> {
        debug_assert_eq!(line_starts.first(), Some(&0));
        Arc::new(Source {
            name: name.into(),
            text,
            line_starts,
        })
    }

    /// 1-based line number of a byte offset.
    pub fn line_of(&self, offset: u32) -> u32 {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i as u32 + 1,
            Err(i) => i as u32,
        }
    }

    /// 1-based (line, column) of a byte offset; the column counts characters, not bytes.
    pub fn line_col(&self, offset: u32) -> (u32, u32) {
        let line = self.line_of(offset);
        let start = self.line_starts[(line - 1) as usize] as usize;
        let end = (offset as usize).min(self.text.len());
        let col = self
            .text
            .get(start..end)
            .map(|s| s.chars().count())
            .unwrap_or(end - start);
        (line, col as u32 + 1)
    }

    /// The text of a 1-based line, without its line ending.
    pub fn line_text(&self, line: u32) -> &str {
        let i = (line as usize).saturating_sub(1);
        let Some(&start) = self.line_starts.get(i) else {
            return "";
        };
        let end = self
            .line_starts
            .get(i + 1)
            .map(|&e| e as usize)
            .unwrap_or(self.text.len());
        self.text[start as usize..end].trim_end_matches(['\n', '\r'])
    }

    /// Byte offset where a 1-based line starts (the text's end past the last line).
    pub fn line_start(&self, line: u32) -> usize {
        self.line_starts
            .get((line as usize).saturating_sub(1))
            .map(|&s| s as usize)
            .unwrap_or(self.text.len())
    }

    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or("")
    }

    /// Where 1-based line `no` starts and ends (before its `\n`), from the index.
    pub fn line_range(&self, no: u32) -> (usize, usize) {
        let i = no as usize - 1;
        let start = self.line_starts[i] as usize;
        let end = self
            .line_starts
            .get(i + 1)
            .map_or(self.text.len(), |&next| next as usize - 1);
        (start, end)
    }

    /// Every line as (1-based number, start, end before its `\n`), from the index: no second
    /// search for line endings.
    pub fn line_ranges(&self) -> impl Iterator<Item = (u32, usize, usize)> + '_ {
        (1..=self.line_count().max(1) as u32).map(|no| {
            let (start, end) = self.line_range(no);
            (no, start, end)
        })
    }

    pub fn line_count(&self) -> usize {
        if self.text.ends_with('\n') {
            self.line_starts.len() - 1
        } else {
            self.line_starts.len()
        }
    }
}
