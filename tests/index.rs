//! How a save dump is indexed: rules kept as runs of lines until read, and large files read a
//! window at a time. Both are speed-ups only, so each test checks that they change no answer.

use assert_cmd::Command;
use kptrace::model::{Counters, InputFormat, Ruleset};
use kptrace::synth::{self, Options, Order};

fn parse(text: &str) -> Ruleset {
    kptrace::parse::read("t.rules", text.as_bytes().to_vec(), Some(InputFormat::Save))
        .unwrap_or_else(|f| panic!("{:?}", f.errors))
}

/// (line, text, counters) of every rule of a chain, in order.
fn rules(rs: &Ruleset, chain: &str) -> Vec<(u32, String, Option<Counters>)> {
    let c = rs.chain("nat", chain).unwrap();
    (0..c.rules.len())
        .map(|i| {
            let r = rs.rule(c, i);
            (r.line, rs.source.slice(r.span).to_string(), r.counters)
        })
        .collect()
}

#[test]
fn rules_read_from_runs_are_the_lines_they_came_from_in_chain_order() {
    let text = "\
*nat
:PREROUTING ACCEPT [0:0]
:A - [0:0]
:B - [0:0]
-A A -j B
  -A A -s 10.0.0.1/32 -j RETURN\t
# a comment ends a run
-A A -j ACCEPT
[5:300] -A B -p tcp -j ACCEPT
-A B -p udp -j ACCEPT   \r
-A A -d 10.0.0.2/32 -j RETURN
-I A 1 -j MARK --set-xmark 0x1/0x1
-A PREROUTING -j A
COMMIT
";
    let rs = parse(text);
    assert_eq!(rs.rule_count(), 8);
    let a = rs.chain("nat", "A").unwrap();
    assert_eq!(a.rules.count(), 5, "counted without reading the run");
    assert_eq!(
        rules(&rs, "A"),
        vec![
            (12, "-I A 1 -j MARK --set-xmark 0x1/0x1".into(), None),
            (5, "-A A -j B".into(), None),
            (6, "-A A -s 10.0.0.1/32 -j RETURN".into(), None),
            (8, "-A A -j ACCEPT".into(), None),
            (11, "-A A -d 10.0.0.2/32 -j RETURN".into(), None),
        ]
    );
    assert_eq!(
        rules(&rs, "B"),
        vec![
            (
                9,
                "[5:300] -A B -p tcp -j ACCEPT".into(),
                Some(Counters {
                    packets: 5,
                    bytes: 300
                })
            ),
            (10, "-A B -p udp -j ACCEPT".into(), None),
        ]
    );
    // The parsed rules are those lines: the second rule of A tests its source.
    let a1 = rs.rule(a, 2);
    assert!(kptrace::model::print::rule_spec(a1).contains("-s 10.0.0.1/32"));
    assert_eq!(rules(&rs, "PREROUTING").len(), 1);
}

#[test]
fn a_chain_named_in_the_source_reads_as_its_declaration() {
    let rs = parse("*nat\n:KUBE-SVC-X - [0:0]\n-A KUBE-SVC-X -j RETURN\nCOMMIT\n");
    let t = rs.table("nat").unwrap();
    let c = t.chain("KUBE-SVC-X").unwrap();
    assert_eq!(&*c.name, "KUBE-SVC-X");
    assert_eq!(rs.source.slice(c.decl.unwrap()), ":KUBE-SVC-X - [0:0]");
}

fn kptrace() -> Command {
    Command::cargo_bin("kptrace").unwrap()
}

/// A generated dump of over 8 MB, so that a mapped file is read in several windows.
fn large_dump() -> String {
    let (_, text) = synth::generate(&Options {
        services: 3000,
        order: Order::Kernel,
        counters: false,
        seed: 7,
    });
    assert!(text.len() > 3 * (8 << 20) / 2, "{} bytes", text.len());
    text
}

#[test]
fn a_large_file_read_in_windows_answers_as_the_same_text_read_whole() {
    let text = large_dump();
    let dir = tempdir();
    let path = dir.join("large.rules");
    std::fs::write(&path, &text).unwrap();
    for args in [
        &["ls", "--format", "json"][..],
        &["lint", "--format", "json"][..],
    ] {
        let mapped = kptrace().args(args).arg(&path).output().unwrap();
        let piped = kptrace()
            .args(args)
            .write_stdin(text.clone())
            .output()
            .unwrap();
        assert_eq!(mapped.status.code(), piped.status.code(), "{args:?}");
        let (m, p) = (
            String::from_utf8(mapped.stdout).unwrap(),
            String::from_utf8(piped.stdout).unwrap(),
        );
        assert!(m.len() > 1000, "{args:?}: {m}");
        // The input's name differs (`large.rules` / `<stdin>`); nothing else may.
        let name = path.display().to_string();
        assert_eq!(m.replace(&name, "<stdin>"), p, "{args:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_bytes_past_the_first_window_are_found_where_they_are() {
    let text = large_dump();
    // A NUL and a stray UTF-8 continuation byte, both far past the first window.
    let mut bytes = text.into_bytes();
    let at = bytes.len() - 2000;
    let nl = at + bytes[at..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let line = bytes[..nl].iter().filter(|&&b| b == b'\n').count() + 1;
    bytes.splice(nl..nl, b"-A KUBE-SERVICES -j \x00\n".iter().copied());
    let dir = tempdir();
    let nul = dir.join("nul.rules");
    std::fs::write(&nul, &bytes).unwrap();
    let out = kptrace().args(["ls"]).arg(&nul).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NUL"), "{err}");
    assert!(err.contains(&format!(":{line}:")), "line {line}: {err}");

    bytes.splice(nl..nl + 1, [b'-', 0x80]);
    let bad = dir.join("utf8.rules");
    std::fs::write(&bad, &bytes).unwrap();
    let out = kptrace().args(["ls"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("UTF-8"), "{err}");
    assert!(err.contains(&format!(":{line}:")), "line {line}: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kptrace-index-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `text` parsed as a save dump, its runs of lines and its blocks of declarations found as asked;
/// the errors as (span, kind).
fn parse_as(
    text: &str,
    runs: kptrace::parse::save::RunsFound,
    blocks: kptrace::parse::save::IndexBlocks,
) -> Result<Ruleset, Vec<String>> {
    let (source, errors) = kptrace::parse::input::decode(
        "t.rules",
        kptrace::parse::input::RawInput::Bytes(text.as_bytes().to_vec()),
    );
    assert!(errors.is_empty());
    kptrace::parse::save::parse_indexing(source, runs, blocks).map_err(|e| {
        e.iter()
            .map(|e| format!("{:?} {:?}", e.span, e.kind))
            .collect::<Vec<_>>()
    })
}

/// A chain's rules as (line, text).
fn chain_rules(rs: &Ruleset, c: &kptrace::model::Chain) -> Vec<(u32, String)> {
    (0..c.rules.len())
        .map(|i| {
            let r = rs.rule(c, i);
            (r.line, rs.source.slice(r.span).to_string())
        })
        .collect()
}

/// Every chain's rules as (line, text), and the errors, of `text` parsed with runs of lines found
/// on another thread (waited for) or without.
fn indexed(
    text: &str,
    runs: kptrace::parse::save::RunsFound,
) -> Result<Vec<Vec<(u32, String)>>, Vec<String>> {
    let rs = parse_as(text, runs, kptrace::parse::save::IndexBlocks::Aside)?;
    Ok(rs
        .tables
        .iter()
        .flat_map(|t| &t.chains)
        .map(|c| chain_rules(&rs, c))
        .collect())
}

#[test]
fn runs_found_on_another_thread_index_the_same_rules_as_lines_read_one_by_one() {
    use kptrace::parse::save::RunsFound;
    // Runs broken by a blank line, a comment, counters, a second blank between `-A` and the
    // name, a chain declared twice over, an undeclared chain, and a chain's rules split in two.
    let tricky = "\
*nat
:A - [0:0]
:B - [0:0]
-A A -j B
-A A -s 10.0.0.1/32 -j RETURN
-A  A -j ACCEPT
-A A -j ACCEPT

-A A -d 10.0.0.2/32 -j RETURN
# between
-A A -d 10.0.0.3/32 -j RETURN
-A A -d 10.0.0.4/32 -j RETURN
[5:300] -A B -p tcp -j ACCEPT
-A B -p udp -j ACCEPT
-A B -p sctp -j ACCEPT
-A A -j RETURN
-A A -j RETURN
COMMIT
";
    let generated = large_dump();
    for text in [tricky.to_string(), generated.clone() + tricky] {
        let found = indexed(&text, RunsFound::Wait).unwrap();
        assert_eq!(found, indexed(&text, RunsFound::Never).unwrap());
        assert!(found.iter().any(|c| c.len() > 3));
    }
    let undeclared = tricky
        .replace("-A B -p udp", "-A C -p udp")
        .replace("-A B -p sctp", "-A C -p sctp");
    let errors = indexed(&undeclared, RunsFound::Wait).unwrap_err();
    assert_eq!(errors, indexed(&undeclared, RunsFound::Never).unwrap_err());
    assert_eq!(errors.len(), 1, "{errors:?}");
}

/// Every chain of `text` with whether looking its name up finds it, its rules as (line, text),
/// and the errors, with large blocks of declarations indexed on another thread or one by one.
#[allow(clippy::type_complexity)]
fn declared(
    text: &str,
    blocks: kptrace::parse::save::IndexBlocks,
) -> Result<Vec<(String, Option<bool>, Vec<(u32, String)>)>, Vec<String>> {
    let rs = parse_as(text, kptrace::parse::save::RunsFound::WhenReady, blocks)?;
    Ok(rs
        .tables
        .iter()
        .flat_map(|t| t.chains.iter().map(move |c| (t, c)))
        .map(|(t, c)| {
            // Looked up by name, the chain's place in its table.
            let found = t.id(&c.name).map(|id| std::ptr::eq(t.get(id), c));
            (c.name.to_string(), found, chain_rules(&rs, c))
        })
        .collect())
}

#[test]
fn declarations_indexed_on_another_thread_name_the_same_chains_as_indexed_one_by_one() {
    use kptrace::parse::save::IndexBlocks;
    let kube_proxy = synth::generate(&Options {
        services: 3000,
        order: Order::KubeProxy,
        counters: true,
        seed: 3,
    })
    .1;
    let kernel = large_dump();
    let declarations: Vec<&str> = kernel
        .lines()
        .filter(|l| l.starts_with(":KUBE-SEP-"))
        .collect();
    assert!(declarations.len() > 5000, "{}", declarations.len());
    let (early, late) = (declarations[10], declarations[5000]);
    let late_name = late[1..].split(' ').next().unwrap();
    let answers = |text: &str| {
        let aside = declared(text, IndexBlocks::Aside);
        assert_eq!(aside, declared(text, IndexBlocks::InLine));
        aside
    };
    for text in [&kernel, &kube_proxy] {
        let chains = answers(text).unwrap();
        assert!(chains.len() > 5000);
        // Every chain is found by its name at its own place.
        for (name, found, _) in &chains {
            assert_eq!(*found, Some(true), "{name}");
        }
    }
    // A chain declared twice, a bad policy, bad counters, a rule of a chain declared late in the
    // block before any other, and a rule of a chain never declared: the same chains and errors.
    let broken = [
        kernel.replacen(late, &format!("{late}\n{early}"), 1),
        kernel.replacen(late, &late.replacen(" - ", " BOGUS ", 1), 1),
        kernel.replacen(late, &late.replacen("[0:0]", "[x:0]", 1), 1),
        {
            let nat = kernel.find("*nat\n").unwrap();
            let first_rule = nat + kernel[nat..].find("\n-A ").unwrap();
            let mut text = kernel.clone();
            text.insert_str(first_rule, &format!("\n-A {late_name} -j RETURN"));
            text
        },
        kernel.replacen(&format!("{late}\n"), "", 1),
    ];
    for (i, text) in broken.iter().enumerate() {
        assert_ne!(text, &kernel, "case {i} changes nothing");
        let _ = answers(text);
    }
    assert!(answers(&broken[0]).is_err());
    assert!(answers(&broken[1]).is_err());
    assert!(answers(&broken[4]).is_err());
}
