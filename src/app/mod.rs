//! Runs the commands: reads inputs, calls the pipeline, renders, and chooses the exit code.
//!
//! Exit codes: 0 success; 1 the answer is "no" (unknown Service, lint findings at or above the
//! threshold); 2 the input could not be read or the command line is wrong.

mod graph;
mod input;
mod lint;
mod ls;
pub mod svc;
mod trace;

use crate::cli::{Cli, ColorChoice, Command};
use std::io::IsTerminal;
use std::process::ExitCode;

/// Why a command stopped early.
pub enum Failure {
    /// Unreadable input or bad arguments: exit 2, the report already says why.
    Input(miette::Report),
    /// A well-formed "no": exit 1.
    No(String),
}

impl From<miette::Report> for Failure {
    fn from(r: miette::Report) -> Self {
        Failure::Input(r)
    }
}

pub type Result<T> = std::result::Result<T, Failure>;

/// `svc`: some way into the Service certainly fails; `trace`: no way the connection can end is
/// accepted (docs/exit-codes.md).
pub const EXIT_FAILS: u8 = 3;

pub fn run(cli: Cli) -> ExitCode {
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    match cli.color {
        ColorChoice::Always => anstream::ColorChoice::Always.write_global(),
        ColorChoice::Never => anstream::ColorChoice::Never.write_global(),
        ColorChoice::Auto => {}
    }
    let stderr_tty = std::io::stderr().is_terminal();
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .terminal_links(false)
                // The width the tables use: the terminal's or an exported COLUMNS; piped, 80.
                .width(crate::render::style::out_width().unwrap_or(80))
                .color(color && (stderr_tty || cli_forced(color)))
                .unicode(stderr_tty)
                .build(),
        )
    }));
    let fmt = input::FormatChoice(cli.input_format);
    let result = match &cli.command {
        Command::Ls(a) => ls::run(a, fmt),
        Command::Svc(a) => svc::run(a, fmt),
        Command::Trace(a) => trace::run(a, fmt),
        Command::Lint(a) => lint::run(a, fmt),
        Command::Graph(a) => graph::run(a, fmt),
        Command::Completions(a) => {
            let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            let name = cmd.get_name().to_string();
            clap_complete::generate(a.shell, &mut cmd, name, &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                // `kptrace man | head`: the reader has what it wanted.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
                Err(e) => Err(Failure::Input(miette::miette!(
                    "cannot write the manual: {e}"
                ))),
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(Failure::Input(report)) => {
            eprintln!("{report:?}");
            ExitCode::from(2)
        }
        Err(Failure::No(msg)) => {
            anstream::eprintln!("{msg}");
            ExitCode::from(1)
        }
    }
}

fn cli_forced(_color: bool) -> bool {
    matches!(
        anstream::ColorChoice::global(),
        anstream::ColorChoice::Always
    )
}
