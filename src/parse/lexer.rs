//! Splits a rule specification into tokens, undoing iptables-save's quoting.
//!
//! iptables-save wraps an argument in double quotes when it contains blanks or quotes, and escapes
//! `"`, `'` and `\` inside with a backslash (`--comment "a \"b\""`); iptables-restore takes any
//! character after a backslash inside quotes literally. Tokens keep their byte span so every
//! later error can point at the user's text.

use crate::error::{ParseError, ParseErrorKind};
use crate::model::Span;
use nom::bytes::complete::{escaped_transform, is_not};
use nom::character::complete::{anychar, char};
use nom::combinator::opt;
use nom::sequence::delimited;
use nom::{IResult, Parser};
use std::borrow::Cow;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token<'a> {
    pub text: Cow<'a, str>,
    pub span: Span,
    pub quoted: bool,
}

impl Token<'_> {
    pub fn is(&self, s: &str) -> bool {
        !self.quoted && self.text == s
    }

    /// An option (`-x` or `--xyz`) rather than a value. A lone `-` (a user chain's policy) or a
    /// negative number is not an option.
    pub fn is_option(&self) -> bool {
        !self.quoted
            && self.text.len() > 1
            && self.text.starts_with('-')
            && !self.text.as_bytes()[1].is_ascii_digit()
    }
}

fn quoted(input: &str) -> IResult<&str, String> {
    delimited(
        char('"'),
        // iptables-restore takes the character after a backslash literally, whatever it is
        // (iptables-save writes `\'` in kube-router's comments).
        opt(escaped_transform(is_not("\\\""), '\\', anychar)).map(Option::unwrap_or_default),
        char('"'),
    )
    .parse(input)
}

/// A quoted argument with nothing escaped in it (nearly every comment): borrowed, not rebuilt.
fn plain_quoted(input: &str) -> Option<(&str, &str)> {
    let body = input.strip_prefix('"')?;
    let end = memchr::memchr2(b'"', b'\\', body.as_bytes())?;
    (body.as_bytes()[end] == b'"').then(|| (&body[end + 1..], &body[..end]))
}

/// Up to the next blank: one byte search rather than a UTF-8 walk (blanks are ASCII).
fn bare(input: &str) -> (&str, &str) {
    let end = memchr::memchr2(b' ', b'\t', input.as_bytes()).unwrap_or(input.len());
    (&input[end..], &input[..end])
}

/// Tokenises `text`, which starts at byte `base` of the source.
pub fn tokenize(text: &str, base: usize) -> Result<Vec<Token<'_>>, ParseError> {
    let mut tokens = Vec::with_capacity(16);
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return Ok(tokens);
        }
        let start = base + (text.len() - rest.len());
        if let Some((r, s)) = plain_quoted(rest) {
            tokens.push(Token {
                text: Cow::Borrowed(s),
                span: Span::new(start, base + (text.len() - r.len())),
                quoted: true,
            });
            rest = r;
        } else if rest.starts_with('"') {
            match quoted(rest) {
                Ok((r, s)) => {
                    let end = base + (text.len() - r.len());
                    tokens.push(Token {
                        text: Cow::Owned(s),
                        span: Span::new(start, end),
                        quoted: true,
                    });
                    rest = r;
                }
                Err(_) => {
                    return Err(ParseError::new(
                        Span::new(start, start + 1),
                        ParseErrorKind::UnterminatedQuote,
                    ))
                }
            }
        } else {
            let (r, s) = bare(rest);
            tokens.push(Token {
                text: Cow::Borrowed(s),
                span: Span::new(start, start + s.len()),
                quoted: false,
            });
            rest = r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        tokenize(s, 0)
            .unwrap()
            .into_iter()
            .map(|t| t.text.into_owned())
            .collect()
    }

    #[test]
    fn splits_on_blanks_and_unquotes() {
        assert_eq!(
            texts(r#"-m comment --comment "a \"b\" \\c"  -j X"#),
            ["-m", "comment", "--comment", r#"a "b" \c"#, "-j", "X"]
        );
        assert_eq!(texts("\t-A  X\t"), ["-A", "X"]);
        assert_eq!(texts(r#"--comment """#), ["--comment", ""]);
    }

    #[test]
    fn spans_point_into_the_source() {
        let t = tokenize(r#"-d 1.2.3.4 --comment "x y""#, 10).unwrap();
        assert_eq!(t[1].span, Span::new(13, 20));
        assert_eq!(t[3].span, Span::new(31, 36));
    }

    #[test]
    fn unterminated_quote_points_at_the_quote() {
        let e = tokenize(r#"-m comment --comment "abc"#, 0).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::UnterminatedQuote);
        assert_eq!(e.span, Span::new(21, 22));
    }
}
