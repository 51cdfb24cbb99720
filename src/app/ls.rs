//! `kptrace ls`: the Services of a dump.

use super::input::{self, FormatChoice};
use crate::cli::{Format, LsArgs};
use crate::kube::Catalog;
use std::process::ExitCode;

pub fn run(args: &LsArgs, fmt: FormatChoice) -> super::Result<ExitCode> {
    let mut sets = input::load_all(&args.files, fmt)?;
    let mut all = Vec::new();
    for rs in &mut sets {
        // Reads every rule once: all parse errors are known after it.
        let mut cat = Catalog::build_resolved(rs);
        input::check_late_errors(rs)?;
        for n in cat.notes.drain(..) {
            rs.note(n, None);
        }
        all.push(cat);
        // The listing needs the Services, not the chains: hand their memory back while it is
        // laid out (a large dump declares 650,000 chains).
        let tables = std::mem::take(&mut rs.tables);
        std::thread::spawn(move || drop(tables));
    }
    let out = match args.format {
        Format::Json => crate::render::ls::json(&sets, &all),
        Format::Human => crate::render::ls::human(&sets, &all),
    };
    anstream::print!("{out}");
    // Freeing a large rule set or catalogue piece by piece only delays the exit.
    std::mem::forget(sets);
    std::mem::forget(all);
    Ok(ExitCode::SUCCESS)
}
