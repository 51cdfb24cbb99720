//! Parse throughput on generated kube-proxy dumps (1k / 10k / 50k Services).
//!
//! `cargo bench --bench parse`; set `KPTRACE_BENCH_SIZES=1000,10000` to choose sizes.
//! Results and how to read them: docs/performance.md.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use kptrace::synth::{self, Options, Order};
use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn sizes() -> Vec<usize> {
    std::env::var("KPTRACE_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 50_000])
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for n in sizes() {
        for order in [Order::Kernel, Order::KubeProxy] {
            let (_, text) = synth::generate(&Options {
                services: n,
                order,
                ..Options::default()
            });
            g.throughput(Throughput::Bytes(text.len() as u64));
            let label = format!("{order:?}/{n}");
            // Index only (what `svc` needs before it looks at one Service).
            // The input copy is made, and the result dropped, outside the measurement.
            g.bench_with_input(BenchmarkId::new("index", &label), &text, |b, text| {
                b.iter_batched(
                    || text.clone().into_bytes(),
                    |bytes| kptrace::parse::read("bench", bytes, None).unwrap(),
                    BatchSize::PerIteration,
                )
            });
            // Every rule parsed once and dropped, chain by chain on all cores (the sweep `ls`,
            // `lint` and `graph` make).
            g.bench_with_input(BenchmarkId::new("full", &label), &text, |b, text| {
                b.iter_batched(
                    || text.clone().into_bytes(),
                    |bytes| {
                        let rs = kptrace::parse::read("bench", bytes, None).unwrap();
                        let rules: usize = rs
                            .tables
                            .iter()
                            .map(|t| rs.sweep(t, |v| v.rules.len()).iter().sum::<usize>())
                            .sum();
                        assert!(rs.take_errors().is_empty() && rules > 0);
                        rs
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
