//! `kptrace trace`.
use super::input::FormatChoice;
use crate::cli::TraceArgs;
use std::process::ExitCode;
pub fn run(_a: &TraceArgs, _f: FormatChoice) -> super::Result<ExitCode> { todo!() }
