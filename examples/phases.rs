//! Times the phases of reading a dump (a measuring aid for docs/performance.md).
fn main() {
    let path = std::env::args().nth(1).expect("a dump file");
    let t = std::time::Instant::now();
    let bytes = std::fs::read(&path).unwrap();
    eprintln!("read            {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let ok = std::str::from_utf8(&bytes).is_ok();
    eprintln!("utf-8 check     {:?} ({ok})", t.elapsed());
    let t = std::time::Instant::now();
    let n = memchr::memchr_iter(b'\n', &bytes).count();
    eprintln!("count lines     {:?} ({n})", t.elapsed());
    let t = std::time::Instant::now();
    let rs = kptrace::parse::read(&path, bytes, None).unwrap();
    eprintln!("decode + index  {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let cat = kptrace::kube::Catalog::build(&rs, false);
    eprintln!(
        "catalogue       {:?} ({} ports)",
        t.elapsed(),
        cat.ports.len()
    );
    let t = std::time::Instant::now();
    let (r, _) = kptrace::app::svc::analyse(&rs, "ns7/svc783", &[]);
    eprintln!("svc analyse     {:?} ({} ports)", t.elapsed(), r.len());
    std::mem::forget(rs);
}
