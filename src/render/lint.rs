//! Lint findings for people (miette, with the offending lines), for machines (JSON, SARIF 2.1.0) and
//! for GitHub Actions (workflow annotations). The JSON and SARIF shapes are documented in
//! docs/lint.md and are a stable interface.

use super::style::{paint, BAD, BOLD, DIM, GOOD, WARN};
use crate::error::SharedText;
use crate::lint::{rules, Finding, Meta, Severity};
use crate::model::Source;
use miette::{Diagnostic, LabeledSpan, NamedSource};
use serde_json::{json, Value};
use std::sync::Arc;

pub struct FileFindings {
    /// The input the findings point into (an unreadable file's text, or an empty stand-in).
    pub source: Arc<Source>,
    pub findings: Vec<Finding>,
    /// What kptrace noted while reading the input (a cut in a paste, chains jumped to but not
    /// shown): the limits of what the findings can say.
    pub notes: Vec<String>,
}

#[derive(Default, Debug)]
pub struct Summary {
    pub files: usize,
    pub errors: usize,
    pub warnings: usize,
    pub notes: usize,
    pub suppressed: usize,
}

impl Summary {
    pub fn count(&mut self, findings: &[Finding]) {
        for f in findings {
            match f.severity {
                Severity::Error => self.errors += 1,
                Severity::Warning => self.warnings += 1,
                Severity::Note => self.notes += 1,
            }
        }
    }

    fn line(&self) -> String {
        let n = |k: usize, what: &str| format!("{k} {what}{}", if k == 1 { "" } else { "s" });
        let mut s = format!(
            "{}, {}, {} in {}",
            n(self.errors, "error"),
            n(self.warnings, "warning"),
            n(self.notes, "note"),
            n(self.files, "file")
        );
        if self.suppressed > 0 {
            s += &format!(" ({} suppressed by the baseline)", self.suppressed);
        }
        s
    }
}

struct FindingDiagnostic {
    f: Finding,
    source: NamedSource<SharedText>,
}

impl std::fmt::Debug for FindingDiagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.f.message)
    }
}
impl std::fmt::Display for FindingDiagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.f.message)
    }
}
impl std::error::Error for FindingDiagnostic {}
impl Diagnostic for FindingDiagnostic {
    fn code<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        Some(Box::new(format!(
            "{} {}",
            self.f.rule.code, self.f.rule.name
        )))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.f.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Note => miette::Severity::Advice,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.f
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let mut v = Vec::new();
        if let Some(p) = &self.f.primary {
            v.push(LabeledSpan::new_primary_with_span(
                Some(p.text.clone()),
                p.span,
            ));
        }
        for r in &self.f.related {
            v.push(LabeledSpan::new_with_span(Some(r.text.clone()), r.span));
        }
        Some(Box::new(v.into_iter()))
    }
}

fn named(source: &Arc<Source>) -> NamedSource<SharedText> {
    NamedSource::new(source.name.clone(), SharedText(source.clone()))
}

/// Human output: the most serious findings first, each with its lines, then one summary line.
pub fn human(files: &[FileFindings], summary: &Summary) -> String {
    let mut out = String::new();
    for file in files {
        let mut sorted: Vec<&Finding> = file.findings.iter().collect();
        sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
        // Each report lays out its snippet on its own: a dump with a thousand findings renders
        // them on all cores.
        use rayon::prelude::*;
        let reports: Vec<String> = sorted
            .par_iter()
            .map(|f| {
                let d = FindingDiagnostic {
                    f: (*f).clone(),
                    source: named(&file.source),
                };
                format!("{:?}\n", miette::Report::new_boxed(Box::new(d)))
            })
            .collect();
        for r in reports {
            out += &r;
        }
        for n in &file.notes {
            let text = if files.len() > 1 {
                format!("note: {}: {n}", file.source.name)
            } else {
                format!("note: {n}")
            };
            out += &paint(DIM, super::style::prose(&text, 6));
        }
    }
    let line = summary.line();
    out += &if summary.errors > 0 {
        paint(BAD, format!("✗ {line}"))
    } else if summary.warnings > 0 {
        paint(WARN, format!("! {line}"))
    } else {
        paint(GOOD, format!("✓ {line}"))
    };
    out.push('\n');
    out
}

/// (line, column, end line, end column), 1-based.
fn bounds(source: &Source, span: crate::model::Span) -> (u32, u32, u32, u32) {
    let (line, col) = source.line_col(span.start);
    let (end_line, end_col) = source.line_col(span.end);
    (line, col, end_line, end_col)
}

fn position(source: &Source, span: crate::model::Span) -> Value {
    let (line, col, end_line, end_col) = bounds(source, span);
    json!({"line": line, "column": col, "end_line": end_line, "end_column": end_col})
}

fn finding_json(source: &Source, f: &Finding) -> Value {
    let pos = f.primary.as_ref().map(|p| position(source, p.span));
    let get = |k: &str| pos.as_ref().map(|p| p[k].clone()).unwrap_or(Value::Null);
    json!({
        "rule": f.rule.name,
        "code": f.rule.code,
        "severity": f.severity,
        "message": f.message,
        "file": source.name,
        "line": get("line"),
        "column": get("column"),
        "end_line": get("end_line"),
        "end_column": get("end_column"),
        "table": f.table,
        "chain": f.chain,
        "service": f.service,
        "scope": f.scope,
        "help": f.help,
        "related": f.related.iter().map(|r| {
            let (line, column) = source.line_col(r.span.start);
            json!({"line": line, "column": column, "message": r.text})
        }).collect::<Vec<_>>(),
    })
}

/// `{"findings": [...], "summary": {...}}`: see docs/lint.md.
pub fn json(files: &[FileFindings], summary: &Summary) -> String {
    let findings: Vec<Value> = files
        .iter()
        .flat_map(|file| file.findings.iter().map(|f| finding_json(&file.source, f)))
        .collect();
    let notes: Vec<Value> = files
        .iter()
        .flat_map(|file| {
            file.notes
                .iter()
                .map(|n| json!({"input": file.source.name, "message": n}))
        })
        .collect();
    let v = json!({
        "findings": findings,
        "notes": notes,
        "schema_version": super::SCHEMA_VERSION,
        "summary": {
            "files": summary.files,
            "errors": summary.errors,
            "warnings": summary.warnings,
            "notes": summary.notes,
            "suppressed": summary.suppressed,
        }
    });
    serde_json::to_string_pretty(&v).unwrap() + "\n"
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

fn region(source: &Source, span: crate::model::Span) -> Value {
    let (line, col, end_line, end_col) = bounds(source, span);
    json!({"startLine": line, "startColumn": col, "endLine": end_line, "endColumn": end_col})
}

/// File names as SARIF artifact URIs: relative paths stay relative (to the repository root, which
/// is what code scanning expects), with `/` separators.
fn uri(name: &str) -> String {
    name.replace('\\', "/").trim_start_matches("./").to_string()
}

/// SARIF 2.1.0 log with one run.
pub fn sarif(files: &[FileFindings]) -> String {
    let rule_ids: Vec<&'static Meta> = rules::metas().collect();
    let rules_json: Vec<Value> = rule_ids
        .iter()
        .map(|m| {
            json!({
                "id": m.code,
                "name": m.name,
                "shortDescription": {"text": m.summary},
                "fullDescription": {"text": m.summary},
                "help": {"text": m.doc(), "markdown": m.doc()},
                "helpUri": format!("https://github.com/kptrace/kptrace/blob/main/docs/rules/{}.md", m.name),
                "defaultConfiguration": {"level": sarif_level(m.severity)},
                "properties": {"tags": ["kube-proxy", "iptables"]},
            })
        })
        .collect();
    let mut results = Vec::new();
    for file in files {
        let source = &file.source;
        for f in &file.findings {
            let index = rule_ids.iter().position(|m| m.name == f.rule.name).unwrap();
            let mut r = json!({
                "ruleId": f.rule.code,
                "ruleIndex": index,
                "level": sarif_level(f.severity),
                "message": {"text": match &f.help {
                    Some(h) => format!("{} ({h})", f.message),
                    None => f.message.clone(),
                }},
                "partialFingerprints": {"kptrace/v1": f.fingerprint(source)},
            });
            let artifact = json!({"uri": uri(&source.name)});
            if let Some(p) = &f.primary {
                r["locations"] = json!([{
                    "physicalLocation": {"artifactLocation": artifact, "region": region(source, p.span)}
                }]);
            } else {
                r["locations"] = json!([{"physicalLocation": {"artifactLocation": artifact}}]);
            }
            if !f.related.is_empty() {
                r["relatedLocations"] = Value::Array(
                    f.related
                        .iter()
                        .enumerate()
                        .map(|(i, l)| {
                            json!({
                                "id": i + 1,
                                "message": {"text": l.text},
                                "physicalLocation": {"artifactLocation": {"uri": uri(&source.name)}, "region": region(source, l.span)},
                            })
                        })
                        .collect(),
                );
            }
            results.push(r);
        }
    }
    let v = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "kptrace",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/kptrace/kptrace",
                "rules": rules_json,
            }},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&v).unwrap() + "\n"
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions workflow commands: `::error file=…,line=…::message`.
pub fn github(files: &[FileFindings], summary: &Summary) -> String {
    let mut out = String::new();
    for file in files {
        let source = &file.source;
        for f in &file.findings {
            let level = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "notice",
            };
            let mut props = vec![format!("file={}", escape_property(&uri(&source.name)))];
            if let Some(p) = &f.primary {
                let (line, col, end_line, end_col) = bounds(source, p.span);
                props.push(format!(
                    "line={line},col={col},endLine={end_line},endColumn={end_col}"
                ));
            }
            props.push(format!(
                "title={}",
                escape_property(&format!("{} {}", f.rule.code, f.rule.name))
            ));
            let msg = match &f.help {
                Some(h) => format!("{}\n{h}", f.message),
                None => f.message.clone(),
            };
            out += &format!("::{level} {}::{}\n", props.join(","), escape_data(&msg));
        }
    }
    out += &format!("{}\n", summary.line());
    out
}

/// `kptrace lint --list-rules`.
pub fn rule_list() -> String {
    let mut t = super::style::table();
    t.set_header(vec!["code", "rule", "severity", "what it finds"]);
    for m in rules::metas() {
        t.add_row(vec![m.code, m.name, m.severity.name(), m.summary]);
    }
    super::style::finish(&t)
}

/// `kptrace lint --explain RULE`.
pub fn explain(m: &Meta) -> String {
    format!(
        "{}\n{}\n{}",
        paint(
            BOLD,
            format!("{} {} ({})", m.code, m.name, m.severity.name())
        ),
        paint(DIM, m.summary),
        m.doc()
    )
}
