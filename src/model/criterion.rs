//! Match criteria: the conditions of a rule, one per option.
//!
//! iptables groups options under match modules (`-m tcp --dport 80`); the model flattens them into one
//! list of [`Match`]es, each knowing its module, because the engine evaluates options, not modules, and
//! `!` negates a single option. Options kptrace cannot evaluate are kept verbatim as
//! [`Criterion::Other`], never dropped, so the engine can say which rule made an answer approximate.

use super::source::Span;
use ipnet::IpNet;
use std::fmt;

/// One condition of a rule, possibly negated with `!`.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    pub negated: bool,
    /// The option belongs to the same `-m` as the criterion before it, so it is printed without
    /// repeating `-m` (`-m physdev --physdev-in eth0 --physdev-is-bridged` is one match).
    pub continues: bool,
    pub criterion: Criterion,
    /// Where the option (from its `!` or `--option` to its last value) stands in the source.
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmpv6,
    All,
    Number(u8),
}

/// Protocol names iptables takes from /etc/protocols (and its own aliases), for `-p NAME`.
const PROTOCOL_NAMES: &[(&str, u8)] = &[
    ("hopopt", 0),
    ("ip", 0),
    ("igmp", 2),
    ("ggp", 3),
    ("ipencap", 4),
    ("ipv4", 4),
    ("st", 5),
    ("egp", 8),
    ("igp", 9),
    ("pup", 12),
    ("hmp", 20),
    ("xns-idp", 22),
    ("rdp", 27),
    ("iso-tp4", 29),
    ("dccp", 33),
    ("xtp", 36),
    ("ddp", 37),
    ("idpr-cmtp", 38),
    ("ipv6", 41),
    ("ipv6-route", 43),
    ("ipv6-frag", 44),
    ("idrp", 45),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("skip", 57),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("rspf", 73),
    ("vmtp", 81),
    ("eigrp", 88),
    ("ospf", 89),
    ("ax.25", 93),
    ("ipip", 94),
    ("etherip", 97),
    ("encap", 98),
    ("pim", 103),
    ("ipcomp", 108),
    ("vrrp", 112),
    ("l2tp", 115),
    ("isis", 124),
    ("fc", 133),
    ("mh", 135),
    ("ipv6-mh", 135),
    ("mobility-header", 135),
    ("udplite", 136),
    ("mpls-in-ip", 137),
    ("manet", 138),
    ("hip", 139),
    ("shim6", 140),
    ("wesp", 141),
    ("rohc", 142),
    ("ethernet", 143),
];

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        Some(match s.to_ascii_lowercase().as_str() {
            "tcp" | "6" => Protocol::Tcp,
            "udp" | "17" => Protocol::Udp,
            "sctp" | "132" => Protocol::Sctp,
            "icmp" | "1" => Protocol::Icmp,
            "icmpv6" | "ipv6-icmp" | "58" => Protocol::Icmpv6,
            "all" | "0" => Protocol::All,
            other => Protocol::Number(match other.parse() {
                Ok(n) => n,
                Err(_) => PROTOCOL_NAMES.iter().find(|(n, _)| *n == other)?.1,
            }),
        })
    }

    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp | Protocol::Sctp)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Tcp => f.write_str("tcp"),
            Protocol::Udp => f.write_str("udp"),
            Protocol::Sctp => f.write_str("sctp"),
            Protocol::Icmp => f.write_str("icmp"),
            Protocol::Icmpv6 => f.write_str("ipv6-icmp"),
            Protocol::All => f.write_str("all"),
            Protocol::Number(n) => write!(f, "{n}"),
        }
    }
}

/// An interface name as iptables matches it: a trailing `+` matches any name with that prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Iface(pub Box<str>);

impl Iface {
    pub fn matches(&self, name: &str) -> bool {
        match self.0.strip_suffix('+') {
            Some(prefix) => name.starts_with(prefix),
            None => *self.0 == *name,
        }
    }
}

/// An inclusive port range; a single port has `lo == hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn single(p: u16) -> Self {
        PortRange { lo: p, hi: p }
    }
    pub fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}:{}", self.lo, self.hi)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    Src,
    Dst,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MultiDir {
    Src,
    Dst,
    Either,
}

/// Address types of `-m addrtype` (route types in the kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrKind {
    Unspec,
    Unicast,
    Local,
    Broadcast,
    Anycast,
    Multicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
    Nat,
    Xresolve,
}

impl AddrKind {
    pub const ALL: [(&'static str, AddrKind); 12] = [
        ("UNSPEC", AddrKind::Unspec),
        ("UNICAST", AddrKind::Unicast),
        ("LOCAL", AddrKind::Local),
        ("BROADCAST", AddrKind::Broadcast),
        ("ANYCAST", AddrKind::Anycast),
        ("MULTICAST", AddrKind::Multicast),
        ("BLACKHOLE", AddrKind::Blackhole),
        ("UNREACHABLE", AddrKind::Unreachable),
        ("PROHIBIT", AddrKind::Prohibit),
        ("THROW", AddrKind::Throw),
        ("NAT", AddrKind::Nat),
        ("XRESOLVE", AddrKind::Xresolve),
    ];

    pub fn parse(s: &str) -> Option<AddrKind> {
        Self::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|&(_, k)| k)
    }

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, k)| *k == self).unwrap().0
    }
}

/// Connection-tracking states of `-m conntrack --ctstate` / `-m state --state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtState {
    New,
    Established,
    Related,
    Invalid,
    Untracked,
    Snat,
    Dnat,
}

impl CtState {
    pub fn parse(s: &str) -> Option<CtState> {
        Some(match s.to_ascii_uppercase().as_str() {
            "NEW" => CtState::New,
            "ESTABLISHED" => CtState::Established,
            "RELATED" => CtState::Related,
            "INVALID" => CtState::Invalid,
            "UNTRACKED" => CtState::Untracked,
            "SNAT" => CtState::Snat,
            "DNAT" => CtState::Dnat,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            CtState::New => "NEW",
            CtState::Established => "ESTABLISHED",
            CtState::Related => "RELATED",
            CtState::Invalid => "INVALID",
            CtState::Untracked => "UNTRACKED",
            CtState::Snat => "SNAT",
            CtState::Dnat => "DNAT",
        }
    }
}

/// `-m statistic`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Statistic {
    /// `--mode random --probability p`, stored as the kernel stores it: `lround(p · 2³¹)`.
    Random { threshold: u32 },
    /// `--mode nth --every n --packet p`.
    Nth { every: u32, packet: u32 },
}

pub const PROBABILITY_SCALE: f64 = 2147483648.0; // 2^31

impl Statistic {
    /// The probability the kernel actually uses (`threshold / 2³¹`).
    pub fn probability(&self) -> f64 {
        match *self {
            Statistic::Random { threshold } => threshold as f64 / PROBABILITY_SCALE,
            Statistic::Nth { every, .. } => 1.0 / every.max(1) as f64,
        }
    }

    /// How iptables-save prints `p` (11 decimals of the stored threshold).
    pub fn saved_probability(threshold: u32) -> String {
        format!("{:.11}", threshold as f64 / PROBABILITY_SCALE)
    }

    /// iptables converts the user's probability exactly so: `lround(0x80000000 * p)`.
    pub fn threshold_of(p: f64) -> u32 {
        (p * PROBABILITY_SCALE).round() as u32
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecentMode {
    Set,
    Rcheck,
    Update,
    Remove,
}

/// `-m recent`: kube-proxy's session affinity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Recent {
    pub name: Box<str>,
    pub mode: RecentMode,
    pub seconds: Option<u32>,
    pub hitcount: Option<u32>,
    pub reap: bool,
    pub rttl: bool,
    /// `--rdest` (the list is keyed by destination); default `--rsource`.
    pub rdest: bool,
    pub mask: Option<Box<str>>,
}

/// `-m physdev` (bridged traffic).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Physdev {
    In(Iface),
    Out(Iface),
    IsIn,
    IsOut,
    IsBridged,
}

/// An address under a netmask whose ones are not contiguous (`-s 10.0.0.7/255.0.0.255`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Masked {
    pub dir: Dir,
    /// The address with the bits outside the mask cleared.
    pub addr: std::net::IpAddr,
    pub mask: std::net::IpAddr,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Criterion {
    Source(IpNet),
    Destination(IpNet),
    /// `-s`/`-d` with a netmask whose ones are not contiguous (`10.0.0.7/255.0.0.255`): the address
    /// (bits outside the mask cleared) and the mask.
    /// Boxed: rare, and two addresses would make every criterion of a large dump larger.
    Masked(Box<Masked>),
    Protocol(Protocol),
    InIface(Iface),
    OutIface(Iface),
    Fragment,
    /// `--sport`/`--dport` of the tcp/udp/sctp modules.
    Port {
        dir: Dir,
        range: PortRange,
    },
    Multiport {
        dir: MultiDir,
        ports: Vec<PortRange>,
    },
    /// `--tcp-flags MASK COMP` (bit order FIN SYN RST PSH ACK URG ECE CWR); `--syn` is stored as this.
    TcpFlags {
        mask: u8,
        comp: u8,
    },
    AddrType {
        dir: Dir,
        kinds: Vec<AddrKind>,
    },
    AddrTypeLimitIface {
        dir: Dir,
    },
    Mark {
        value: u32,
        mask: u32,
    },
    ConnMark {
        value: u32,
        mask: u32,
    },
    /// `-m conntrack --ctstate` (or `state = true` for `-m state --state`).
    CtState {
        states: Vec<CtState>,
        state_module: bool,
    },
    Statistic(Statistic),
    /// Boxed, like the other rare and large criteria, so that a `Match` stays small.
    Recent(Box<Recent>),
    Comment(Box<str>),
    Set(Box<SetMatch>),
    Physdev(Physdev),
    /// A field the input form does not show (interfaces in a listing printed without `-v`): the
    /// rule may or may not carry it, so the tracer cannot decide the rule. Holds the reason.
    Hidden(Box<str>),
    /// An nftables set lookup: the packet's key is in the set (`ip daddr @cluster-ips`).
    Lookup(Box<super::nft::Lookup>),
    /// An option kptrace does not model, kept verbatim: module name, option, values.
    Other(Box<OtherMatch>),
}

/// `-m set --match-set NAME FLAGS`.
#[derive(Clone, Debug, PartialEq)]
pub struct SetMatch {
    pub name: Box<str>,
    pub flags: Box<str>,
}

/// An option kptrace does not model, kept verbatim: module name, option, values.
#[derive(Clone, Debug, PartialEq)]
pub struct OtherMatch {
    pub module: Box<str>,
    pub option: Box<str>,
    pub args: Vec<Box<str>>,
}

impl Criterion {
    /// The match module that carries this option, if any (basic options have none).
    pub fn module(&self) -> Option<&str> {
        Some(match self {
            Criterion::Source(_)
            | Criterion::Destination(_)
            | Criterion::Masked(_)
            | Criterion::Protocol(_)
            | Criterion::InIface(_)
            | Criterion::OutIface(_)
            | Criterion::Fragment
            | Criterion::Hidden(_) => return None,
            Criterion::Port { .. } | Criterion::TcpFlags { .. } => return None, // the protocol's module
            Criterion::Multiport { .. } => "multiport",
            Criterion::AddrType { .. } | Criterion::AddrTypeLimitIface { .. } => "addrtype",
            Criterion::Mark { .. } => "mark",
            Criterion::ConnMark { .. } => "connmark",
            Criterion::CtState { state_module, .. } => {
                if *state_module {
                    "state"
                } else {
                    "conntrack"
                }
            }
            Criterion::Statistic(_) => "statistic",
            Criterion::Recent(_) => "recent",
            Criterion::Comment(_) => "comment",
            Criterion::Set(_) => "set",
            Criterion::Physdev(_) => "physdev",
            Criterion::Lookup(_) => "nft lookup",
            Criterion::Other(o) => &o.module,
        })
    }
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn a_match_stays_small() {
        // A large dump holds millions of them.
        let m = std::mem::size_of::<super::Match>();
        let c = std::mem::size_of::<super::Criterion>();
        eprintln!("Match {m} bytes, Criterion {c} bytes");
        assert!(m <= 48, "Match is {m} bytes");
    }
}
