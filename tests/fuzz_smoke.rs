//! The fuzz targets' checks (`kptrace::harness`), on stable Rust, in every test run: each fixture
//! and each input a fuzzer once crashed on (fixtures/fuzz-regressions) as it is, then random
//! mutations of the fixtures (bytes flipped, inserted and cut, lines dropped, repeated and
//! swapped, the text truncated), through the parsers, the tracer and lint. The long runs are
//! `cargo fuzz` (fuzz/, docs/fuzzing.md).

mod common;

use proptest::prelude::*;
use std::path::PathBuf;

fn files(dir: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![common::fixture(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("json" | "md" | "png")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn all_targets(data: &[u8]) {
    kptrace::harness::parse(data);
    kptrace::harness::trace(data);
    kptrace::harness::lint(data);
}

#[test]
fn every_fuzz_regression_input_runs_clean() {
    let found = files("fuzz-regressions");
    assert!(found.len() >= 2);
    for f in found {
        let data = std::fs::read(&f).unwrap();
        // The recorded input (with the form byte the fuzzer chose), and as plain input.
        all_targets(&data);
        let mut detect = vec![0u8];
        detect.extend_from_slice(&data[1.min(data.len())..]);
        all_targets(&detect);
    }
}

#[test]
fn every_fixture_in_every_form_runs_clean() {
    for f in files("") {
        if f.components().any(|c| c.as_os_str() == "fuzz-regressions") {
            continue;
        }
        let text = std::fs::read(&f).unwrap();
        for form in 0u8..4 {
            let mut data = vec![form];
            data.extend_from_slice(&text);
            all_targets(&data);
        }
    }
}

#[derive(Clone, Debug)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Cut(usize, usize),
    DropLine(usize),
    RepeatLine(usize, usize),
    SwapLines(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting = prop_oneof![
        Just(b"\0".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(b" -j ".to_vec()),
        Just(b" ! ".to_vec()),
        Just(b"\n*nat\n".to_vec()),
        Just(b"\nCOMMIT\n".to_vec()),
        Just(b" -m statistic --mode random --probability 0.5".to_vec()),
        Just(b"/33".to_vec()),
        Just(b":99999".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"Chain X (1 references)\n".to_vec()),
        prop::collection::vec(any::<u8>(), 1..8),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), interesting).prop_map(|(i, v)| Edit::Insert(i, v)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Edit::Cut(i, n)),
        any::<usize>().prop_map(Edit::DropLine),
        (any::<usize>(), 2usize..50).prop_map(|(i, n)| Edit::RepeatLine(i, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut data: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        if data.is_empty() {
            break;
        }
        let n = data.len();
        match e {
            Edit::Flip(i, b) => data[i % n] ^= b | 1,
            Edit::Insert(i, v) => {
                let at = i % n;
                data.splice(at..at, v.iter().copied());
            }
            Edit::Cut(i, k) => {
                let at = i % n;
                data.drain(at..(at + k).min(n));
            }
            Edit::Truncate(i) => data.truncate(i % n),
            Edit::DropLine(i) | Edit::RepeatLine(i, _) | Edit::SwapLines(i, _) => {
                let mut lines: Vec<Vec<u8>> =
                    data.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                let l = lines.len();
                match e {
                    Edit::DropLine(_) => {
                        lines.remove(i % l);
                    }
                    Edit::RepeatLine(_, k) => {
                        let line = lines[i % l].clone();
                        for _ in 0..*k {
                            lines.insert(i % l, line.clone());
                        }
                    }
                    Edit::SwapLines(_, j) => lines.swap(i % l, j % l),
                    _ => unreachable!(),
                }
                data = lines.join(&b'\n');
            }
        }
    }
    data
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fixtures_never_break_a_target(
        pick in any::<prop::sample::Index>(),
        form in 0u8..4,
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let pool: Vec<PathBuf> = files("seeds")
            .into_iter()
            .chain(files("valid"))
            .chain(files("lint"))
            .chain(files("invalid"))
            .chain(files("conformance").into_iter().step_by(3))
            .collect();
        let text = std::fs::read(pick.get(&pool)).unwrap();
        let mut data = vec![form];
        data.extend(apply(text, &edits));
        all_targets(&data);
    }
}
