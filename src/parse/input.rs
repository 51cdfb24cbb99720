//! Turns raw bytes into checked text: BOM, UTF-8, NUL bytes and absurd line lengths.

use crate::error::{ParseError, ParseErrorKind};
use crate::model::source::Text;
use crate::model::{Source, Span};
use std::sync::Arc;

/// No iptables rule comes near this; a longer line is corruption, and refusing it keeps memory bounded.
pub const MAX_LINE: usize = 64 * 1024;
/// Past this many errors in one input, the rest are counted, not listed.
pub const MAX_ERRORS: usize = 50;

/// Bytes as read: a buffer, or a file mapped into memory.
pub enum RawInput {
    Bytes(Vec<u8>),
    Mapped(memmap2::Mmap),
}

/// What a file that is not text is, from its first bytes: a compressed file kptrace cannot read
/// (with the command that can), an executable, or other binary data. None for text.
fn not_text(head: &[u8]) -> Option<String> {
    let magic: &[(&[u8], &str)] = &[
        (
            b"\x28\xb5\x2f\xfd",
            "it is zstd-compressed; decompress it first (`zstd -dc FILE | kptrace …`)",
        ),
        (
            b"\xfd7zXZ\x00",
            "it is xz-compressed; decompress it first (`xz -dc FILE | kptrace …`)",
        ),
        (
            b"BZh",
            "it is bzip2-compressed; decompress it first (`bzip2 -dc FILE | kptrace …`)",
        ),
        (
            b"PK\x03\x04",
            "it is a zip archive; extract the dump from it first",
        ),
        (b"\x7fELF", "it is an executable (ELF), not rules"),
        (b"\x89PNG", "it is a PNG image, not rules"),
        (b"%PDF", "it is a PDF document, not rules"),
    ];
    if let Some((_, what)) = magic.iter().find(|(m, _)| head.starts_with(m)) {
        return Some(what.to_string());
    }
    let window = &head[..head.len().min(8192)];
    let invalid: usize = window
        .utf8_chunks()
        .map(|c| c.invalid().len())
        .sum::<usize>()
        // A multi-byte character cut at the window's end is not evidence.
        .saturating_sub(3);
    let nuls = memchr::memchr_iter(0, window).count();
    // A stray NUL or bad byte in text is located as an error of its own; many are binary data.
    ((nuls >= 8 && nuls * 100 > window.len()) || (invalid >= 16 && invalid * 20 > window.len()))
        .then(|| "it is binary data, not rules".to_string())
}

/// Gzip-compressed input (a `*.rules.gz` from a support bundle), decompressed.
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::with_capacity(bytes.len() * 8);
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| format!("it is gzip-compressed, but cannot be decompressed: {e}"))?;
    Ok(out)
}

/// Decodes `raw`. Invalid UTF-8 is replaced (so the rest can still be checked) and reported.
pub fn decode(name: &str, raw: RawInput) -> (Arc<Source>, Vec<ParseError>) {
    let head: &[u8] = match &raw {
        RawInput::Bytes(b) => b,
        RawInput::Mapped(m) => m,
    };
    let raw = if head.starts_with(b"\x1f\x8b") {
        match gunzip(head) {
            Ok(b) => RawInput::Bytes(b),
            Err(why) => return refused(name, why),
        }
    } else {
        if let Some(why) = not_text(head) {
            return refused(name, why);
        }
        raw
    };
    let mut bytes = match raw {
        RawInput::Mapped(m) if !m.starts_with(b"\xEF\xBB\xBF") => match scan_mapped(&m) {
            Some((line_starts, nuls)) => {
                let source = Source::with_line_starts(name, Text::Mapped(m), line_starts);
                let mut errors = nul_errors(nuls.into_iter());
                errors.extend(check_lines(&source));
                errors.sort_by_key(|e| e.span.start);
                return (source, errors);
            }
            None => m.to_vec(),
        },
        RawInput::Mapped(m) => m.to_vec(),
        RawInput::Bytes(b) => b,
    };
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    let mut errors = Vec::new();
    let text = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let bytes = e.into_bytes();
            let mut s = String::with_capacity(bytes.len());
            for chunk in bytes.utf8_chunks() {
                s.push_str(chunk.valid());
                if !chunk.invalid().is_empty() {
                    let at = s.len();
                    s.push(char::REPLACEMENT_CHARACTER);
                    if errors.len() < MAX_ERRORS {
                        errors.push(ParseError::new(
                            Span::new(at, s.len()),
                            ParseErrorKind::InvalidUtf8,
                        ));
                    }
                }
            }
            s
        }
    };
    let source = Source::new(name, text);
    errors.extend(check(&source));
    errors.sort_by_key(|e| e.span.start);
    (source, errors)
}

/// An input refused whole, with one error and none of its bytes shown.
fn refused(name: &str, why: String) -> (Arc<Source>, Vec<ParseError>) {
    let source = Source::new(name, String::new());
    (
        source,
        vec![ParseError::new(Span::NONE, ParseErrorKind::NotText(why))],
    )
}

/// One pass over a mapped file, a window at a time on all cores so that its pages are not all
/// resident at once: whether it is UTF-8 (windows end after a line ending, which no character
/// straddles), where its lines start, and where its NUL bytes are. None when it is not UTF-8.
fn scan_mapped(map: &memmap2::Mmap) -> Option<(Vec<u32>, Vec<usize>)> {
    use rayon::prelude::*;
    let mut windows = Vec::new();
    let mut at = 0;
    while at < map.len() {
        let end = crate::model::source::window_end(map, at);
        windows.push(at..end);
        at = end;
    }
    let scanned: Vec<(Vec<u32>, Vec<usize>)> = windows
        .into_par_iter()
        .map(|w| {
            let found = scan_window(map, w.clone());
            crate::model::source::release_pages(map, w);
            found
        })
        .collect::<Option<_>>()?;
    let mut line_starts = Vec::with_capacity(1 + scanned.iter().map(|s| s.0.len()).sum::<usize>());
    line_starts.push(0u32);
    let mut nuls = Vec::new();
    for (starts, n) in scanned {
        line_starts.extend_from_slice(&starts);
        nuls.extend(n);
    }
    nuls.truncate(MAX_ERRORS);
    Some((line_starts, nuls))
}

/// [`scan_mapped`] of one window: the line starts after each of its line endings, and its first
/// NUL bytes.
fn scan_window(map: &[u8], window: std::ops::Range<usize>) -> Option<(Vec<u32>, Vec<usize>)> {
    let mut line_starts = Vec::with_capacity(window.len() / 64 + 1);
    let mut nuls = Vec::new();
    // The three searches go over a piece small enough to stay in cache between them, cut after a
    // line ending so that no character is split.
    const PIECE: usize = 256 << 10;
    let (mut p, end) = (window.start, window.end);
    while p < end {
        let q = match memchr::memchr(b'\n', &map[(p + PIECE).min(end)..end]) {
            Some(i) => (p + PIECE).min(end) + i + 1,
            None => end,
        };
        let w = &map[p..q];
        // Valid or not is all this pass needs: the slow path finds where, for the error.
        simdutf8::basic::from_utf8(w).ok()?;
        line_starts.extend(memchr::memchr_iter(b'\n', w).map(|i| (p + i) as u32 + 1));
        // Apart from corrupt input there are none: one quick search settles it.
        if memchr::memchr(0, w).is_some() {
            let room = MAX_ERRORS.saturating_sub(nuls.len());
            nuls.extend(memchr::memchr_iter(0, w).take(room).map(|i| p + i));
        }
        p = q;
    }
    Some((line_starts, nuls))
}

fn nul_errors(at: impl Iterator<Item = usize>) -> Vec<ParseError> {
    at.take(MAX_ERRORS)
        .map(|at| ParseError::new(Span::new(at, at + 1), ParseErrorKind::NulByte))
        .collect()
}

/// NUL bytes, absurd line lengths and empty input, in valid UTF-8 text.
fn check(source: &Source) -> Vec<ParseError> {
    let mut errors = nul_errors(memchr::memchr_iter(0, source.text.as_bytes()));
    errors.extend(check_lines(source));
    errors.sort_by_key(|e| e.span.start);
    errors
}

/// Absurd line lengths and empty input, from the line index.
fn check_lines(source: &Source) -> Vec<ParseError> {
    let text: &str = &source.text;
    let mut errors = Vec::new();
    for (_, start, end) in source.line_ranges() {
        if end - start > MAX_LINE {
            errors.push(ParseError::new(
                Span::new(start, start + 80.min(end - start)),
                ParseErrorKind::LineTooLong {
                    len: end - start,
                    limit: MAX_LINE,
                },
            ));
        }
    }
    if text.trim().is_empty() {
        errors.push(ParseError::new(Span::NONE, ParseErrorKind::Empty));
    }
    errors
}
