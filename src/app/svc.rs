//! `kptrace svc`.
use super::input::FormatChoice;
use crate::cli::SvcArgs;
use std::process::ExitCode;
pub fn run(_a: &SvcArgs, _f: FormatChoice) -> super::Result<ExitCode> { todo!() }
