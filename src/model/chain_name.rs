//! A chain's name: its own string, or a span of the source text it was declared in.
//!
//! A 50,000-Service dump declares over 600,000 chains; naming each from the mapped input instead of
//! a fresh allocation saves one allocation and about 32 bytes per chain.

use super::source::{Source, Span};
use std::sync::Arc;

#[derive(Clone)]
pub struct ChainName(Repr);

#[derive(Clone)]
enum Repr {
    /// Boxed twice: a thin pointer lets the enum hide its tag in the other variant's, so a name
    /// is 16 bytes rather than 24 (names of their own are few: built-in chains, listings).
    #[allow(clippy::box_collection, clippy::redundant_allocation)]
    Owned(Box<Box<str>>),
    /// Only built from a span that lies on character boundaries of `Source::text`.
    InSource(Arc<Source>, Span),
}

impl ChainName {
    /// The name `span` of `source` (which must hold it: a span the parser took from the text).
    pub fn in_source(source: &Arc<Source>, span: Span) -> ChainName {
        debug_assert!(source.text.get(span.range()).is_some());
        ChainName(Repr::InSource(source.clone(), span))
    }

    /// The name `name` written at the start of `within` (after one option word and blanks, as in
    /// `-j NAME`) in the same source as this one, without a copy; None when this name is not in a
    /// source or the text there is not `name` as such (quoted, say).
    pub fn sibling(&self, name: &str, within: Span) -> Option<ChainName> {
        let Repr::InSource(src, _) = &self.0 else {
            return None;
        };
        let text = src.text.get(within.range())?;
        let option = text.find([' ', '\t'])?;
        let rest = text[option..].trim_start_matches([' ', '\t']);
        let written = rest.split([' ', '\t']).next()?;
        if written != name {
            return None;
        }
        let start = within.start as usize + (text.len() - rest.len());
        Some(ChainName(Repr::InSource(
            src.clone(),
            Span::new(start, start + name.len()),
        )))
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Owned(s) => s,
            Repr::InSource(src, span) => &src.text[span.range()],
        }
    }
}

impl From<&str> for ChainName {
    fn from(s: &str) -> Self {
        ChainName(Repr::Owned(Box::new(s.into())))
    }
}

impl std::ops::Deref for ChainName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ChainName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for ChainName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for ChainName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ChainName {}

impl PartialEq<str> for ChainName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ChainName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::hash::Hash for ChainName {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl std::fmt::Debug for ChainName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for ChainName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_two_words() {
        // Every chain and every endpoint of a large dump holds one.
        assert_eq!(std::mem::size_of::<ChainName>(), 16);
    }

    #[test]
    fn a_name_in_the_source_reads_as_the_text_it_spans() {
        let src = Source::new("t", ":KUBE-SEP-ABC - [0:0]\n".to_string());
        let n = ChainName::in_source(&src, Span::new(1, 13));
        assert_eq!(&*n, "KUBE-SEP-ABC");
        assert_eq!(n, ChainName::from("KUBE-SEP-ABC"));
        assert_eq!(n.to_string(), "KUBE-SEP-ABC");
    }

    #[test]
    fn a_sibling_is_the_name_after_the_option_of_its_span() {
        let text = ":KUBE-SVC-A - [0:0]\n-A KUBE-SVC-A -j  KUBE-SEP-B\n-A KUBE-SVC-A -j \"j\"\n";
        let src = Source::new("t", text.to_string());
        let svc = ChainName::in_source(&src, Span::new(1, 11));
        let jump = text.find("-j ").unwrap();
        let sep = svc
            .sibling("KUBE-SEP-B", Span::new(jump, jump + 14))
            .unwrap();
        assert_eq!(&*sep, "KUBE-SEP-B");
        // Quoted, or another name: not this text.
        let quoted = text.rfind("-j ").unwrap();
        assert!(svc.sibling("j", Span::new(quoted, quoted + 6)).is_none());
        assert!(svc
            .sibling("KUBE-SEP", Span::new(jump, jump + 14))
            .is_none());
        assert!(ChainName::from("X")
            .sibling("KUBE-SEP-B", Span::new(jump, jump + 14))
            .is_none());
    }
}
