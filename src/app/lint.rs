//! `kptrace lint`: findings for each dump, filtered by `--allow`/`--deny`/baseline, and the exit code
//! that `--fail-on` asks for.

use super::input::{self, FormatChoice};
use super::Failure;
use crate::cli::{FailOn, LintArgs, LintFormat};
use crate::lint::baseline::Baseline;
use crate::lint::{rules, Finding, Options, Severity};
use crate::render::lint::{FileFindings, Summary};
use std::process::ExitCode;

fn rule_names(list: &[String]) -> super::Result<Vec<&'static str>> {
    list.iter()
        .map(|n| {
            rules::find(n).map(|r| r.meta().name).ok_or_else(|| {
                let names: Vec<&str> = rules::ALL.iter().map(|r| r.meta().name).collect();
                Failure::Input(miette::miette!(
                    help = format!("known rules: {}", names.join(", ")),
                    "unknown lint rule `{n}`"
                ))
            })
        })
        .collect()
}

pub fn run(args: &LintArgs, fmt: FormatChoice) -> super::Result<ExitCode> {
    if args.list_rules {
        anstream::print!("{}", crate::render::lint::rule_list());
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(name) = &args.explain {
        let rule = rule_names(std::slice::from_ref(name))?[0];
        let meta = rules::find(rule).unwrap().meta();
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
    };
    let mut sets = input::load_all(&args.files, fmt)?;
    let mut files = Vec::new();
    let mut summary = Summary::default();
    let mut fingerprints = Vec::new();
    for rs in &mut sets {
        let mut found: Vec<Finding> = crate::lint::run(rs, &opts);
        input::check_late_errors(rs)?;
        // Reports need the text, not the chains: hand their memory back while they are laid
        // out (a large dump declares 650,000 chains).
        let tables = std::mem::take(&mut rs.tables);
        std::thread::spawn(move || drop(tables));
        let rs: &_ = rs;
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
            rs,
            findings: found,
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
    Ok(if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
