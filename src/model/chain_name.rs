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
    Owned(Box<str>),
    /// Only built from a span that lies on character boundaries of `Source::text`.
    InSource(Arc<Source>, Span),
}

impl ChainName {
    /// The name `span` of `source` (which must hold it: a span the parser took from the text).
    pub fn in_source(source: &Arc<Source>, span: Span) -> ChainName {
        debug_assert!(source.text.get(span.range()).is_some());
        ChainName(Repr::InSource(source.clone(), span))
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
        ChainName(Repr::Owned(s.into()))
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
    fn a_name_in_the_source_reads_as_the_text_it_spans() {
        let src = Source::new("t", ":KUBE-SEP-ABC - [0:0]\n".to_string());
        let n = ChainName::in_source(&src, Span::new(1, 13));
        assert_eq!(&*n, "KUBE-SEP-ABC");
        assert_eq!(n, ChainName::from("KUBE-SEP-ABC"));
        assert_eq!(n.to_string(), "KUBE-SEP-ABC");
    }
}
