//! `kptrace ls`: the Services of a dump.

use super::input::{self, FormatChoice};
use crate::cli::{Format, LsArgs};
use crate::kube::Catalog;
use std::process::ExitCode;

pub fn run(args: &LsArgs, fmt: FormatChoice) -> super::Result<ExitCode> {
    let sets = input::load_all(&args.files, fmt)?;
    let mut all = Vec::new();
    for rs in &sets {
        rs.parse_all();
        input::check_late_errors(rs)?;
        all.push(Catalog::build(rs, true));
    }
    let out = match args.format {
        Format::Json => crate::render::ls::json(&sets, &all),
        Format::Human => crate::render::ls::human(&sets, &all),
    };
    anstream::print!("{out}");
    // Freeing a large rule set piece by piece only delays the exit.
    std::mem::forget(sets);
    Ok(ExitCode::SUCCESS)
}
