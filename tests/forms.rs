//! One rule set, three forms. Every conformance dump is turned into an `iptables` command script
//! (by the converter below, as a person would write one) and into an `iptables -L -n -v -x`
//! listing (printed by the real iptables after `iptables-restore` in a network namespace made here
//! and deleted afterwards); each must give the same `svc` answers as the dump itself: the same
//! entry points, and for every probe the same endpoints, shares, verdicts and masquerading.
//!
//! Without root the listing half is skipped loudly; as root (CI) it must run.

mod common;

use common::sh;
use kptrace::kube::Catalog;
use kptrace::model::{InputFormat, Ruleset};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// IPv6 dumps (kube-proxy writes one per family) go through ip6tables.
fn family_tool(path: &std::path::Path) -> &'static str {
    if path.to_string_lossy().contains("ipv6") {
        "ip6tables"
    } else {
        "iptables"
    }
}

/// An `iptables-save` dump as the commands that would build it, one per line.
fn to_script(dump: &str, tool: &str) -> String {
    let mut out = String::from("#!/bin/sh\n# the same rules, as commands\nset -e\n\n");
    let mut table = "filter";
    for (i, line) in dump.lines().enumerate() {
        // Every seventh command with sudo, as pasted from a terminal session.
        let sudo = if i % 7 == 3 { "sudo " } else { "" };
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim();
            out += &format!("\n# table {table}\n");
        } else if let Some(rest) = line.strip_prefix(':') {
            let mut w = rest.split_whitespace();
            let (Some(name), Some(policy)) = (w.next(), w.next()) else {
                continue;
            };
            let builtin = kptrace::model::table::builtin_chains(table).contains(&name);
            if !builtin {
                out += &format!("{sudo}{tool} -t {table} -N {name}\n");
            } else if policy != "-" {
                out += &format!("{sudo}{tool} -t {table} -P {name} {policy}\n");
            }
        } else if line.starts_with("-A ") {
            out += &format!("{sudo}{tool} -t {table} {line}\n");
        }
    }
    out
}

/// The tables a dump declares, in order.
fn tables(dump: &str) -> Vec<&str> {
    dump.lines()
        .filter_map(|l| l.strip_prefix('*'))
        .map(str::trim)
        .collect()
}

/// The dump as the kernel will take it, with the same meaning for kptrace:
/// - the two trace-packet fixtures leave comments with blanks unquoted, which iptables-restore
///   refuses: they are given as kptrace read them, printed back;
/// - `-m nfacct` needs an accounting object the namespace does not have; it always matches, so
///   it is left out;
/// - helper chains a payload jumps to without declaring (KUBE-MARK-DROP…) get the standard
///   contents kptrace assumes for them anyway.
fn restorable(path: &std::path::Path, dump: &str) -> String {
    let text = if dump.contains("--comment kubernetes health") {
        kptrace::model::print::ruleset(&common::load(path))
    } else {
        dump.to_string()
    };
    let rs = common::load(path);
    let rs = &rs;
    let mut out = String::new();
    let mut table = String::new();
    let mut missing: Vec<String> = Vec::new();
    for line in text.lines() {
        let mut line = line.to_string();
        while let Some(i) = line.find(" -m nfacct --nfacct-name ") {
            let rest = &line[i + " -m nfacct --nfacct-name ".len()..];
            let end = rest.find(' ').unwrap_or(rest.len());
            line = format!("{}{}", &line[..i], &rest[end..]);
        }
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_string();
            missing = rs
                .table(&table)
                .map(|t| {
                    let mut v: Vec<String> = t
                        .chains
                        .iter()
                        .flat_map(|c| (0..c.rules.len()).map(move |i| rs.rule(c, i)))
                        .filter_map(|r| r.jump_target())
                        .filter(|n| {
                            t.chain(n)
                                .is_none_or(|c| c.origin != kptrace::model::ChainOrigin::Declared)
                        })
                        .filter(|n| kptrace::engine::assumed::standard_chain(n).is_some())
                        .map(str::to_string)
                        .collect();
                    v.sort();
                    v.dedup();
                    v
                })
                .unwrap_or_default();
            out += &line;
            out.push('\n');
            for m in &missing {
                out += &format!(":{m} - [0:0]\n");
            }
            continue;
        }
        if line == "COMMIT" {
            for m in &missing {
                for r in kptrace::engine::assumed::standard_chain(m).unwrap() {
                    out += &format!("-A {m} {}\n", kptrace::model::print::rule_spec(&r));
                }
            }
        }
        out += &line;
        out.push('\n');
    }
    let _ = table;
    out
}

/// Loads `dump` with the real iptables-restore in a fresh namespace and prints every table with
/// `iptables -t T -L -n -v -x`, each after the prompt line that says which table it is.
fn to_listing(dump: &str, tool: &str, id: usize) -> Result<String, String> {
    let ns = format!("kpt-forms-{}-{id}", std::process::id());
    sh(&["ip", "netns", "add", &ns]).unwrap();
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = sh(&["ip", "netns", "del", &self.0]);
        }
    }
    let _gone = Gone(ns.clone());
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns, &format!("{tool}-restore")])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dump.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', " "));
    }
    let mut listing = String::new();
    for t in tables(dump) {
        listing += &format!("root@node:~# {tool} -t {t} -L -n -v -x\n");
        listing += &sh(&[
            "ip", "netns", "exec", &ns, tool, "-t", t, "-L", "-n", "-v", "-x",
        ])
        .unwrap();
        listing += "\n";
    }
    Ok(listing)
}

/// What `svc` answers for every Service of a rule set, in a form that does not depend on line
/// numbers: per Service port and probe, the sorted outcomes.
fn answers(rs: &Ruleset) -> BTreeMap<String, Vec<String>> {
    let cat = Catalog::build(rs);
    let mut queries: Vec<String> = cat
        .ports
        .iter()
        .map(|p| {
            p.service
                .clone()
                .or_else(|| p.svc_chain.clone())
                .unwrap_or_else(|| p.display_name())
        })
        .collect();
    queries.sort();
    queries.dedup();
    let node = ["192.168.99.11".parse().unwrap()];
    let mut all = BTreeMap::new();
    for q in queries {
        let (reports, _) = kptrace::app::svc::analyse(rs, &q, &node);
        for r in reports {
            let mut lines = vec![format!(
                "endpoints {:?}, local {:?}",
                r.port
                    .endpoints
                    .iter()
                    .map(|e| (&e.chain, &e.address))
                    .collect::<Vec<_>>(),
                r.port
                    .local_endpoints
                    .iter()
                    .map(|e| &e.chain)
                    .collect::<Vec<_>>()
            )];
            for (p, t) in &r.probes {
                let mut outs: Vec<String> = t
                    .outcomes
                    .iter()
                    .map(|o| {
                        format!(
                            "{:.12} {:?} {} masq={} approx={} via={:?}",
                            o.probability,
                            o.dnat,
                            o.verdict.name(),
                            o.masquerade,
                            o.approximate,
                            o.endpoint_chain
                        )
                    })
                    .collect();
                outs.sort();
                lines.push(format!(
                    "{:?} from {:?} {}:{} {:?}: {}",
                    p.kind,
                    p.from,
                    p.address,
                    p.port,
                    p.protocol,
                    outs.join(" | ")
                ));
            }
            all.insert(format!("{q} {}", r.port.display_name()), lines);
        }
    }
    all
}

fn compare(name: &str, form: &str, want: &BTreeMap<String, Vec<String>>, rs: &Ruleset) {
    let got = answers(rs);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{name} as {form}: not the same Service ports"
    );
    for (k, w) in want {
        assert_eq!(&got[k], w, "{name} as {form}: {k} answers differently");
    }
}

#[test]
fn every_conformance_dump_as_a_command_script_gives_the_same_answers() {
    let mut n = 0;
    for path in common::conformance_dumps() {
        let dump = std::fs::read_to_string(&path).unwrap();
        let want = answers(&common::load(&path));
        let script = to_script(&dump, family_tool(&path));
        let rs = kptrace::parse::read("script", script.clone().into_bytes(), None)
            .unwrap_or_else(|e| panic!("{}: {:?}\n{script}", path.display(), e.report()));
        assert_eq!(rs.format, InputFormat::Script, "{}", path.display());
        compare(&path.display().to_string(), "script", &want, &rs);
        n += want.len();
    }
    assert!(n > 60, "only {n} Service ports compared");
}

#[test]
fn every_conformance_dump_as_a_real_verbose_listing_gives_the_same_answers() {
    let can = sh(&["ip", "netns", "add", "kpt-forms-probe"]).is_ok();
    let _ = sh(&["ip", "netns", "del", "kpt-forms-probe"]);
    if !can {
        assert!(
            !common::is_root(),
            "running as root, but `ip netns` is not usable"
        );
        eprintln!("\n*** SKIPPED: printing listings with the real iptables needs root and `ip netns` ***\n");
        return;
    }
    let mut n = 0;
    let mut refused = Vec::new();
    for (id, path) in common::conformance_dumps().into_iter().enumerate() {
        let dump = std::fs::read_to_string(&path).unwrap();
        // The answers of the dump exactly as the kernel got it (see `restorable`).
        // With the hooks kube-proxy installs at start-up (a payload has none), as on a node.
        let given = common::with_standard_hooks(&restorable(&path, &dump));
        let want =
            answers(&kptrace::parse::read("dump", given.clone().into_bytes(), None).unwrap());
        let listing = match to_listing(&given, family_tool(&path), id) {
            Ok(l) => l,
            Err(why) => {
                refused.push(format!("{}: {why}", path.display()));
                continue;
            }
        };
        // Kept for a person to rerun kptrace on when the comparison fails.
        let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "listing-{}.txt",
            path.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
        ));
        std::fs::write(&kept, &listing).unwrap();
        let rs = kptrace::parse::read("listing", listing.clone().into_bytes(), None)
            .unwrap_or_else(|e| panic!("{}: {:?}\n{listing}", path.display(), e.report()));
        assert_eq!(rs.format, InputFormat::Listing, "{}", path.display());
        compare(
            &format!("{} (listing in {})", path.display(), kept.display()),
            "listing",
            &want,
            &rs,
        );
        n += want.len();
    }
    eprintln!("{n} Service ports compared");
    assert!(refused.is_empty(), "iptables-restore refused: {refused:#?}");
    eprintln!("{n} Service ports compared");
    assert!(refused.is_empty(), "iptables-restore refused: {refused:#?}");
    assert!(n > 60, "only {n} Service ports compared");
}

/// The Services `kptrace ls --format json` lists: name, port, protocol, cluster IP, NodePort and
/// endpoint count.
fn listed_services(text: &str) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("kpt-forms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{:x}.txt", text.len() ^ (text.as_ptr() as usize)));
    std::fs::write(&path, text).unwrap();
    let out = assert_cmd::Command::cargo_bin("kptrace")
        .unwrap()
        .args(["ls", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut s: Vec<String> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {} {} {} {} np={} eps={}",
                s["service"],
                s["port_name"],
                s["port"],
                s["protocol"],
                s["cluster_ip"],
                s["node_port"],
                s["endpoints"]
            )
        })
        .collect();
    s.sort();
    s
}

#[test]
fn every_listing_form_iptables_prints_lists_the_same_services_as_the_save_form() {
    let Some(ns) = common::Netns::new("lforms") else {
        eprintln!("\n*** SKIPPED: printing listings with the real iptables needs root ***\n");
        return;
    };
    let (_, dump) = kptrace::synth::generate(&kptrace::synth::Options {
        services: 200,
        ..Default::default()
    });
    ns.run(&["iptables-restore"], &dump).unwrap();
    let nat = |args: &[&str]| {
        let mut a = vec!["iptables", "-t", "nat"];
        a.extend_from_slice(args);
        ns.run(&a, "").unwrap()
    };
    let want = listed_services(&ns.run(&["iptables-save", "-t", "nat"], "").unwrap());
    assert!(want.len() > 150, "{}", want.len());
    let forms = [
        ("-L", nat(&["-L"])),
        ("-L -n", nat(&["-L", "-n"])),
        (
            "-L -nv --line-numbers",
            nat(&["-L", "-nv", "--line-numbers"]),
        ),
        ("-L -vx", nat(&["-L", "-vx"])),
        ("-L --line-numbers", nat(&["-L", "--line-numbers"])),
        ("-S", nat(&["-S"])),
        (
            "-S after a prompt",
            format!("root@node:~# iptables -t nat -S\n{}", nat(&["-S"])),
        ),
        (
            "save after a prompt",
            format!(
                "root@node:~# iptables-save -t nat\n{}",
                ns.run(&["iptables-save", "-t", "nat"], "").unwrap()
            ),
        ),
    ];
    for (form, text) in forms {
        assert_eq!(listed_services(&text), want, "iptables -t nat {form}");
    }
}
