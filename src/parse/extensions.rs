//! The options of every extension iptables ships (iptables-extensions(8), IPv4 and IPv6): which
//! take a value, which are flags, which take two words. Data, not special cases: the rule parser
//! asks this table how many words an option consumes, so a libvirt `-j CHECKSUM --checksum-fill`
//! or a `-j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff` reads as iptables reads
//! it. What a module or target means is modelled elsewhere; modules missing from here are kept
//! verbatim and "may match".

/// How many words follow an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// No value (`--checksum-fill`).
    Flag,
    /// One value (`--queue-num 3`).
    One,
    /// Two values (`--match-set NAME src`, `--tcp-flags SYN,ACK SYN`).
    Two,
    /// A value when the next word is not an option (`--rateest-bps [rate]`).
    Optional,
}

use Arity::*;

/// The options of one extension, with how many words each takes.
pub type Opts = &'static [(&'static str, Arity)];

/// Options shared by the port-carrying protocol modules.
const PORTS: Opts = &[
    ("--sport", One),
    ("--source-port", One),
    ("--dport", One),
    ("--destination-port", One),
];

/// Match modules and their options.
const MATCHES: &[(&str, Opts)] = &[
    (
        "addrtype",
        &[
            ("--src-type", One),
            ("--dst-type", One),
            ("--limit-iface-in", Flag),
            ("--limit-iface-out", Flag),
        ],
    ),
    (
        "ah",
        &[("--ahspi", One), ("--ahlen", One), ("--ahres", Flag)],
    ),
    ("bpf", &[("--object-pinned", One), ("--bytecode", One)]),
    ("cgroup", &[("--path", One), ("--cgroup", One)]),
    (
        "cluster",
        &[
            ("--cluster-total-nodes", One),
            ("--cluster-local-node", One),
            ("--cluster-local-nodemask", One),
            ("--cluster-hash-seed", One),
        ],
    ),
    ("comment", &[("--comment", One)]),
    (
        "connbytes",
        &[
            ("--connbytes", One),
            ("--connbytes-dir", One),
            ("--connbytes-mode", One),
        ],
    ),
    ("connlabel", &[("--label", One), ("--set", Flag)]),
    (
        "connlimit",
        &[
            ("--connlimit-upto", One),
            ("--connlimit-above", One),
            ("--connlimit-mask", One),
            ("--connlimit-saddr", Flag),
            ("--connlimit-daddr", Flag),
        ],
    ),
    ("connmark", &[("--mark", One)]),
    (
        "conntrack",
        &[
            ("--ctstate", One),
            ("--ctproto", One),
            ("--ctorigsrc", One),
            ("--ctorigdst", One),
            ("--ctreplsrc", One),
            ("--ctrepldst", One),
            ("--ctorigsrcport", One),
            ("--ctorigdstport", One),
            ("--ctreplsrcport", One),
            ("--ctrepldstport", One),
            ("--ctstatus", One),
            ("--ctexpire", One),
            ("--ctdir", One),
        ],
    ),
    ("cpu", &[("--cpu", One)]),
    (
        "dccp",
        &[
            ("--sport", One),
            ("--source-port", One),
            ("--dport", One),
            ("--destination-port", One),
            ("--dccp-types", One),
            ("--dccp-option", One),
        ],
    ),
    ("devgroup", &[("--src-group", One), ("--dst-group", One)]),
    ("dscp", &[("--dscp", One), ("--dscp-class", One)]),
    ("dst", &[("--dst-len", One), ("--dst-opts", One)]),
    (
        "ecn",
        &[
            ("--ecn-tcp-cwr", Flag),
            ("--ecn-tcp-ece", Flag),
            ("--ecn-ip-ect", One),
        ],
    ),
    ("esp", &[("--espspi", One)]),
    ("eui64", &[]),
    (
        "frag",
        &[
            ("--fragid", One),
            ("--fraglen", One),
            ("--fragres", Flag),
            ("--fragfirst", Flag),
            ("--fragmore", Flag),
            ("--fraglast", Flag),
        ],
    ),
    (
        "hashlimit",
        &[
            ("--hashlimit", One),
            ("--hashlimit-upto", One),
            ("--hashlimit-above", One),
            ("--hashlimit-burst", One),
            ("--hashlimit-mode", One),
            ("--hashlimit-srcmask", One),
            ("--hashlimit-dstmask", One),
            ("--hashlimit-name", One),
            ("--hashlimit-htable-size", One),
            ("--hashlimit-htable-max", One),
            ("--hashlimit-htable-expire", One),
            ("--hashlimit-htable-gcinterval", One),
            ("--hashlimit-rate-match", Flag),
            ("--hashlimit-rate-interval", One),
        ],
    ),
    ("hbh", &[("--hbh-len", One), ("--hbh-opts", One)]),
    ("helper", &[("--helper", One)]),
    (
        "hl",
        &[("--hl-eq", One), ("--hl-lt", One), ("--hl-gt", One)],
    ),
    ("icmp", &[("--icmp-type", One)]),
    ("icmp6", &[("--icmpv6-type", One)]),
    ("icmpv6", &[("--icmpv6-type", One)]),
    ("ipcomp", &[("--ipcompspi", One), ("--compres", Flag)]),
    ("iprange", &[("--src-range", One), ("--dst-range", One)]),
    ("ipv6header", &[("--soft", Flag), ("--header", One)]),
    (
        "ipvs",
        &[
            ("--ipvs", Flag),
            ("--vproto", One),
            ("--vaddr", One),
            ("--vport", One),
            ("--vdir", One),
            ("--vmethod", One),
            ("--vportctl", One),
        ],
    ),
    (
        "l2tp",
        &[
            ("--tunnel-id", One),
            ("--session-id", One),
            ("--type", One),
            ("--pversion", One),
        ],
    ),
    ("length", &[("--length", One)]),
    ("limit", &[("--limit", One), ("--limit-burst", One)]),
    ("mac", &[("--mac-source", One)]),
    ("mark", &[("--mark", One)]),
    ("mh", &[("--mh-type", One)]),
    (
        "multiport",
        &[
            ("--sports", One),
            ("--source-ports", One),
            ("--dports", One),
            ("--destination-ports", One),
            ("--ports", One),
        ],
    ),
    ("nfacct", &[("--nfacct-name", One)]),
    ("osf", &[("--genre", One), ("--ttl", One), ("--log", One)]),
    (
        "owner",
        &[
            ("--uid-owner", One),
            ("--gid-owner", One),
            ("--suppl-groups", Flag),
            ("--socket-exists", Flag),
        ],
    ),
    (
        "physdev",
        &[
            ("--physdev-in", One),
            ("--physdev-out", One),
            ("--physdev-is-in", Flag),
            ("--physdev-is-out", Flag),
            ("--physdev-is-bridged", Flag),
        ],
    ),
    ("pkttype", &[("--pkt-type", One)]),
    (
        "policy",
        &[
            ("--dir", One),
            ("--pol", One),
            ("--strict", Flag),
            ("--reqid", One),
            ("--spi", One),
            ("--proto", One),
            ("--mode", One),
            ("--tunnel-src", One),
            ("--tunnel-dst", One),
            ("--next", Flag),
        ],
    ),
    ("quota", &[("--quota", One)]),
    (
        "rateest",
        &[
            ("--rateest", One),
            ("--rateest1", One),
            ("--rateest2", One),
            ("--rateest-delta", Flag),
            ("--rateest-bps", Optional),
            ("--rateest-pps", Optional),
            ("--rateest-bps1", Optional),
            ("--rateest-pps1", Optional),
            ("--rateest-bps2", Optional),
            ("--rateest-pps2", Optional),
            ("--rateest-lt", Flag),
            ("--rateest-gt", Flag),
            ("--rateest-eq", Flag),
        ],
    ),
    ("realm", &[("--realm", One)]),
    (
        "recent",
        &[
            ("--name", One),
            ("--set", Flag),
            ("--rcheck", Flag),
            ("--update", Flag),
            ("--remove", Flag),
            ("--seconds", One),
            ("--reap", Flag),
            ("--hitcount", One),
            ("--rttl", Flag),
            ("--rsource", Flag),
            ("--rdest", Flag),
            ("--mask", One),
        ],
    ),
    (
        "rpfilter",
        &[
            ("--loose", Flag),
            ("--validmark", Flag),
            ("--accept-local", Flag),
            ("--invert", Flag),
        ],
    ),
    (
        "rt",
        &[
            ("--rt-type", One),
            ("--rt-segsleft", One),
            ("--rt-len", One),
            ("--rt-0-res", Flag),
            ("--rt-0-addrs", One),
            ("--rt-0-not-strict", Flag),
        ],
    ),
    (
        "sctp",
        &[
            ("--sport", One),
            ("--source-port", One),
            ("--dport", One),
            ("--destination-port", One),
            ("--chunk-types", Two),
        ],
    ),
    (
        "set",
        &[
            ("--match-set", Two),
            ("--set", Two),
            ("--return-nomatch", Flag),
            ("--update-counters", Flag),
            ("--update-subcounters", Flag),
            ("--packets-eq", One),
            ("--packets-lt", One),
            ("--packets-gt", One),
            ("--bytes-eq", One),
            ("--bytes-lt", One),
            ("--bytes-gt", One),
        ],
    ),
    (
        "socket",
        &[
            ("--transparent", Flag),
            ("--nowildcard", Flag),
            ("--restore-skmark", Flag),
        ],
    ),
    ("state", &[("--state", One)]),
    (
        "statistic",
        &[
            ("--mode", One),
            ("--probability", One),
            ("--every", One),
            ("--packet", One),
        ],
    ),
    (
        "string",
        &[
            ("--algo", One),
            ("--from", One),
            ("--to", One),
            ("--string", One),
            ("--hex-string", One),
            ("--icase", Flag),
        ],
    ),
    (
        "tcp",
        &[
            ("--sport", One),
            ("--source-port", One),
            ("--dport", One),
            ("--destination-port", One),
            ("--tcp-flags", Two),
            ("--syn", Flag),
            ("--tcp-option", One),
        ],
    ),
    ("tcpmss", &[("--mss", One)]),
    (
        "time",
        &[
            ("--datestart", One),
            ("--datestop", One),
            ("--timestart", One),
            ("--timestop", One),
            ("--monthdays", One),
            ("--weekdays", One),
            ("--contiguous", Flag),
            ("--kerneltz", Flag),
            ("--localtz", Flag),
            ("--utc", Flag),
        ],
    ),
    ("tos", &[("--tos", One)]),
    (
        "ttl",
        &[("--ttl-eq", One), ("--ttl-gt", One), ("--ttl-lt", One)],
    ),
    ("u32", &[("--u32", One)]),
    ("udp", PORTS),
    ("udplite", PORTS),
    ("unclean", &[]),
];

/// Targets and their options.
const TARGETS: &[(&str, Opts)] = &[
    ("ACCEPT", &[]),
    ("AUDIT", &[("--type", One)]),
    ("CHECKSUM", &[("--checksum-fill", Flag)]),
    ("CLASSIFY", &[("--set-class", One)]),
    (
        "CLUSTERIP",
        &[
            ("--new", Flag),
            ("--hashmode", One),
            ("--clustermac", One),
            ("--total-nodes", One),
            ("--local-node", One),
            ("--hash-init", One),
        ],
    ),
    (
        "CONNMARK",
        &[
            ("--set-xmark", One),
            ("--set-mark", One),
            ("--and-mark", One),
            ("--or-mark", One),
            ("--xor-mark", One),
            ("--save-mark", Flag),
            ("--restore-mark", Flag),
            ("--nfmask", One),
            ("--ctmask", One),
            ("--mask", One),
        ],
    ),
    ("CONNSECMARK", &[("--save", Flag), ("--restore", Flag)]),
    (
        "CT",
        &[
            ("--notrack", Flag),
            ("--helper", One),
            ("--ctevents", One),
            ("--expevents", One),
            ("--zone", One),
            ("--zone-orig", One),
            ("--zone-reply", One),
            ("--timeout", One),
        ],
    ),
    (
        "DNAT",
        &[
            ("--to-destination", One),
            ("--random", Flag),
            ("--random-fully", Flag),
            ("--persistent", Flag),
        ],
    ),
    ("DNPT", &[("--src-pfx", One), ("--dst-pfx", One)]),
    ("DROP", &[]),
    ("DSCP", &[("--set-dscp", One), ("--set-dscp-class", One)]),
    (
        "ECN",
        &[
            ("--ecn-tcp-remove", Flag),
            ("--ecn-tcp-cwr", One),
            ("--ecn-tcp-ece", One),
            ("--ecn-ip-ect", One),
        ],
    ),
    (
        "HL",
        &[("--hl-set", One), ("--hl-dec", One), ("--hl-inc", One)],
    ),
    (
        "HMARK",
        &[
            ("--hmark-tuple", One),
            ("--hmark-mod", One),
            ("--hmark-offset", One),
            ("--hmark-src-prefix", One),
            ("--hmark-dst-prefix", One),
            ("--hmark-sport-mask", One),
            ("--hmark-dport-mask", One),
            ("--hmark-spi-mask", One),
            ("--hmark-proto-mask", One),
            ("--hmark-rnd", One),
        ],
    ),
    (
        "IDLETIMER",
        &[("--timeout", One), ("--label", One), ("--alarm", Flag)],
    ),
    (
        "LED",
        &[
            ("--led-trigger-id", One),
            ("--led-delay", One),
            ("--led-always-blink", Flag),
        ],
    ),
    (
        "LOG",
        &[
            ("--log-level", One),
            ("--log-prefix", One),
            ("--log-tcp-sequence", Flag),
            ("--log-tcp-options", Flag),
            ("--log-ip-options", Flag),
            ("--log-uid", Flag),
            ("--log-macdecode", Flag),
        ],
    ),
    (
        "MARK",
        &[
            ("--set-xmark", One),
            ("--set-mark", One),
            ("--and-mark", One),
            ("--or-mark", One),
            ("--xor-mark", One),
        ],
    ),
    (
        "MASQUERADE",
        &[
            ("--to-ports", One),
            ("--random", Flag),
            ("--random-fully", Flag),
        ],
    ),
    ("MIRROR", &[]),
    ("NETMAP", &[("--to", One)]),
    (
        "NFLOG",
        &[
            ("--nflog-group", One),
            ("--nflog-prefix", One),
            ("--nflog-range", One),
            ("--nflog-size", One),
            ("--nflog-threshold", One),
        ],
    ),
    (
        "NFQUEUE",
        &[
            ("--queue-num", One),
            ("--queue-balance", One),
            ("--queue-bypass", Flag),
            ("--fail-open", Flag),
            ("--queue-cpu-fanout", Flag),
        ],
    ),
    ("NOTRACK", &[]),
    ("QUEUE", &[]),
    (
        "RATEEST",
        &[
            ("--rateest-name", One),
            ("--rateest-interval", One),
            ("--rateest-ewmalog", One),
        ],
    ),
    ("REDIRECT", &[("--to-ports", One), ("--random", Flag)]),
    ("REJECT", &[("--reject-with", One)]),
    ("RETURN", &[]),
    (
        "SAME",
        &[("--to", One), ("--nodst", Flag), ("--random", Flag)],
    ),
    ("SECMARK", &[("--selctx", One)]),
    (
        "SET",
        &[
            ("--add-set", Two),
            ("--del-set", Two),
            ("--map-set", Two),
            ("--timeout", One),
            ("--exist", Flag),
            ("--map-mark", Flag),
            ("--map-prio", Flag),
            ("--map-queue", Flag),
        ],
    ),
    (
        "SNAT",
        &[
            ("--to-source", One),
            ("--random", Flag),
            ("--random-fully", Flag),
            ("--persistent", Flag),
        ],
    ),
    ("SNPT", &[("--src-pfx", One), ("--dst-pfx", One)]),
    (
        "SYNPROXY",
        &[
            ("--mss", One),
            ("--wscale", One),
            ("--sack-perm", Flag),
            ("--timestamp", Flag),
            ("--ecn", Flag),
        ],
    ),
    (
        "TCPMSS",
        &[("--set-mss", One), ("--clamp-mss-to-pmtu", Flag)],
    ),
    ("TCPOPTSTRIP", &[("--strip-options", One)]),
    ("TEE", &[("--gateway", One)]),
    (
        "TOS",
        &[
            ("--set-tos", One),
            ("--and-tos", One),
            ("--or-tos", One),
            ("--xor-tos", One),
        ],
    ),
    (
        "TPROXY",
        &[("--on-port", One), ("--on-ip", One), ("--tproxy-mark", One)],
    ),
    ("TRACE", &[]),
    (
        "TTL",
        &[("--ttl-set", One), ("--ttl-dec", One), ("--ttl-inc", One)],
    ),
    (
        "ULOG",
        &[
            ("--ulog-nlgroup", One),
            ("--ulog-prefix", One),
            ("--ulog-cprange", One),
            ("--ulog-qthreshold", One),
        ],
    ),
];

type Index = rustc_hash::FxHashMap<&'static str, Opts>;

fn index(table: &'static [(&'static str, Opts)]) -> Index {
    table.iter().copied().collect()
}

/// Every `-m` and `-j` of a large dump asks: each table is hashed once.
fn find_match(name: &str) -> Option<Opts> {
    static INDEX: std::sync::OnceLock<Index> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| index(MATCHES)).get(name).copied()
}

fn find_target(name: &str) -> Option<Opts> {
    static INDEX: std::sync::OnceLock<Index> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| index(TARGETS)).get(name).copied()
}

/// An option as iptables reads it: by its name, or by a prefix that names no other option of the
/// extension (iptables parses with getopt_long, so `--to-port 15053` is `--to-ports`).
fn lookup(opts: Opts, opt: &str) -> Option<(&'static str, Arity)> {
    if let Some(&(o, a)) = opts.iter().find(|(o, _)| *o == opt) {
        return Some((o, a));
    }
    if opt.len() < 4 || !opt.starts_with("--") {
        return None;
    }
    let mut found = opts.iter().filter(|(o, _)| o.starts_with(opt));
    match (found.next(), found.next()) {
        (Some(&(o, a)), None) => Some((o, a)),
        _ => None,
    }
}

/// The options of match module `module` (None for a module iptables does not ship), to look
/// options up in with [`option_in`]: a rule's parser finds them once per `-m`.
pub fn match_opts(module: &str) -> Option<Opts> {
    find_match(module)
}

/// Option `opt` (perhaps abbreviated) among `opts`: its full name and arity.
pub fn option_in(opts: Opts, opt: &str) -> Option<(&'static str, Arity)> {
    lookup(opts, opt)
}

/// Whether `-j NAME` is a target iptables ships (so never a user chain's name).
pub fn is_target(name: &str) -> bool {
    // Nearly every `-j` of a kube-proxy dump names one of its chains: no target is named so.
    !name.starts_with("KUBE-") && find_target(name).is_some()
}

/// Option `opt` (perhaps abbreviated) of target `target`: its full name and arity.
pub fn target_lookup(target: &str, opt: &str) -> Option<(&'static str, Arity)> {
    if target.starts_with("KUBE-") {
        return None;
    }
    lookup(find_target(target)?, opt)
}

/// Every match module and its options, for tests and documentation.
pub fn matches() -> impl Iterator<Item = (&'static str, Opts)> {
    MATCHES.iter().copied()
}

/// Every target and its options, for tests and documentation.
pub fn targets() -> impl Iterator<Item = (&'static str, Opts)> {
    TARGETS.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target_option(t: &str, o: &str) -> Option<Arity> {
        target_lookup(t, o).map(|(_, a)| a)
    }
    fn target_option_name(t: &str, o: &str) -> Option<&'static str> {
        target_lookup(t, o).map(|(n, _)| n)
    }
    fn match_option(m: &str, o: &str) -> Option<Arity> {
        option_in(match_opts(m)?, o).map(|(_, a)| a)
    }
    fn match_option_name(m: &str, o: &str) -> Option<&'static str> {
        option_in(match_opts(m)?, o).map(|(n, _)| n)
    }

    #[test]
    fn flags_and_values_are_told_apart() {
        assert_eq!(target_option("CHECKSUM", "--checksum-fill"), Some(Flag));
        assert_eq!(target_option("TCPMSS", "--clamp-mss-to-pmtu"), Some(Flag));
        assert_eq!(target_option("CONNMARK", "--save-mark"), Some(Flag));
        assert_eq!(target_option("CONNMARK", "--nfmask"), Some(One));
        assert_eq!(target_option("NFQUEUE", "--queue-bypass"), Some(Flag));
        assert_eq!(match_option("set", "--match-set"), Some(Two));
        assert_eq!(match_option("limit", "--limit"), Some(One));
        assert_eq!(match_option("limit", "--mark"), None);
        assert!(match_opts("nosuchmodule").is_none());
        assert!(is_target("CT") && !is_target("KUBE-SERVICES"));
    }

    #[test]
    fn unambiguous_prefixes_are_options_as_getopt_reads_them() {
        assert_eq!(
            target_option_name("REDIRECT", "--to-port"),
            Some("--to-ports")
        );
        assert_eq!(target_option_name("REDIRECT", "--to"), Some("--to-ports"));
        assert_eq!(target_option_name("DNAT", "--to"), Some("--to-destination"));
        // `--random` is a whole name, though `--random-fully` starts with it.
        assert_eq!(target_option_name("DNAT", "--random"), Some("--random"));
        assert_eq!(target_option_name("DNAT", "--rand"), None);
        assert_eq!(match_option_name("tcp", "--tcp-"), None);
        assert_eq!(match_option_name("tcp", "--dp"), Some("--dport"));
        assert_eq!(match_option_name("multiport", "--dport"), Some("--dports"));
    }

    #[test]
    fn tables_are_sorted_and_have_no_duplicates() {
        for table in [MATCHES, TARGETS] {
            assert!(
                table.windows(2).all(|w| w[0].0 < w[1].0),
                "a table is not sorted"
            );
            let mut names: Vec<_> = table.iter().map(|(n, _)| *n).collect();
            names.sort();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len());
            for (n, opts) in table {
                let mut o: Vec<_> = opts.iter().map(|(o, _)| *o).collect();
                o.sort();
                let b = o.len();
                o.dedup();
                assert_eq!(b, o.len(), "{n} lists an option twice");
                assert!(opts.iter().all(|(o, _)| o.starts_with("--")));
            }
        }
    }
}
