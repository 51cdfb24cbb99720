//! Helpers shared by the integration tests.
#![allow(dead_code)]

use kptrace::model::{InputFormat, Ruleset};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures").join(rel)
}

pub fn load(path: &Path) -> Ruleset {
    let bytes = std::fs::read(path).unwrap();
    match kptrace::parse::read(&path.display().to_string(), bytes, None) {
        Ok(rs) => rs,
        Err(f) => panic!("{:?}", f.report()),
    }
}

pub fn load_as(path: &Path, fmt: InputFormat) -> Ruleset {
    let bytes = std::fs::read(path).unwrap();
    match kptrace::parse::read(&path.display().to_string(), bytes, Some(fmt)) {
        Ok(rs) => rs,
        Err(f) => panic!("{:?}", f.report()),
    }
}

/// Every conformance case directory with a dump.
pub fn conformance_dumps() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for family in ["kube-proxy-iptables", "kube-proxy-iptables-legacy"] {
        let dir = fixture("conformance").join(family);
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path().join("dump.txt");
            if p.exists() {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

/// Runs a command; its standard output, or what it said on failure.
pub fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

pub fn is_root() -> bool {
    sh(&["id", "-u"]).is_ok_and(|u| u.trim() == "0")
}

/// A nat table of `n` chains, each jumping to the next from PREROUTING on; the last one DNATs
/// TCP to 10.1.1.1:80.
pub fn deep_chain(n: usize) -> String {
    let mut s = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for i in 0..n {
        s += &format!(":C{i} - [0:0]\n");
    }
    s += "-A PREROUTING -j C0\n";
    for i in 0..n - 1 {
        s += &format!("-A C{i} -j C{}\n", i + 1);
    }
    s += &format!(
        "-A C{} -p tcp -j DNAT --to-destination 10.1.1.1:80\nCOMMIT\n",
        n - 1
    );
    s
}
