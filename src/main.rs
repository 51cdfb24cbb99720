//! The `kptrace` binary: parses the command line and hands over to [`kptrace::app`].

use clap::Parser;

// A rule set of a large node is millions of small allocations made from several threads; mimalloc
// handles that pattern several times faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = kptrace::cli::Cli::parse();
    kptrace::app::run(cli)
}
