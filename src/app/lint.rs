//! `kptrace lint`: findings for each dump, filtered by `--allow`/`--deny`/baseline, and the exit code
//! that `--fail-on` asks for.

use super::input::{self, FormatChoice};
use super::Failure;
use crate::cli::{FailOn, LintArgs, LintFormat};
use crate::lint::baseline::Baseline;
use crate::lint::{rules, Finding, Options, Severity};
use crate::model::{Ruleset, Source};
use crate::render::lint::{FileFindings, Summary};
use std::process::ExitCode;
use std::sync::Arc;

fn rule_names(list: &[String]) -> super::Result<Vec<&'static str>> {
    list.iter()
        .map(|n| {
            rules::find_meta(n).map(|m| m.name).ok_or_else(|| {
                let names: Vec<&str> = rules::metas().map(|m| m.name).collect();
                Failure::Input(miette::miette!(
                    help = format!("known rules: {}", names.join(", ")),
                    "unknown lint rule `{n}`"
                ))
            })
        })
        .collect()
}

/// What a finding's file needs for its fingerprint: the text.
struct Shown {
    source: Arc<Source>,
}

/// A parse error as a finding of `unreadable-input`.
fn error_finding(e: &crate::error::ParseError) -> Finding {
    let mut f =
        Finding::new(rules::unreadable_input(), e.kind.to_string()).at(e.span, e.kind.label());
    if let Some((span, label)) = &e.cause {
        f = f.because(*span, label.clone());
    }
    if let Some(h) = e.kind.help() {
        f = f.help(h);
    }
    f
}

/// An input that could not be read, as findings: its parse errors, or one finding saying why the
/// file could not be opened.
fn unreadable_findings(u: input::Unreadable) -> (Arc<Source>, Vec<Finding>) {
    match u.source {
        Some(source) => {
            let found = u
                .errors
                .iter()
                .take(crate::error::SHOWN_ERRORS)
                .map(error_finding)
                .collect();
            (source, found)
        }
        None => (
            Source::new(u.name, String::new()),
            vec![Finding::new(
                rules::unreadable_input(),
                u.message.unwrap_or_else(|| "cannot read the input".into()),
            )],
        ),
    }
}

pub fn run(args: &LintArgs, fmt: FormatChoice) -> super::Result<ExitCode> {
    if args.list_rules {
        anstream::print!("{}", crate::render::lint::rule_list());
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(name) = &args.explain {
        let rule = rule_names(std::slice::from_ref(name))?[0];
        let meta = rules::find_meta(rule).unwrap();
        anstream::print!("{}", crate::render::lint::explain(meta));
        return Ok(ExitCode::SUCCESS);
    }
    let allow = rule_names(&args.allow)?;
    let deny = rule_names(&args.deny)?;
    let baseline = match &args.baseline {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                Failure::Input(miette::miette!(
                    "cannot read baseline `{}`: {e}",
                    p.display()
                ))
            })?;
            serde_json::from_str::<Baseline>(&text).map_err(|e| {
                Failure::Input(miette::miette!(
                    help = "write one with `kptrace lint --write-baseline FILE`",
                    "`{}` is not a kptrace baseline: {e}",
                    p.display()
                ))
            })?
        }
        None => Baseline::default(),
    };
    let opts = Options {
        uneven_tolerance: args.uneven_tolerance,
        uplink: args.ifaces.uplink.clone(),
        pod_iface: args.ifaces.pod_iface.clone(),
        scope_all: args.scope == crate::cli::LintScope::All,
    };
    let loaded = input::load_each(&args.files, fmt);
    let human = args.format == LintFormat::Human;
    let mut unreadable = false;
    let mut sets: Vec<Ruleset> = Vec::new();
    // Each input's findings, in the order given; an unreadable one's are its errors.
    let mut per_input: Vec<(Arc<Source>, Vec<Finding>, Vec<String>)> = Vec::new();
    let mut index_of_set = Vec::new();
    for l in loaded {
        match l {
            Ok(rs) => {
                index_of_set.push(per_input.len());
                per_input.push((
                    rs.source.clone(),
                    Vec::new(),
                    rs.notes.iter().map(|n| n.message.clone()).collect(),
                ));
                sets.push(rs);
            }
            Err(u) => {
                unreadable = true;
                if human {
                    // People get the input errors as every command prints them.
                    anstream::eprintln!("{:?}", u.report);
                    continue;
                }
                let (source, found) = unreadable_findings(u);
                per_input.push((source, found, Vec::new()));
            }
        }
    }
    let refs: Vec<&Ruleset> = sets.iter().collect();
    let mut across = rules::across(&refs);
    for (i, rs) in sets.iter_mut().enumerate() {
        let mut found: Vec<Finding> = crate::lint::run(rs, &opts);
        let (mine, rest): (Vec<_>, Vec<_>) = across.into_iter().partition(|(j, _)| *j == i);
        across = rest;
        found.extend(mine.into_iter().map(|(_, f)| f));
        let late = rs.take_errors();
        if !late.is_empty() {
            unreadable = true;
            if human {
                anstream::eprintln!("{:?}", crate::error::report(&rs.source, late));
            } else {
                found.extend(late.into_iter().map(|e| error_finding(&e)));
            }
        }
        // Reports need the text, not the chains: hand their memory back while they are laid
        // out (a large dump declares 650,000 chains).
        let tables = std::mem::take(&mut rs.tables);
        std::thread::spawn(move || drop(tables));
        per_input[index_of_set[i]].1 = found;
    }
    let mut files = Vec::new();
    let mut summary = Summary::default();
    let mut fingerprints = Vec::new();
    for (source, mut found, notes) in per_input {
        let rs = Shown { source };
        found.retain(|f| !allow.contains(&f.rule.name));
        for f in &mut found {
            if deny.contains(&f.rule.name) {
                f.severity = Severity::Error;
            }
        }
        fingerprints.extend(found.iter().map(|f| f.fingerprint(&rs.source)));
        let before = found.len();
        found.retain(|f| !baseline.contains(&f.fingerprint(&rs.source)));
        summary.suppressed += before - found.len();
        summary.count(&found);
        files.push(FileFindings {
            source: rs.source,
            findings: found,
            notes,
        });
    }
    summary.files = files.len();
    if let Some(p) = &args.write_baseline {
        let b = Baseline::new(fingerprints);
        let text = serde_json::to_string_pretty(&b).unwrap() + "\n";
        std::fs::write(p, text).map_err(|e| {
            Failure::Input(miette::miette!(
                "cannot write baseline `{}`: {e}",
                p.display()
            ))
        })?;
        anstream::eprintln!(
            "wrote {} finding{} to {}",
            b.findings.len(),
            if b.findings.len() == 1 { "" } else { "s" },
            p.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let out = match args.format {
        LintFormat::Human => crate::render::lint::human(&files, &summary),
        LintFormat::Json => crate::render::lint::json(&files, &summary),
        LintFormat::Sarif => crate::render::lint::sarif(&files),
        LintFormat::Github => crate::render::lint::github(&files, &summary),
    };
    anstream::print!("{out}");
    let threshold = match args.fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Note => Some(Severity::Note),
        FailOn::Never => None,
    };
    let failing = threshold.is_some_and(|t| {
        files
            .iter()
            .flat_map(|f| &f.findings)
            .any(|f| f.severity >= t)
    });
    // Freeing millions of parsed rules one by one only delays the exit.
    std::mem::forget(files);
    std::mem::forget(sets);
    // An input that could not be read is exit 2 whatever the findings of the others.
    if unreadable {
        return Ok(ExitCode::from(2));
    }
    Ok(if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
