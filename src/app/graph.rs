//! `kptrace graph`: DOT or Mermaid of a Service's path or of the whole rule set.

use super::input::{self, FormatChoice};
use crate::cli::{GraphArgs, GraphFormat};
use crate::render::picture::Picture;
use std::process::ExitCode;

pub fn run(args: &GraphArgs, fmt: FormatChoice) -> super::Result<ExitCode> {
    let rs = input::load(args.file.as_deref(), fmt)?;
    let pic = match &args.svc {
        Some(q) => {
            let (reports, suggestions) = super::svc::analyse(&rs, q, &args.node.node_ips);
            input::check_late_errors(&rs)?;
            if reports.is_empty() {
                return Err(super::svc::not_found(q, suggestions));
            }
            Picture::service(&rs, &reports)
        }
        None => {
            // Reads every rule once: all parse errors are known after it.
            let pic = Picture::ruleset(&rs, !args.no_collapse);
            input::check_late_errors(&rs)?;
            pic
        }
    };
    let out = match args.format {
        GraphFormat::Dot => crate::render::dot::dot(&pic),
        GraphFormat::Mermaid => {
            let text = crate::render::mermaid::mermaid(&pic);
            if let Some(why) = crate::render::mermaid::too_large(&text, &pic) {
                let hint = if args.svc.is_some() {
                    "draw it with `--format dot` and Graphviz instead"
                } else if args.no_collapse {
                    "drop `--no-collapse`, or draw one Service with `--svc NAME`"
                } else {
                    "draw one Service with `--svc NAME`, or use `--format dot` and Graphviz"
                };
                anstream::eprintln!("warning: {why}; {hint}");
            }
            text
        }
    };
    anstream::print!("{out}");
    // Freeing a large rule set piece by piece only delays the exit.
    std::mem::forget(rs);
    Ok(ExitCode::SUCCESS)
}
