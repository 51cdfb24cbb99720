//! Times the phases of reading a dump the way the CLI does (a measuring aid for
//! docs/performance.md): `cargo run --release --example phases -- FILE [SERVICE]`. Each phase
//! prints its time and the resident memory after it; parsed rules are not kept between phases,
//! as the commands keep none.
use std::time::Instant;

// The allocator the CLI uses, so that the phases add up to its times.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Resident anonymous and file-backed memory now, from /proc/self/status.
fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    format!(
        "anon {} MB, file {} MB, peak {} MB",
        kb("RssAnon:"),
        kb("RssFile:"),
        kb("VmHWM:")
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("a dump file");
    let query = args.next().unwrap_or_else(|| "ns7/svc7".into());
    let file = std::fs::File::open(&path).unwrap();
    // SAFETY: a measuring aid over a file nobody rewrites meanwhile.
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    let t = Instant::now();
    let (source, errors) =
        kptrace::parse::input::decode(&path, kptrace::parse::input::RawInput::Mapped(map));
    assert!(errors.is_empty());
    eprintln!("decode: UTF-8, line index  {:?}  {}", t.elapsed(), rss());
    let t = Instant::now();
    // nftables text (`nft list ruleset`, the `add` form) has its own reader.
    let rs = if kptrace::parse::nft::looks_like(&source.text) {
        kptrace::parse::nft::parse(source).unwrap()
    } else {
        kptrace::parse::save::parse(source).unwrap()
    };
    eprintln!("index chains and runs      {:?}  {}", t.elapsed(), rss());
    let t = Instant::now();
    let (r, _) = kptrace::app::svc::analyse(&rs, &query, &[]);
    eprintln!(
        "svc analyse                {:?} ({} ports)  {}",
        t.elapsed(),
        r.len(),
        rss()
    );
    let t = Instant::now();
    {
        use rayon::prelude::*;
        let chains: Vec<&kptrace::model::Chain> =
            rs.tables.iter().flat_map(|t| t.chains.iter()).collect();
        let n: usize = chains
            .par_iter()
            .with_min_len(512)
            .map(|c| rs.peek_rules(c).len())
            .sum();
        eprintln!(
            "parse every rule, keep none {:?} ({n} rules)  {}",
            t.elapsed(),
            rss()
        );
    }
    let t = Instant::now();
    let cat = kptrace::kube::Catalog::build_resolved(&rs);
    eprintln!(
        "catalogue, whole dump      {:?} ({} ports)  {}",
        t.elapsed(),
        cat.ports.len(),
        rss()
    );
    let t = Instant::now();
    let found = kptrace::lint::run(&rs, &Default::default());
    eprintln!(
        "lint: sweep, graph, checks  {:?} ({} findings)  {}",
        t.elapsed(),
        found.len(),
        rss()
    );
    let t = Instant::now();
    let sets = vec![rs];
    let cats = vec![cat];
    let out = kptrace::render::ls::human(&sets, &cats);
    eprintln!(
        "ls table                   {:?} ({} bytes)  {}",
        t.elapsed(),
        out.len(),
        rss()
    );
    let t = Instant::now();
    let out = kptrace::render::ls::json(&sets, &cats);
    eprintln!(
        "ls json                    {:?} ({} bytes)  {}",
        t.elapsed(),
        out.len(),
        rss()
    );
    std::mem::forget(sets);
}
