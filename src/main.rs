//! The `kptrace` binary: parses the command line and hands over to [`kptrace::app`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = kptrace::cli::Cli::parse();
    kptrace::app::run(cli)
}
