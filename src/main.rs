//! The `kptrace` binary: parses the command line and hands over to [`kptrace::app`].

use clap::{CommandFactory, FromArgMatches, Parser};

// A rule set of a large node is millions of small allocations made from several threads; mimalloc
// handles that pattern several times faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Installed as `kubectl-kptrace`, kubectl runs it as `kubectl kptrace`: usage says so.
    let plugin = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().starts_with("kubectl-"))
        })
        .unwrap_or(false);
    let cli = if plugin {
        let cmd = kptrace::cli::Cli::command().bin_name("kubectl kptrace");
        let matches = cmd.get_matches();
        kptrace::cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    } else {
        kptrace::cli::Cli::parse()
    };
    kptrace::app::run(cli)
}
