//! Every extension iptables ships, read as iptables itself prints it, checked against iptables.
//!
//! For each rule of `tests/data/extensions.txt`, in a private network namespace: the real
//! `iptables-restore` loads it, `iptables-save` prints it back (the text users paste), kptrace
//! reads that text without an error, and kptrace's own printout of what it read loads back into
//! the kernel and is saved as exactly the same line. So a flag read as taking a value, a value
//! dropped, or two words of one option split apart all fail here. Extensions whose kernel or
//! userspace module cannot be loaded on this machine are listed in the test output with the
//! reason iptables gave. Without root the kernel half is skipped, loudly; the table checks run
//! everywhere.

mod common;

use common::Netns;
use kptrace::parse::extensions;
use std::collections::BTreeMap;

struct Case {
    family: u8,
    table: String,
    name: String,
    spec: String,
}

impl Case {
    /// A case's rules: one, or several separated by ` ;; ` (an estimator and its readers).
    fn rules(&self) -> Vec<String> {
        self.spec.split(" ;; ").map(str::to_string).collect()
    }
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(common::root().join("tests/data/extensions.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut w = l.splitn(4, ' ');
            let family = w.next().unwrap().parse().unwrap();
            let table = w.next().unwrap().to_string();
            let name = w.next().unwrap().to_string();
            let spec = w.next().unwrap().to_string();
            Case {
                family,
                table,
                name,
                spec,
            }
        })
        .collect()
}

fn dump(table: &str, rules: &[String]) -> String {
    let mut s = format!("*{table}\n:KPT - [0:0]\n");
    for r in rules {
        s += &format!("-A KPT {r}\n");
    }
    s + "COMMIT\n"
}

#[test]
fn every_extension_in_the_table_has_a_case() {
    let names: Vec<String> = cases().into_iter().map(|c| c.name).collect();
    for (m, _) in extensions::matches() {
        // `icmpv6` is an alias iptables-save never prints (it prints `icmp6`).
        if m != "icmpv6" {
            assert!(names.iter().any(|n| n == m), "match `{m}` has no case");
        }
    }
    for (t, _) in extensions::targets() {
        assert!(names.iter().any(|n| n == t), "target `{t}` has no case");
    }
}

#[test]
fn every_case_parses_as_written() {
    for c in cases() {
        let text = dump(&c.table, &c.rules());
        let rs = kptrace::parse::read("case", text.into_bytes(), None)
            .unwrap_or_else(|f| panic!("{}: {:?}", c.name, f.report()));
        rs.parse_all();
        let errors = rs.take_errors();
        assert!(errors.is_empty(), "{}: {errors:?}", c.name);
    }
}

/// kptrace's reading of a saved rule, printed back in save form.
fn reprint(table: &str, saved: &[String], what: &str) -> Vec<String> {
    let rs = kptrace::parse::read("saved", dump(table, saved).into_bytes(), None)
        .unwrap_or_else(|f| panic!("{what}: iptables-save's text is refused: {:?}", f.report()));
    rs.parse_all();
    let errors = rs.take_errors();
    assert!(
        errors.is_empty(),
        "{what}: iptables-save's text is refused: {:?}",
        kptrace::error::report(&rs.source, errors)
    );
    let t = rs.tables.iter().find(|t| &*t.name == table).unwrap();
    let c = t.chains.iter().find(|c| &*c.name == "KPT").unwrap();
    (0..c.rules.len())
        .map(|i| kptrace::model::print::rule_spec(rs.rule(c, i)))
        .collect()
}

fn save_kpt(ns: &Netns, family: u8, table: &str) -> Vec<String> {
    let save = if family == 6 {
        "ip6tables-save"
    } else {
        "iptables-save"
    };
    ns.run(&[save, "-t", table], "")
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("-A KPT "))
        .map(str::to_string)
        .collect()
}

#[test]
fn what_iptables_saves_is_read_and_round_trips_through_the_kernel() {
    if !common::has("iptables-restore") {
        assert!(
            !common::is_root(),
            "running as root without iptables-restore"
        );
        eprintln!("\n*** SKIPPED: the extension round trip needs iptables-restore ***\n");
        return;
    }
    let Some(ns) = Netns::new("ext") else {
        eprintln!("\n*** SKIPPED: the extension round trip needs root (network namespaces) ***\n");
        return;
    };
    // The set match and target need a set to name.
    let ipset = ns.run(&["ipset", "create", "kptrace-test", "hash:ip"], "");
    let mut loaded = 0;
    let mut not_loaded: BTreeMap<String, String> = BTreeMap::new();
    let mut failures = Vec::new();
    for c in cases() {
        let restore = if c.family == 6 {
            "ip6tables-restore"
        } else {
            "iptables-restore"
        };
        if let Err(e) = ns.run(&[restore], &dump(&c.table, &c.rules())) {
            let why: Vec<&str> = e
                .lines()
                .filter(|l| !l.starts_with("Try ") && !l.starts_with("Error occurred"))
                .collect();
            not_loaded.insert(format!("{} ({})", c.name, c.spec), why.join(" "));
            continue;
        }
        loaded += 1;
        let saved = save_kpt(&ns, c.family, &c.table);
        assert_eq!(saved.len(), c.rules().len(), "{}: {saved:?}", c.name);
        let printed = reprint(&c.table, &saved, &c.name);
        match ns.run(&[restore], &dump(&c.table, &printed)) {
            Err(e) => failures.push(format!(
                "{}: iptables refuses kptrace's printout\n  saved:   {}\n  printed: {}\n  {e}",
                c.name,
                saved.join(" | "),
                printed.join(" | ")
            )),
            Ok(_) => {
                let again = save_kpt(&ns, c.family, &c.table);
                if again != saved {
                    failures.push(format!(
                        "{}: kptrace's printout means something else\n  saved:   {}\n  printed: {}\n  resaved: {}",
                        c.name,
                        saved.join(" | "),
                        printed.join(" | "),
                        again.join(" | ")
                    ));
                }
            }
        }
    }
    eprintln!("{loaded} rules loaded and round-tripped through the kernel");
    if ipset.is_err() {
        eprintln!("ipset is not installed: the set match and SET target could not be checked");
    }
    eprintln!("{} could not be loaded here:", not_loaded.len());
    for (c, why) in &not_loaded {
        eprintln!("  {c}: {why}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nearly all of them load on any current kernel; a handful loading means the check broke.
    assert!(
        loaded * 4 >= (loaded + not_loaded.len()) * 3,
        "only {loaded} of {} rules loaded",
        loaded + not_loaded.len()
    );
}
