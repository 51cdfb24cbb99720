//! `iptables [-t T] -L [-n] [-v] [-x] [--line-numbers]` listings.
//!
//! Each `Chain X (policy P …)` / `Chain X (N references)` block becomes a chain; each row's columns
//! (target, prot, opt, [in, out,] source, destination) and trailing text (`/* comment */`,
//! `tcp dpt:443`, `statistic mode random probability 0.14286000002`, `MARK or 0x4000`,
//! `tcp to:172.31.9.52:80`, `recent: CHECK seconds: 10800 …`) are translated back into the option
//! syntax iptables-save uses and read by the same rule parser, so a listing and a dump of the same
//! rules give the same model. What a listing does not show (interfaces without `-v`) and text that
//! could not be decoded are reported as notes.

use super::rule_spec::parse_rule;
use super::save::lines;
use super::value;
use crate::error::{ParseError, ParseErrorKind};
use crate::model::*;
use std::sync::Arc;

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

fn neg(v: &str) -> (&str, &str) {
    match v.strip_prefix('!') {
        Some(r) => ("! ", r),
        None => ("", v),
    }
}

fn quote(s: &str) -> String {
    crate::model::print::quote(s)
}

/// Translates the trailing text of a row into save-format options; returns (matches, target
/// options, text that could not be decoded).
fn extras(target: &str, text: &str) -> (String, String, Vec<String>) {
    let mut m = String::new();
    let mut t = String::new();
    let mut unknown = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("/*") {
            let (c, after) = r.split_once("*/").unwrap_or((r, ""));
            m += &format!(" -m comment --comment {}", quote(c.trim()));
            rest = after.trim_start();
            continue;
        }
        let w = words(rest);
        let take = |n: usize| -> &str {
            let mut s = rest;
            for _ in 0..n.min(w.len()) {
                s = s.trim_start();
                s = &s[s.find(char::is_whitespace).unwrap_or(s.len())..];
            }
            s.trim_start()
        };
        let first = w[0];
        let consumed = match first {
            "tcp" | "udp" | "sctp"
                if w.len() > 1 && w[1].contains(':') && !w[1].starts_with("to:") =>
            {
                let mut n = 1;
                while n < w.len() {
                    let Some((k, v)) = w[n].split_once(':') else {
                        break;
                    };
                    let (bang, v) = neg(v);
                    let opt = match k {
                        "dpt" | "dpts" => "--dport",
                        "spt" | "spts" => "--sport",
                        "flags" => {
                            // flags:0x17/0x02 — kept as unknown detail, rare in kube-proxy rules.
                            unknown.push(w[n].to_string());
                            n += 1;
                            continue;
                        }
                        _ => break,
                    };
                    m += &format!(" -m {first} {bang}{opt} {v}");
                    n += 1;
                }
                n
            }
            "tcp" | "udp" | "sctp" => 1,
            "multiport" if w.len() > 2 => {
                let (bang, list) = neg(w[2]);
                let opt = if w[1] == "sports" {
                    "--sports"
                } else {
                    "--dports"
                };
                m += &format!(" -m multiport {bang}{opt} {list}");
                3
            }
            "statistic" if w.len() > 4 && w[2] == "random" => {
                m += &format!(" -m statistic --mode random --probability {}", w[4]);
                5
            }
            "statistic" if w.len() > 4 && w[2] == "nth" => {
                let mut s = format!(" -m statistic --mode nth --every {}", w[4]);
                let mut n = 5;
                if w.len() > 6 && w[5] == "packet" {
                    s += &format!(" --packet {}", w[6]);
                    n = 7;
                }
                m += &s;
                n
            }
            "ADDRTYPE" if w.len() > 2 && w[1] == "match" => {
                let mut n = 2;
                let mut s = String::from(" -m addrtype");
                while n + 1 < w.len() && (w[n] == "src-type" || w[n] == "dst-type") {
                    let (bang, v) = neg(w[n + 1]);
                    s += &format!(" {bang}--{} {v}", w[n]);
                    n += 2;
                }
                while n < w.len() && (w[n] == "limit-in" || w[n] == "limit-out") {
                    s += &format!(" --{}-iface", w[n]);
                    n += 1;
                }
                m += &s;
                n
            }
            // `PHYSDEV match [!] --physdev-is-bridged [!] --physdev-in br0 …`
            "PHYSDEV" if w.len() > 2 && w[1] == "match" => {
                let mut n = 2;
                let mut s = String::from(" -m physdev");
                loop {
                    let bang = w.get(n) == Some(&"!");
                    let at = n + usize::from(bang);
                    let Some(opt) = w.get(at).filter(|o| o.starts_with("--physdev-")) else {
                        break;
                    };
                    let not = if bang { "! " } else { "" };
                    if matches!(*opt, "--physdev-in" | "--physdev-out") {
                        let Some(v) = w.get(at + 1) else { break };
                        s += &format!(" {not}{opt} {v}");
                        n = at + 2;
                    } else {
                        s += &format!(" {not}{opt}");
                        n = at + 1;
                    }
                }
                if n == 2 {
                    unknown.push(first.to_string());
                    1
                } else {
                    m += &s;
                    n
                }
            }
            "mark" if w.len() > 2 && w[1] == "match" => {
                if w[2] == "!" && w.len() > 3 {
                    m += &format!(" -m mark ! --mark {}", w[3]);
                    4
                } else {
                    m += &format!(" -m mark --mark {}", w[2]);
                    3
                }
            }
            // iptables ≥ 1.8 prints a negated state as `! ctstate …`.
            "!" if w.len() > 2 && matches!(w[1], "ctstate" | "state") => {
                if w[1] == "state" {
                    m += &format!(" -m state ! --state {}", w[2]);
                } else {
                    m += &format!(" -m conntrack ! --ctstate {}", w[2]);
                }
                3
            }
            // `icmp echo-request` (without -n), `icmptype 8` (with it); `icmp any` is no condition.
            "icmp" | "icmptype" if w.len() > 1 && !w[1].contains(':') => {
                let (bang, v) = neg(w[1]);
                if v != "any" {
                    m += &format!(" -m icmp {bang}--icmp-type {v}");
                }
                2
            }
            "helper" if w.len() > 2 && w[1] == "match" => {
                m += &format!(" -m helper --helper {}", quote(w[2].trim_matches('"')));
                3
            }
            "nfacct-name" if w.len() > 1 => {
                m += &format!(" -m nfacct --nfacct-name {}", quote(w[1]));
                2
            }
            "ctstate" | "state" if w.len() > 1 => {
                let (bang, v) = neg(w[1]);
                if first == "state" {
                    m += &format!(" -m state {bang}--state {v}");
                } else {
                    m += &format!(" -m conntrack {bang}--ctstate {v}");
                }
                2
            }
            "match-set" if w.len() > 2 => {
                m += &format!(" -m set --match-set {} {}", w[1], w[2]);
                3
            }
            "recent:" if w.len() > 1 => {
                let mode = match w[1] {
                    "CHECK" => "--rcheck",
                    "SET" => "--set",
                    "UPDATE" => "--update",
                    "REMOVE" => "--remove",
                    _ => "--rcheck",
                };
                let mut s = format!(" -m recent {mode}");
                let mut n = 2;
                while n < w.len() {
                    match w[n] {
                        "seconds:" if n + 1 < w.len() => {
                            s += &format!(" --seconds {}", w[n + 1]);
                            n += 2;
                        }
                        "hit_count:" if n + 1 < w.len() => {
                            s += &format!(" --hitcount {}", w[n + 1]);
                            n += 2;
                        }
                        "reap" => {
                            s += " --reap";
                            n += 1;
                        }
                        "TTL-Match" => {
                            s += " --rttl";
                            n += 1;
                        }
                        "name:" if n + 1 < w.len() => {
                            s += &format!(" --name {}", w[n + 1]);
                            n += 2;
                        }
                        "side:" if n + 1 < w.len() => {
                            s += if w[n + 1] == "dest" {
                                " --rdest"
                            } else {
                                " --rsource"
                            };
                            n += 2;
                        }
                        "mask:" if n + 1 < w.len() => {
                            s += &format!(" --mask {}", w[n + 1]);
                            n += 2;
                        }
                        _ => break,
                    }
                }
                m += &s;
                n
            }
            _ => {
                // Target details.
                let n = match (target, first) {
                    // The listing repeats the target's name before its options.
                    ("MARK", "MARK") | ("CONNMARK", "CONNMARK") => 1,
                    ("CHECKSUM", "CHECKSUM") if w.get(1) == Some(&"fill") => {
                        t += " --checksum-fill";
                        2
                    }
                    ("TCPMSS", "TCPMSS") if w.get(1) == Some(&"clamp") => {
                        t += " --clamp-mss-to-pmtu";
                        w.len().min(4)
                    }
                    ("TCPMSS", "TCPMSS") if w.get(1) == Some(&"set") && w.len() > 2 => {
                        t += &format!(" --set-mss {}", w[2]);
                        3
                    }
                    ("MARK", "or" | "xor" | "and") if w.len() > 1 => {
                        t += &format!(" --{first}-mark {}", w[1]);
                        2
                    }
                    ("MARK", "xset") if w.len() > 1 => {
                        t += &format!(" --set-xmark {}", w[1]);
                        2
                    }
                    ("MARK", "set") if w.len() > 1 => {
                        t += &format!(" --set-mark {}", w[1]);
                        2
                    }
                    ("DNAT", _) if first.starts_with("to:") => {
                        t += &format!(" --to-destination {}", &first[3..]);
                        1
                    }
                    ("SNAT", _) if first.starts_with("to:") => {
                        t += &format!(" --to-source {}", &first[3..]);
                        1
                    }
                    ("MASQUERADE" | "REDIRECT", "masq" | "redir")
                        if w.len() > 2 && w[1] == "ports:" =>
                    {
                        t += &format!(" --to-ports {}", w[2]);
                        3
                    }
                    ("MASQUERADE" | "SNAT" | "DNAT", "random-fully") => {
                        t += " --random-fully";
                        1
                    }
                    ("MASQUERADE" | "SNAT" | "DNAT", "random") => {
                        t += " --random";
                        1
                    }
                    ("REJECT", "reject-with") if w.len() > 1 => {
                        t += &format!(" --reject-with {}", w[1]);
                        2
                    }
                    _ => {
                        unknown.push(first.to_string());
                        1
                    }
                };
                n
            }
        };
        rest = take(consumed);
    }
    (m, t, unknown)
}

/// Whether a rule printed without `-v` may have had an interface match. kube-proxy writes
/// interfaces only in its local-traffic detector (`--detect-local-mode=InterfaceNamePrefix` or
/// `BridgeInterface`), which replaces the `-s <cluster CIDR>` of the masquerade-off-cluster rule
/// ("… cluster IP" → KUBE-MARK-MASQ) and of the pods-to-external-IP shortcut (KUBE-XLB/KUBE-EXT →
/// KUBE-SVC). Every other rule of its chains is known to have none; rules of other chains (Docker,
/// CNIs, the administrator) may have any.
fn may_hide_interface(chain: &str, r: &Rule) -> bool {
    let target = r.jump_target().unwrap_or("");
    if !chain.starts_with("KUBE-") && !target.starts_with("KUBE-") {
        return true;
    }
    let has_source = r
        .matches
        .iter()
        .any(|m| matches!(m.criterion, Criterion::Source(_)));
    if has_source {
        return false;
    }
    let comment = r.comment().unwrap_or("").to_ascii_lowercase();
    (target == "KUBE-MARK-MASQ" && comment.ends_with("cluster ip"))
        || ((chain.starts_with("KUBE-XLB-") || chain.starts_with("KUBE-EXT-"))
            && target.starts_with("KUBE-SVC-")
            && comment.contains("pod"))
}

struct Block {
    table: String,
    /// The prompt line that named the table, if one did.
    table_from: Option<Span>,
    chain: String,
    policy: Option<Policy>,
    decl: Span,
    verbose: bool,
    /// `--line-numbers`: the header starts with `num` and every row with its number.
    numbered: bool,
}

/// A listing's packet and byte counts, with `K`, `M`, `G` suffixes unless `-x` was given.
fn count(s: &str) -> Option<u64> {
    let (num, mult) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1_000),
        'M' => (&s[..s.len() - 1], 1_000_000),
        'G' => (&s[..s.len() - 1], 1_000_000_000),
        'T' => (&s[..s.len() - 1], 1_000_000_000_000),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

pub fn parse(source: Arc<Source>) -> Result<Ruleset, Vec<ParseError>> {
    let mut rs = Ruleset::new(source.clone(), InputFormat::Listing);
    let mut errors = Vec::new();
    let mut table = "filter".to_string();
    let mut table_known = false;
    let mut table_from: Option<Span> = None;
    let mut block: Option<Block> = None;
    let mut rows: Vec<(Block, Vec<(Rule, String)>)> = Vec::new();
    let mut current: Vec<(Rule, String)> = Vec::new();
    let mut elided = 0usize;
    let mut cut_pending: Option<u32> = None;
    let mut skipped = Vec::new();
    let mut undecoded: Vec<(u32, String)> = Vec::new();
    let mut saw_verbose = false;
    let mut saw_plain = false;
    let mut hidden = 0usize;
    let mut named_hosts = 0usize;
    for l in lines(&source.text) {
        let t = l.text;
        // `# iptables -t mangle -nvL` is a root prompt, not a comment.
        if t.is_empty() || (t.starts_with('#') && super::prompt::table_of(t).is_none()) {
            continue;
        }
        // Markdown fences around a pasted listing.
        if t.starts_with("```") || t.starts_with("~~~") {
            skipped.push(l.no);
            continue;
        }
        if super::save::is_elision(t) {
            elided += 1;
            // The block it stands in holds more rows than shown (and so may the next one).
            if let Some(b) = &block {
                rs.cuts.push(Cut {
                    table: None,
                    chain: b.chain.clone(),
                    at: current.len() as u32,
                    line: l.no,
                });
            }
            cut_pending = Some(l.no);
            continue;
        }
        if let Some(rest) = t.strip_prefix("Chain ") {
            if let (Some(line), Some(name)) = (cut_pending.take(), rest.split_whitespace().next()) {
                // A marker between blocks: chains may be missing whole, and the next one's head.
                rs.cuts.push(Cut {
                    table: None,
                    chain: name.to_string(),
                    at: 0,
                    line,
                });
            }
            if let Some(b) = block.take() {
                rows.push((b, std::mem::take(&mut current)));
            }
            let name = rest.split_whitespace().next().unwrap_or("").to_string();
            let policy = if rest.contains("(policy DROP") {
                Some(Policy::Drop)
            } else if rest.contains("(policy ") {
                Some(Policy::Accept)
            } else {
                None
            };
            block = Some(Block {
                table: table.clone(),
                table_from,
                chain: name,
                policy,
                decl: l.span(),
                verbose: false,
                numbered: false,
            });
            continue;
        }
        // A prompt with the command that printed the listing says which table it is.
        if let Some(named) = super::prompt::table_of(t) {
            if let Some(name) = named {
                if crate::model::table::KNOWN_TABLES.contains(&name.as_str()) {
                    table = name;
                    table_known = true;
                    table_from = Some(l.span());
                } else {
                    errors.push(ParseError::new(
                        l.span(),
                        ParseErrorKind::UnknownTable(name),
                    ));
                }
            }
            skipped.push(l.no);
            continue;
        }
        let Some(b) = block.as_mut() else {
            skipped.push(l.no);
            continue;
        };
        let w = words(t);
        if w.is_empty() {
            // Blank but for whitespace (a form feed, say): no row.
            continue;
        }
        if w.first() == Some(&"target")
            || (w.first() == Some(&"pkts") && w.get(2) == Some(&"target"))
            || w.first() == Some(&"num")
        {
            b.verbose = w.contains(&"pkts");
            b.numbered = w.first() == Some(&"num");
            if b.verbose {
                saw_verbose = true;
            } else {
                saw_plain = true;
            }
            continue;
        }
        // Columns: [num] [pkts bytes] target prot opt [in out] source destination extras…
        let mut cols: Vec<&str> = w.clone();
        let mut i = 0;
        if cols
            .first()
            .is_some_and(|c| c.bytes().all(|b| b.is_ascii_digit()))
            && (b.numbered || (!b.verbose && cols.len() > 5 && cols[1].parse::<u64>().is_err()))
        {
            i = 1; // --line-numbers
        }
        let mut counters = None;
        if b.verbose {
            if cols.len() < i + 2 {
                errors.push(ParseError::new(
                    l.span(),
                    ParseErrorKind::Other("a listing row cut short".into()),
                ));
                continue;
            }
            if !b.numbered
                && cols.len() > i + 2
                && count(cols[i + 1]).is_some()
                && count(cols[i]).is_none()
            {
                i += 1; // line number before counters
            }
            match (count(cols[i]), count(cols[i + 1])) {
                (Some(p), Some(by)) => {
                    counters = Some(Counters {
                        packets: p,
                        bytes: by,
                    })
                }
                _ => {
                    errors.push(ParseError::new(
                        l.span(),
                        ParseErrorKind::Other(format!(
                            "expected packet and byte counts, found `{} {}`",
                            cols[i],
                            cols[i + 1]
                        )),
                    ));
                    continue;
                }
            }
            i += 2;
        }
        if cols.len() <= i {
            errors.push(ParseError::new(
                l.span(),
                ParseErrorKind::Other(
                    "a listing row cut short: expected target, prot, opt, source and destination columns"
                        .into(),
                ),
            ));
            continue;
        }
        // The target column is blank for rules without a target: the row then starts with the
        // protocol, recognisable by the `--`/`-f` option column after it.
        let has_target = !(cols.len() > i + 1
            && (cols[i + 1] == "--" || cols[i + 1].ends_with('f'))
            && cols.len() > i + 2
            && !matches!(cols[i + 2], "--" | "-f" | "!f"));
        let target = if has_target { Some(cols[i]) } else { None };
        if has_target {
            i += 1;
        }
        let need = if b.verbose { 6 } else { 4 };
        if cols.len() < i + need {
            errors.push(ParseError::new(
                l.span(),
                ParseErrorKind::Other(
                    "a listing row cut short: expected prot, opt, source and destination columns"
                        .into(),
                ),
            ));
            continue;
        }
        let prot = cols[i];
        let opt = cols[i + 1];
        let (iface_in, iface_out) = if b.verbose {
            (Some(cols[i + 2]), Some(cols[i + 3]))
        } else {
            (None, None)
        };
        let off = if b.verbose { 4 } else { 2 };
        let src = cols[i + off];
        let dst = cols[i + off + 1];
        cols.drain(..i + off + 2);
        // The trailing text, as written (comments keep their spacing).
        let extra_start = {
            let mut s = t;
            for _ in 0..(w.len() - cols.len()) {
                s = s.trim_start();
                s = &s[s.find(char::is_whitespace).unwrap_or(s.len())..];
            }
            s.trim_start()
        };
        let mut spec = String::new();
        let (pbang, p) = neg(prot);
        if p != "all" && p != "0" {
            spec += &format!(" {pbang}-p {p}");
        }
        // Without `-n`, addresses are resolved: `anywhere`, and host names whose address the
        // listing does not show.
        let mut hosts: Vec<String> = Vec::new();
        for (flag, v) in [("-s", src), ("-d", dst)] {
            let (bang, v) = neg(v);
            let local: String;
            let v = match v {
                // The one name every resolver answers the same; an IPv6 listing shows `::` columns.
                "localhost" if !t.contains("::") => "127.0.0.1",
                "localhost" | "ip6-localhost" | "ip6-loopback" => "::1",
                v if v.starts_with("localhost/") && !t.contains("::") => {
                    local = format!("127.0.0.1{}", &v[9..]);
                    &local
                }
                v => v,
            };
            if v == "0.0.0.0/0" || v == "::/0" || v == "anywhere" {
                continue;
            }
            let readable = value::address(v).is_ok() || value::masked_address(v).is_some();
            if readable {
                spec += &format!(" {bang}{flag} {v}");
            } else {
                let dir = if flag == "-s" {
                    "source"
                } else {
                    "destination"
                };
                let not = if bang.is_empty() { "" } else { "not " };
                hosts.push(format!(
                    "the listing shows the {dir} as {not}host name `{v}` (`-L` without `-n`); its address is not known"
                ));
            }
        }
        if let (Some(i_in), Some(i_out)) = (iface_in, iface_out) {
            for (flag, v) in [("-i", i_in), ("-o", i_out)] {
                let (bang, v) = neg(v);
                if v != "*" {
                    spec += &format!(" {bang}{flag} {v}");
                }
            }
        }
        if opt == "-f" {
            spec += " -f";
        } else if opt == "!f" {
            spec += " ! -f";
        }
        let (m, topts, unknown) = extras(target.unwrap_or(""), extra_start);
        let mut unread: Option<String> = None;
        spec += &m;
        if let Some(tg) = target {
            spec += &format!(" -j {tg}{topts}");
        }
        if !unknown.is_empty() {
            undecoded.push((l.no, unknown.join(" ")));
            // What the row shows and kptrace cannot read may be a match: the rule is only known
            // to match where that part does. Logging targets print their options there instead.
            let logs = matches!(
                target.unwrap_or(""),
                "LOG" | "NFLOG" | "ULOG" | "TRACE" | "CHECKSUM" | "TCPMSS"
            );
            if !logs {
                unread = Some(format!(
                    "the listing shows `{}`, which kptrace cannot read: the rule may have a condition there",
                    unknown.join(" ")
                ));
            }
        }
        match parse_rule(spec.trim(), 0, l.no, l.span()) {
            Ok(mut r) => {
                r.counters = counters;
                r.span = l.span();
                for mm in r.matches.iter_mut() {
                    mm.span = l.span();
                }
                if !hosts.is_empty() {
                    named_hosts += 1;
                    let mut ms = std::mem::take(&mut r.matches).into_vec();
                    for h in hosts {
                        ms.push(Match {
                            continues: false,
                            negated: false,
                            criterion: Criterion::Hidden(h.into()),
                            span: l.span(),
                        });
                    }
                    r.matches = ms.into_boxed_slice();
                }
                if let Some(u) = unread {
                    let mut ms = std::mem::take(&mut r.matches).into_vec();
                    ms.push(Match {
                        continues: false,
                        negated: false,
                        criterion: Criterion::Hidden(u.into()),
                        span: l.span(),
                    });
                    r.matches = ms.into_boxed_slice();
                }
                if !b.verbose && may_hide_interface(&b.chain, &r) {
                    hidden += 1;
                    let mut ms = std::mem::take(&mut r.matches).into_vec();
                    ms.push(Match {
                        continues: false,
                        negated: false,
                        criterion: Criterion::Hidden(
                            "the listing does not show interfaces (`-L` without `-v`); this rule may have one"
                                .into(),
                        ),
                        span: l.span(),
                    });
                    r.matches = ms.into_boxed_slice();
                }
                if let Some(tg) = r.target.as_mut() {
                    tg.span = l.span();
                }
                current.push((r, spec));
                cut_pending = None;
            }
            Err(_) => errors.push(ParseError::new(
                l.span(),
                ParseErrorKind::Other(format!(
                    "cannot read this listing row (as `{}`)",
                    spec.trim()
                )),
            )),
        }
    }
    if let Some(b) = block.take() {
        rows.push((b, current));
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(ParseError::new(
            Span::NONE,
            ParseErrorKind::Other("no `Chain …` block in the listing".into()),
        ));
    }
    // The built-in chains listed with a policy name the table when they are all of one table's.
    let with_policy: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter(|(b, _)| b.policy.is_some())
        .map(|(b, _)| b.chain.as_str())
        .collect();
    let by_builtins = crate::model::table::with_builtins(&with_policy);
    // raw's two built-in chains are also nat's and mangle's: taken only for a listing with no rule
    // to say otherwise.
    if let (false, Some(t)) = (
        table_known,
        by_builtins.filter(|t| *t != "raw" || rows.iter().all(|(_, r)| r.is_empty())),
    ) {
        for (b, _) in rows.iter_mut() {
            b.table = t.into();
        }
    } else if !table_known {
        // No command line in the paste: NAT targets and hooks say nat.
        let nat = rows.iter().any(|(b, rs)| {
            matches!(b.chain.as_str(), "PREROUTING" | "POSTROUTING")
                || rs.iter().any(|(r, _)| {
                    matches!(
                        r.target_kind(),
                        Some(
                            TargetKind::Dnat { .. }
                                | TargetKind::Snat { .. }
                                | TargetKind::Masquerade { .. }
                        )
                    )
                })
        });
        for (b, _) in rows.iter_mut() {
            b.table = if nat { "nat".into() } else { "filter".into() };
        }
    }
    let mut listed = std::collections::BTreeSet::new();
    for (b, rules) in rows {
        let builtin = crate::model::table::builtin_chains(&b.table).contains(&b.chain.as_str());
        if b.policy.is_some() && !builtin {
            // Only built-in chains have policies: the table is not what the paste says or implies.
            let mut e = ParseError::new(
                b.decl,
                ParseErrorKind::Other(format!(
                    "chain `{}` has a policy, but it is not a built-in chain of table `{}`",
                    b.chain, b.table
                )),
            );
            if let Some(from) = b.table_from {
                e = e.with_cause(
                    from,
                    format!("the table is `{}` from this command", b.table),
                );
            }
            errors.push(e);
            continue;
        }
        let t = rs.table_or_insert(&b.table);
        for name in crate::model::table::builtin_chains(&b.table) {
            t.ensure(name, ChainOrigin::Declared);
        }
        t.committed = true;
        let id = t.ensure(&b.chain, ChainOrigin::Declared);
        let c = t.get_mut(id);
        c.decl = Some(b.decl);
        c.origin = ChainOrigin::Declared;
        if let Some(p) = b.policy {
            c.policy = Some(p);
        }
        for (r, _) in rules {
            c.rules.push(RuleSlot::ready(r));
        }
        listed.insert((b.table.clone(), b.chain.clone()));
    }
    // Chains jumped to but not listed: what they do is not in the paste.
    let mut missing = Vec::new();
    for t in rs.tables.iter_mut() {
        let targets: Vec<String> = t
            .chains
            .iter()
            .flat_map(|c| {
                c.rules
                    .iter()
                    .filter_map(|s| s.get().and_then(|r| r.jump_target().map(str::to_string)))
            })
            .collect();
        for target in targets {
            if t.id(&target).is_none() {
                t.ensure(&target, ChainOrigin::Implicit);
                missing.push(target);
            }
        }
    }
    missing.sort();
    missing.dedup();
    if elided > 0 || !missing.is_empty() {
        rs.fragment = true;
    }
    if saw_plain && !saw_verbose && hidden == 0 {
        rs.note(
            "listing without -v: interfaces are not shown, but none of these rules could have one",
            None,
        );
    } else if saw_plain && !saw_verbose {
        rs.note(
            format!(
                "listing without -v: interfaces are not shown, so {hidden} rule{} that may carry one {} traced as \"may match\" (kube-proxy's rules have none, but for its interface-based local-traffic detector); list with `-v` to be sure",
                if hidden == 1 { "" } else { "s" },
                if hidden == 1 { "is" } else { "are" }
            ),
            None,
        );
    }
    if named_hosts > 0 {
        rs.note(
            format!(
                "listing without -n: {named_hosts} rule{} a host whose address the listing does not show; {} traced as \"may match\" (list with `-n` to be sure)",
                if named_hosts == 1 { " names" } else { "s name" },
                if named_hosts == 1 { "it is" } else { "they are" }
            ),
            None,
        );
    }
    if elided > 0 {
        rs.note(
            format!(
                "{elided} elided part{} (`...`) of the listing: {} may hold more rules than shown, and answers through them are approximate",
                if elided == 1 { "" } else { "s" },
                {
                    let mut c: Vec<String> =
                        rs.cuts.iter().map(|c| format!("`{}`", c.chain)).collect();
                    c.dedup();
                    c.truncate(6);
                    if c.is_empty() {
                        "chains".to_string()
                    } else {
                        c.join(", ")
                    }
                }
            ),
            None,
        );
    }
    if !missing.is_empty() {
        rs.note(
            format!(
                "{} chain{} jumped to but not listed: {}",
                missing.len(),
                if missing.len() == 1 { " is" } else { "s are" },
                missing
                    .iter()
                    .take(6)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None,
        );
    }
    for (no, text) in undecoded.iter().take(5) {
        rs.note(
            format!("line {no}: could not decode `{text}`; the rule is traced as \"may match\""),
            None,
        );
    }
    if !skipped.is_empty() {
        rs.note(
            format!(
                "skipped {} line{} outside the listing's rows",
                skipped.len(),
                if skipped.len() == 1 { "" } else { "s" }
            ),
            None,
        );
    }
    if errors.is_empty() {
        Ok(rs)
    } else {
        Err(errors)
    }
}
