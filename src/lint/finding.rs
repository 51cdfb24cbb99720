//! What a lint rule reports: a finding with a severity, the rule that made it, and the lines it is about.

use crate::model::Span;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// A rule's identity and its documentation, which lives in the rule's own source file.
#[derive(Debug)]
pub struct Meta {
    /// Stable kebab-case name: what `--allow`, `--deny` and baselines use.
    pub name: &'static str,
    /// Stable short code (`KP001`), for SARIF and people who prefer codes.
    pub code: &'static str,
    pub severity: Severity,
    /// One line: what the rule finds.
    pub summary: &'static str,
    /// The rule's source file; its `//!` comment is the documentation.
    pub source: &'static str,
    /// The rule judges any chain (orphans, duplicates, shadowed rules…): its findings about
    /// another tool's chains that touch no Service are notes unless `--scope all`.
    pub scoped: bool,
}

impl Meta {
    /// The rule's documentation (What it flags / Why it matters / Example / Fix), as Markdown.
    pub fn doc(&self) -> String {
        let mut out = String::new();
        for line in self.source.lines() {
            let Some(rest) = line.strip_prefix("//!") else {
                break;
            };
            out += rest.strip_prefix(' ').unwrap_or(rest);
            out.push('\n');
        }
        out
    }
}

/// A place in the input and what to say about it.
#[derive(Clone, Debug)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

impl Label {
    pub fn new(span: Span, text: impl Into<String>) -> Label {
        Label {
            span,
            text: text.into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Finding {
    pub rule: &'static Meta,
    pub severity: Severity,
    pub message: String,
    /// The offending line.
    pub primary: Option<Label>,
    /// Where the cause is (the rule that sets the mark, the first declaration…).
    pub related: Vec<Label>,
    pub table: Option<String>,
    pub chain: Option<String>,
    /// `ns/name` or `ns/name:port`, when the finding concerns one Service.
    pub service: Option<String>,
    pub help: Option<String>,
    /// Name the Service its chain belongs to, once the Services are known.
    pub for_its_service: bool,
    /// Other chains the finding is about (a jump's target, the members of a loop): with
    /// `chain`, what decides whether it concerns kube-proxy.
    pub concerns: Vec<String>,
    /// Who writes the chains it is about: `kube` (kube-proxy or kubelet, or a Service's path)
    /// or `other`.
    pub scope: Scope,
}

/// Whether a finding is about kube-proxy's rules and Service traffic, or only another tool's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Kube,
    Other,
}

impl Finding {
    pub fn new(rule: &'static Meta, message: impl Into<String>) -> Finding {
        Finding {
            rule,
            severity: rule.severity,
            message: message.into(),
            primary: None,
            related: Vec::new(),
            table: None,
            chain: None,
            service: None,
            help: None,
            for_its_service: false,
            concerns: Vec::new(),
            scope: Scope::Kube,
        }
    }

    /// Attributes the finding to the Service its chain belongs to. Per-chain checks run before
    /// the Services are known; [`crate::lint::run`] fills the name in.
    pub fn for_its_service(mut self) -> Finding {
        self.for_its_service = true;
        self
    }

    /// Another chain the finding is about.
    pub fn about(mut self, chain: impl Into<String>) -> Finding {
        self.concerns.push(chain.into());
        self
    }

    pub fn at(mut self, span: Span, text: impl Into<String>) -> Finding {
        if !span.is_none() {
            self.primary = Some(Label::new(span, text));
        }
        self
    }

    pub fn because(mut self, span: Span, text: impl Into<String>) -> Finding {
        if !span.is_none() {
            self.related.push(Label::new(span, text));
        }
        self
    }

    pub fn in_chain(mut self, table: &str, chain: &str) -> Finding {
        self.table = Some(table.to_string());
        self.chain = Some(chain.to_string());
        self
    }

    pub fn service(mut self, service: Option<String>) -> Finding {
        self.service = service;
        self
    }

    /// A finding about a rule the input does not show, where the input may leave rules out:
    /// the paste cannot prove the rule missing, so it is a note that says why.
    pub fn unless_hidden(mut self, partial: Option<String>) -> Finding {
        if let Some(why) = partial {
            self.severity = Severity::Note;
            self.message = format!("{} ({why}: the rule may be there)", self.message);
        }
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Finding {
        self.help = Some(help.into());
        self
    }

    /// What identifies this finding across runs of the same dump, for baselines: the rule, the
    /// chain, and the rule text it points at (not the line number, which moves when rules are added).
    pub fn fingerprint(&self, source: &crate::model::Source) -> String {
        let text = self
            .primary
            .as_ref()
            .map(|l| source.slice(l.span).trim().to_string())
            .unwrap_or_else(|| self.message.clone());
        format!(
            "{}|{}|{}",
            self.rule.name,
            self.chain.as_deref().unwrap_or(""),
            text
        )
    }
}
