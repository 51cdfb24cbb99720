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

/// A network namespace made for one test and deleted when dropped. None when namespaces cannot
/// be made here (not root); as root that is a failure, not a skip.
pub struct Netns(pub String);

impl Netns {
    pub fn new(tag: &str) -> Option<Netns> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "kpt-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        match sh(&["ip", "netns", "add", &name]) {
            Ok(_) => Some(Netns(name)),
            Err(e) => {
                assert!(
                    !is_root(),
                    "running as root, but `ip netns add` failed: {e}"
                );
                None
            }
        }
    }

    /// Runs `args` inside the namespace, with `stdin` as its standard input.
    pub fn run(&self, args: &[&str], stdin: &str) -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("{args:?}: {e}"))?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.0]);
    }
}

/// Whether a command is on the PATH.
pub fn has(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// kube-proxy's restore payloads leave the built-in hooks to kube-proxy's start-up code; the
/// kernel needs them. Adds, before COMMIT of each table, exactly the hook rules kptrace assumes
/// for the payload (`-I`, in the place the engine gives them: first in the built-in chain).
pub fn with_standard_hooks(payload: &str) -> String {
    let rs = kptrace::parse::read("payload", payload.as_bytes().to_vec(), None).unwrap();
    let eng = kptrace::engine::Engine::new(&rs, &[]);
    let hooks = eng.assumed_hooks();
    let mut out = String::new();
    let mut table = String::new();
    for line in payload.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_string();
        }
        if line == "COMMIT" {
            for (t, builtin, rules) in &hooks {
                if *t != table {
                    continue;
                }
                for (i, rule) in rules.iter().enumerate() {
                    out += &format!(
                        "-I {builtin} {} {}\n",
                        i + 1,
                        kptrace::model::print::rule_spec(rule)
                    );
                }
            }
        }
        out += line;
        out.push('\n');
    }
    out
}
