//! Writes a synthetic kube-proxy dump to stdout, for benchmarks and scale tests.
//!
//! `cargo run --release --example gendump -- --services 50000 --order kernel > /tmp/50k.rules`
//! `cargo run --release --example gendump -- --services 50000 --mode nftables > /tmp/50k.nft`

use clap::{Parser, ValueEnum};
use kptrace::synth::{self, Options, Order};
use std::io::Write;

#[derive(Clone, Copy, ValueEnum)]
enum OrderArg {
    /// As `iptables-save` prints it (full node dump with builtin chains and hooks).
    Kernel,
    /// As kube-proxy writes it into `iptables-restore` (its payload only).
    KubeProxy,
}

#[derive(Parser)]
struct Args {
    /// Number of Services.
    #[arg(long, default_value_t = 1000)]
    services: usize,
    #[arg(long, value_enum, default_value_t = OrderArg::Kernel)]
    order: OrderArg,
    /// Add `[packets:bytes]` counters as `iptables-save -c` does.
    #[arg(long)]
    counters: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// kube-proxy's mode: iptables rules, or its nftables table (the `add` form `nft -f` reads).
    #[arg(long, value_enum, default_value_t = Mode::Iptables)]
    mode: Mode,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Mode {
    Iptables,
    Nftables,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let opts = Options {
        services: args.services,
        order: match args.order {
            OrderArg::Kernel => Order::Kernel,
            OrderArg::KubeProxy => Order::KubeProxy,
        },
        counters: args.counters,
        seed: args.seed,
    };
    let text = if args.mode == Mode::Nftables {
        kptrace::synth_nft::write(&synth::build(&opts))
    } else {
        synth::generate(&opts).1
    };
    std::io::stdout().lock().write_all(text.as_bytes())
}
