//! Pathological inputs end with an answer or a clear message, never a crash, hang or stack
//! overflow: a 100,000-deep chain of jumps, jump cycles, a 50 MB line, a million tiny chains, and
//! statistic rules whose outcomes would multiply past any bound. Each runs the real binary (a
//! stack overflow aborts the process, which a test in the same process could not report).
//! Timings and peak memory of these cases are in docs/limits.md; here only outcomes are checked,
//! with a generous timeout that turns a hang into a failure.

mod common;

use assert_cmd::Command;
use std::path::PathBuf;
use std::time::Duration;

fn write(name: &str, text: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn kptrace(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("kptrace")
        .unwrap()
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("COLUMNS")
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap()
}

#[test]
fn a_100000_deep_chain_of_jumps_is_followed_to_its_end() {
    let f = write("deep.rules", &common::deep_chain(100_000));
    let f = f.to_str().unwrap();
    let out = kptrace(&[
        "trace", "--src", "1.2.3.4", "--dst", "10.0.0.1", "--dport", "80", f, "-f", "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let o = &v["outcomes"][0];
    assert_eq!(o["dnat"], "10.1.1.1:80");
    assert_eq!(o["probability"], 1.0);
    assert_eq!(o["path"].as_array().unwrap().len(), 100_001);
    // The whole-rule-set commands walk the same graph.
    for cmd in ["ls", "lint", "graph"] {
        let out = kptrace(&[cmd, f]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{cmd}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn jump_cycles_are_reported_not_followed() {
    let f = write(
        "cycle.rules",
        "*nat\n:PREROUTING ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n:C - [0:0]\n\
         -A PREROUTING -j A\n-A A -j B\n-A B -p udp -j RETURN\n-A B -j C\n-A C -j A\nCOMMIT\n",
    );
    let f = f.to_str().unwrap();
    let out = kptrace(&[
        "trace", "--src", "1.2.3.4", "--dst", "10.0.0.1", "--dport", "80", f, "-f", "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let o = &v["outcomes"][0];
    assert_eq!(o["verdict"], "unknown");
    let reason = o["doubts"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("jump cycle A → B → C → A"), "{reason}");
    assert!(o["path"].as_array().unwrap().len() < 10);
    // UDP leaves B by its RETURN before the loop closes: a normal answer.
    let out = kptrace(&[
        "trace", "--src", "1.2.3.4", "--dst", "10.0.0.1", "--dport", "53", "--proto", "udp", f,
        "-f", "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcomes"][0]["verdict"], "accept");
    // lint names the loop.
    let out = kptrace(&["lint", f]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("chain-loop"));
}

#[test]
fn a_50_mb_line_is_an_error_with_a_short_excerpt() {
    let mut text =
        String::from("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m comment --comment \"");
    text += &"x".repeat(50_000_000);
    text += "\" -j RETURN\nCOMMIT\n";
    let f = write("long-line.rules", &text);
    drop(text);
    let out = kptrace(&["ls", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("line is 50000047 bytes long"), "{err}");
    assert!(err.contains("long-line.rules:3:1"), "{err}");
    // The snippet is an excerpt, not the line.
    assert!(err.len() < 4000, "{} bytes of error", err.len());
}

#[test]
fn a_million_tiny_chains_load_and_lint() {
    let mut s = String::from("*filter\n:INPUT ACCEPT [0:0]\n");
    for i in 0..1_000_000 {
        s += &format!(":C{i} - [0:0]\n");
    }
    s += "-A INPUT -j C0\n";
    for i in 0..1_000_000 {
        s += &format!("-A C{i} -j RETURN\n");
    }
    s += "COMMIT\n";
    let f = write("many-chains.rules", &s);
    drop(s);
    let f = f.to_str().unwrap();
    let out = kptrace(&["ls", f]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1000001 rules"));
    // 999,999 chains nothing jumps to: lint says so, in one finding per chain, and ends.
    let out = kptrace(&["lint", f, "--format", "json"]);
    assert!(matches!(out.status.code(), Some(0 | 1)));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["summary"].is_object());
}

#[test]
fn statistic_fan_out_is_capped_and_said_while_shares_still_add_up() {
    // 40 rules, each setting its own mark bit half of the time, and rules that test every bit:
    // 2^32 distinct packets.
    let mut s = String::from("*mangle\n:PREROUTING ACCEPT [0:0]\n");
    for i in 0..40u64 {
        let bit = 1u64 << (i % 32);
        s += &format!(
            "-A PREROUTING -m statistic --mode random --probability 0.5 -j MARK --set-xmark {bit:#x}/{bit:#x}\n"
        );
    }
    for i in 0..32u64 {
        s += &format!(
            "-A PREROUTING -m mark --mark {:#x}/{:#x}\n",
            1u64 << i,
            1u64 << i
        );
    }
    s += "COMMIT\n";
    let f = write("fan-out.rules", &s);
    let out = kptrace(&[
        "trace",
        "--src",
        "1.2.3.4",
        "--dst",
        "10.0.0.1",
        "--dport",
        "80",
        f.to_str().unwrap(),
        "-f",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcomes = v["outcomes"].as_array().unwrap();
    let sum: f64 = outcomes
        .iter()
        .map(|o| o["probability"].as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-9, "{sum}");
    assert!(outcomes.len() <= kptrace::engine::MAX_BRANCHES);
    assert!(outcomes.iter().any(
        |o| o["doubts"].as_array().unwrap().iter().any(|d| d["reason"]
            .as_str()
            .unwrap()
            .contains("distinct packet states"))
    ));
}

#[test]
fn mark_bits_no_rule_tests_do_not_split_the_trace() {
    // The same 40 coin flips, each setting a bit that no rule ever tests, then a DNAT: every
    // packet is DNAT'd, exactly, and the marks make no difference.
    let mut s = String::from("*mangle\n:PREROUTING ACCEPT [0:0]\n:FLIP - [0:0]\n");
    for i in 0..40u64 {
        let bit = 1u64 << (i % 16);
        s += &format!(
            "-A FLIP -m statistic --mode random --probability 0.5 -j MARK --set-xmark {bit:#x}/{bit:#x}\n"
        );
    }
    s += "-A PREROUTING -j FLIP\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n";
    s += "-A PREROUTING -d 10.0.0.1/32 -p tcp -j DNAT --to-destination 10.1.0.1:8080\nCOMMIT\n";
    let f = write("unread-marks.rules", &s);
    let out = kptrace(&[
        "trace",
        "--src",
        "1.2.3.4",
        "--dst",
        "10.0.0.1",
        "--dport",
        "80",
        f.to_str().unwrap(),
        "-f",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcomes = v["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 1, "{outcomes:#?}");
    assert_eq!(outcomes[0]["probability"].as_f64(), Some(1.0));
    assert_eq!(outcomes[0]["dnat"].as_str(), Some("10.1.0.1:8080"));
    assert_eq!(outcomes[0]["approximate"].as_bool(), Some(false));
}
