//! Prints the model back in iptables-save form, and compares rules by meaning.
//!
//! The printed text is what iptables-save would print for the same rules (up to option order), so it
//! can be fed to `iptables-restore`, diffed, or read again by kptrace: parsing the printed form gives an
//! equal model, which the round-trip tests check.

use super::criterion::*;
use super::rule::Rule;
use super::ruleset::Ruleset;
use super::target::{Target, TargetKind};
use std::fmt::Write;

/// Quotes an argument the way iptables-save does.
pub fn quote(s: &str) -> String {
    // A value that looks like an option must be quoted to read back as a value.
    if !s.is_empty() && !s.starts_with('-') && !s.contains([' ', '\t', '"', '\\', '\'']) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// An option name (`--foo`) stays bare, as it was read (a bare word may hold quotes after its
/// first character: `--"x` reads back as itself, quoted it would read back as a value); anything
/// else is quoted as a value would be.
fn word(s: &str) -> String {
    if s.starts_with("--") && !s.contains([' ', '\t']) {
        s.to_string()
    } else {
        quote(s)
    }
}

fn neg(m: &Match) -> &'static str {
    if m.negated {
        "! "
    } else {
        ""
    }
}

fn tcp_flags(bits: u8) -> String {
    const N: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
    if bits == 0 {
        return "NONE".into();
    }
    if bits == 0xff {
        return "ALL".into();
    }
    (0..8)
        .filter(|i| bits & (1 << i) != 0)
        .map(|i| N[i])
        .collect::<Vec<_>>()
        .join(",")
}

/// An address and port as people write them: `10.0.0.1:80`, `[fd00::1]:80`.
pub fn host_port(ip: std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// One criterion in iptables-save syntax (with its `-m module`).
pub fn criterion(m: &Match, proto: Option<Protocol>) -> String {
    let n = neg(m);
    let pm = match proto {
        Some(Protocol::Number(33)) => "dccp".into(),
        Some(Protocol::Number(136)) => "udplite".into(),
        Some(p) if p.has_ports() => p.to_string(),
        _ => "tcp".into(),
    };
    match &m.criterion {
        Criterion::Source(a) => format!("{n}-s {a}"),
        Criterion::Destination(a) => format!("{n}-d {a}"),
        Criterion::Masked(m) => {
            let o = if m.dir == Dir::Src { "-s" } else { "-d" };
            format!("{n}{o} {}/{}", m.addr, m.mask)
        }
        Criterion::Protocol(p) => format!("{n}-p {p}"),
        Criterion::InIface(i) => format!("{n}-i {}", quote(&i.0)),
        Criterion::OutIface(i) => format!("{n}-o {}", quote(&i.0)),
        Criterion::Fragment => format!("{n}-f"),
        Criterion::Hidden(_) => String::new(),
        Criterion::Lookup(l) => {
            let key: Vec<String> = l.key.iter().map(|f| f.to_string()).collect();
            let op = if m.negated { "!= " } else { "" };
            format!("{} {op}{}", key.join(" . "), l.set)
        }
        Criterion::Port { dir, range } => {
            let o = if *dir == Dir::Src {
                "--sport"
            } else {
                "--dport"
            };
            format!("-m {pm} {n}{o} {range}")
        }
        Criterion::TcpFlags { mask, comp } => {
            format!(
                "-m tcp {n}--tcp-flags {} {}",
                tcp_flags(*mask),
                tcp_flags(*comp)
            )
        }
        Criterion::Multiport { dir, ports } => {
            let o = match dir {
                MultiDir::Src => "--sports",
                MultiDir::Dst => "--dports",
                MultiDir::Either => "--ports",
            };
            let list: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
            format!("-m multiport {n}{o} {}", list.join(","))
        }
        Criterion::AddrType { dir, kinds } => {
            let o = if *dir == Dir::Src {
                "--src-type"
            } else {
                "--dst-type"
            };
            let list: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
            format!("-m addrtype {n}{o} {}", list.join(","))
        }
        Criterion::AddrTypeLimitIface { dir } => {
            let o = if *dir == Dir::Src {
                "--limit-iface-in"
            } else {
                "--limit-iface-out"
            };
            format!("-m addrtype {o}")
        }
        Criterion::Mark { value, mask } => format!("-m mark {n}--mark {}", mark(*value, *mask)),
        Criterion::ConnMark { value, mask } => {
            format!("-m connmark {n}--mark {}", mark(*value, *mask))
        }
        Criterion::CtState {
            states,
            state_module,
        } => {
            let list: Vec<&str> = states.iter().map(|s| s.name()).collect();
            if *state_module {
                format!("-m state {n}--state {}", list.join(","))
            } else {
                format!("-m conntrack {n}--ctstate {}", list.join(","))
            }
        }
        Criterion::Statistic(Statistic::Random { threshold }) => format!(
            "-m statistic --mode random {n}--probability {}",
            Statistic::saved_probability(*threshold)
        ),
        Criterion::Statistic(Statistic::Nth { every, packet }) => {
            format!("-m statistic --mode nth {n}--every {every} --packet {packet}")
        }
        Criterion::Recent(r) => {
            let mode = match r.mode {
                RecentMode::Set => "--set",
                RecentMode::Rcheck => "--rcheck",
                RecentMode::Update => "--update",
                RecentMode::Remove => "--remove",
            };
            let mut s = format!("-m recent {n}{mode}");
            if let Some(sec) = r.seconds {
                let _ = write!(s, " --seconds {sec}");
            }
            if r.reap {
                s.push_str(" --reap");
            }
            if let Some(h) = r.hitcount {
                let _ = write!(s, " --hitcount {h}");
            }
            if r.rttl {
                s.push_str(" --rttl");
            }
            let _ = write!(s, " --name {}", quote(&r.name));
            if let Some(m) = &r.mask {
                let _ = write!(s, " --mask {m}");
            }
            s.push_str(if r.rdest { " --rdest" } else { " --rsource" });
            s
        }
        Criterion::Comment(c) => format!("-m comment --comment {}", quote(c)),
        Criterion::Set(m) => {
            format!(
                "-m set {n}--match-set {} {}",
                quote(&m.name),
                quote(&m.flags)
            )
        }
        Criterion::Physdev(p) => match p {
            Physdev::In(i) => format!("-m physdev {n}--physdev-in {}", quote(&i.0)),
            Physdev::Out(i) => format!("-m physdev {n}--physdev-out {}", quote(&i.0)),
            Physdev::IsIn => format!("-m physdev {n}--physdev-is-in"),
            Physdev::IsOut => format!("-m physdev {n}--physdev-is-out"),
            Physdev::IsBridged => format!("-m physdev {n}--physdev-is-bridged"),
        },
        Criterion::Other(o) => {
            let (module, option, args) = (&o.module, &o.option, &o.args);
            let mut s = format!("-m {}", quote(module));
            if !option.is_empty() {
                let _ = write!(s, " {n}{}", word(option));
            }
            for a in args {
                let _ = write!(s, " {}", quote(a));
            }
            s
        }
    }
}

pub fn mark(value: u32, mask: u32) -> String {
    if mask == u32::MAX {
        format!("{value:#x}")
    } else {
        format!("{value:#x}/{mask:#x}")
    }
}

fn port_dash(p: PortRange) -> String {
    if p.lo == p.hi {
        p.lo.to_string()
    } else {
        format!("{}-{}", p.lo, p.hi)
    }
}

pub fn target(t: &Target) -> String {
    let mut s = format!("{} {}", if t.goto { "-g" } else { "-j" }, t.kind.name());
    let flags = |s: &mut String, f: &[Box<str>]| {
        for x in f {
            let _ = write!(s, " {x}");
        }
    };
    match &t.kind {
        TargetKind::Reject { with: Some(w) } => {
            let _ = write!(s, " --reject-with {w}");
        }
        TargetKind::Dnat { to, flags: f } => {
            if let Some(to) = to {
                let _ = write!(s, " --to-destination {to}");
            }
            flags(&mut s, f);
        }
        TargetKind::Snat { to, flags: f } => {
            if let Some(to) = to {
                let _ = write!(s, " --to-source {to}");
            }
            flags(&mut s, f);
        }
        TargetKind::Masquerade { to_ports, flags: f }
        | TargetKind::Redirect { to_ports, flags: f } => {
            if let Some(p) = to_ports {
                let _ = write!(s, " --to-ports {}", port_dash(*p));
            }
            flags(&mut s, f);
        }
        TargetKind::Mark(m) => {
            let _ = write!(s, " --set-xmark {:#x}/{:#x}", m.value, m.mask);
        }
        TargetKind::ConnMark { args }
        | TargetKind::Log { args }
        | TargetKind::Other { args, .. } => {
            // The target's own option names stay bare; quoting `--xor-mark` would make it a value.
            for a in args {
                let _ = write!(s, " {}", word(a));
            }
        }
        _ => {}
    }
    s
}

/// The rule specification (everything after `-A CHAIN`).
pub fn rule_spec(r: &Rule) -> String {
    let proto = r.matches.iter().find_map(|m| match m.criterion {
        Criterion::Protocol(p) if !m.negated => Some(p),
        _ => None,
    });
    // A hidden field has no save syntax: the form it came from did not show it.
    let mut parts: Vec<String> = r
        .matches
        .iter()
        .filter(|m| !matches!(m.criterion, Criterion::Hidden(_)))
        .map(|m| {
            let s = criterion(m, proto);
            // The same `-m` as the option before: its name is not repeated.
            match s.strip_prefix("-m ").and_then(|r| r.split_once(' ')) {
                Some((_, rest)) if m.continues => rest.to_string(),
                _ => s,
            }
        })
        .collect();
    if let Some(t) = &r.target {
        parts.push(target(t));
    }
    parts.join(" ")
}

/// The whole rule set in iptables-save form.
pub fn ruleset(rs: &Ruleset) -> String {
    let mut out = String::new();
    for t in &rs.tables {
        let _ = writeln!(out, "*{}", t.name);
        for c in &t.chains {
            let counters = c.counters.as_deref().copied().unwrap_or_default();
            let policy = c.policy.map(|p| p.name()).unwrap_or("-");
            let _ = writeln!(
                out,
                ":{} {policy} [{}:{}]",
                c.name, counters.packets, counters.bytes
            );
        }
        for c in &t.chains {
            for r in rs.rules(c) {
                if let Some(k) = r.counters {
                    let _ = write!(out, "[{}:{}] ", k.packets, k.bytes);
                }
                let spec = rule_spec(r);
                if spec.is_empty() {
                    let _ = writeln!(out, "-A {}", c.name);
                } else {
                    let _ = writeln!(out, "-A {} {spec}", c.name);
                }
            }
        }
        out.push_str("COMMIT\n");
    }
    out
}

/// Two rules that do the same thing, wherever they were written.
pub fn same_rule(a: &Rule, b: &Rule) -> bool {
    a.matches.len() == b.matches.len()
        && a.matches
            .iter()
            .zip(b.matches.iter())
            .all(|(x, y)| x.negated == y.negated && x.criterion == y.criterion)
        && match (&a.target, &b.target) {
            (None, None) => true,
            (Some(x), Some(y)) => x.goto == y.goto && x.kind == y.kind,
            _ => false,
        }
}
