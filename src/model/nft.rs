//! What nftables adds to the model: a table's family, its base chains (hook, priority, type) and
//! its named sets and maps, and the keys rules look up in them.
//!
//! A rule of an nftables table is the same [`Rule`](super::Rule) as an iptables rule: matches and
//! a target. Its set lookups (`ip daddr @cluster-ips`, `ip saddr != { 10.0.0.0/8 }`) are
//! [`Criterion::Lookup`](super::Criterion::Lookup); its verdict maps (`… vmap @service-ips`,
//! `numgen random mod 2 vmap { 0 : goto a, 1 : goto b }`) are
//! [`TargetKind::Vmap`](super::TargetKind::Vmap). The engine evaluates both; it does not know
//! which language wrote them.

use super::criterion::{PortRange, Protocol};
use ipnet::IpNet;
use std::collections::HashMap;
use std::fmt;

/// A netfilter hook, as a base chain names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    pub fn parse(s: &str) -> Option<Hook> {
        Some(match s {
            "prerouting" => Hook::Prerouting,
            "input" => Hook::Input,
            "forward" => Hook::Forward,
            "output" => Hook::Output,
            "postrouting" => Hook::Postrouting,
            _ => return None,
        })
    }
}

/// A chain attached to a hook: `type nat hook prerouting priority dstnat; policy accept;`.
#[derive(Clone, Debug, PartialEq)]
pub struct BaseChain {
    pub chain: Box<str>,
    /// `filter`, `nat` or `route`.
    pub kind: Box<str>,
    pub hook: Hook,
    /// Lower runs first; iptables' tables sit at raw -300, mangle -150, nat -100 (dstnat) or 100
    /// (srcnat), filter 0, security 50.
    pub priority: i32,
}

/// The value of a standard priority name at a hook (`dstnat - 10` is -110).
pub fn priority_name(name: &str) -> Option<i32> {
    Some(match name {
        "raw" => -300,
        "mangle" => -150,
        "dstnat" => -100,
        "filter" => 0,
        "security" => 50,
        "srcnat" => 100,
        _ => return None,
    })
}

/// One part of a set element or a looked-up key.
#[derive(Clone, Debug, PartialEq)]
pub enum Atom {
    /// An address or a prefix (`10.0.0.0/8`); an address range is two atoms' span.
    Net(IpNet),
    /// An address range `a-b`.
    Range(std::net::IpAddr, std::net::IpAddr),
    Proto(Protocol),
    Port(PortRange),
    /// A number that is not a port or protocol (`numgen` values, marks).
    Num(u64, u64),
    /// An interface name or other string.
    Str(Box<str>),
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Net(n) if n.prefix_len() == n.max_prefix_len() => write!(f, "{}", n.addr()),
            Atom::Net(n) => write!(f, "{n}"),
            Atom::Range(a, b) => write!(f, "{a}-{b}"),
            Atom::Proto(p) => write!(f, "{p}"),
            Atom::Port(p) if p.lo == p.hi => write!(f, "{}", p.lo),
            Atom::Port(p) => write!(f, "{}-{}", p.lo, p.hi),
            Atom::Num(a, b) if a == b => write!(f, "{a}"),
            Atom::Num(a, b) => write!(f, "{a}-{b}"),
            Atom::Str(s) => write!(f, "\"{s}\""),
        }
    }
}

/// What a verdict map maps to.
#[derive(Clone, Debug, PartialEq)]
pub enum MapVerdict {
    Accept,
    Drop,
    Reject,
    Return,
    Continue,
    Jump(Box<str>),
    Goto(Box<str>),
    /// Not a verdict: the address and port a `dnat … to numgen … map { 0 : 10.0.0.1 . 80 }`
    /// rewrites to (kube-proxy ≥ 1.36 chooses endpoints this way, without endpoint chains).
    Nat(crate::model::target::NatRange),
}

impl fmt::Display for MapVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapVerdict::Accept => f.write_str("accept"),
            MapVerdict::Drop => f.write_str("drop"),
            MapVerdict::Reject => f.write_str("reject"),
            MapVerdict::Return => f.write_str("return"),
            MapVerdict::Continue => f.write_str("continue"),
            MapVerdict::Jump(c) => write!(f, "jump {c}"),
            MapVerdict::Goto(c) => write!(f, "goto {c}"),
            MapVerdict::Nat(r) => match (r.addr, r.ports) {
                (Some((a, _)), Some(p)) => write!(f, "{a} . {}", p.lo),
                _ => write!(f, "{r}"),
            },
        }
    }
}

/// An element of a set (`10.0.0.7`) or a map (`172.30.0.41 . tcp . 80 : goto service-…`).
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    pub key: Vec<Atom>,
    pub verdict: Option<MapVerdict>,
    /// The element's comment (kube-proxy names the Service there: `"ns/svc:port"`).
    pub comment: Option<Box<str>>,
    /// Source line of the element, for pointing at it.
    pub line: u32,
    /// When a dynamic set's member lapses, as `nft list` prints it (`expires 2h59m`): an
    /// affinity set's members are the clients pinned to its endpoint.
    pub expires: Option<Box<str>>,
}

/// A packet field a rule looks up, alone or concatenated (`ip daddr . meta l4proto . th dport`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    SAddr,
    DAddr,
    L4Proto,
    SPort,
    DPort,
    IifName,
    OifName,
    Mark,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::SAddr => "saddr",
            Field::DAddr => "daddr",
            Field::L4Proto => "meta l4proto",
            Field::SPort => "th sport",
            Field::DPort => "th dport",
            Field::IifName => "iifname",
            Field::OifName => "oifname",
            Field::Mark => "meta mark",
        })
    }
}

/// A named set or map, or the elements written in the rule itself.
#[derive(Clone, Debug, PartialEq)]
pub enum SetRef {
    Named(Box<str>),
    Inline(Box<[Element]>),
}

impl fmt::Display for SetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetRef::Named(n) => write!(f, "@{n}"),
            SetRef::Inline(e) => {
                let parts: Vec<String> = e
                    .iter()
                    .map(|e| {
                        let k: Vec<String> = e.key.iter().map(|a| a.to_string()).collect();
                        match &e.verdict {
                            Some(v) => format!("{} : {v}", k.join(" . ")),
                            None => k.join(" . "),
                        }
                    })
                    .collect();
                write!(f, "{{ {} }}", parts.join(", "))
            }
        }
    }
}

/// `KEY @set` or `KEY { … }` as a match: the packet's key is (or with `!=`, is not) in the set.
#[derive(Clone, Debug, PartialEq)]
pub struct Lookup {
    pub key: Vec<Field>,
    pub set: SetRef,
}

/// What a verdict map is indexed by.
#[derive(Clone, Debug, PartialEq)]
pub enum VmapKey {
    Fields(Vec<Field>),
    /// `numgen random mod N`: each value 0…N-1 is equally likely.
    Numgen {
        modulus: u32,
    },
}

/// `KEY vmap MAP`: the verdict of the element the key finds, or nothing when none does.
#[derive(Clone, Debug, PartialEq)]
pub struct Vmap {
    pub key: VmapKey,
    pub map: SetRef,
}

/// A named set or map of a table.
#[derive(Clone, Debug, Default)]
pub struct NamedSet {
    pub name: Box<str>,
    pub is_map: bool,
    /// `flags interval`, or a key type that holds prefixes.
    pub interval: bool,
    /// `flags dynamic` (kube-proxy's affinity sets): members are added by traffic.
    pub dynamic: bool,
    pub elements: Vec<Element>,
    pub comment: Option<Box<str>>,
    pub line: u32,
    /// Elements by their key as text, when every key is exact (no prefix, range or wildcard):
    /// a 50,000-Service `service-ips` map is one hashed lookup. Built by [`NamedSet::index`].
    /// The index holds each key's hash (see [`key_hash`]) and the element's place, not the key:
    /// a lookup compares with the element itself.
    pub exact: Option<hashbrown::HashTable<u32>>,
}

/// Sets are equal by what they hold; the index is how they are searched.
impl PartialEq for NamedSet {
    fn eq(&self, o: &Self) -> bool {
        (
            &self.name,
            self.is_map,
            self.interval,
            self.dynamic,
            &self.elements,
            &self.comment,
            self.line,
        ) == (
            &o.name,
            o.is_map,
            o.interval,
            o.dynamic,
            &o.elements,
            &o.comment,
            o.line,
        )
    }
}

/// The hash of a key as [`exact_key`] writes it.
fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    static HASHER: std::sync::OnceLock<hashbrown::DefaultHashBuilder> = std::sync::OnceLock::new();
    HASHER.get_or_init(Default::default).hash_one(key)
}

/// A key as one string (`172.30.0.41 . tcp . 80`), when every atom is one value.
fn exact_key(key: &[Atom]) -> Option<String> {
    let mut s = String::new();
    for (i, a) in key.iter().enumerate() {
        if i > 0 {
            s.push_str(" . ");
        }
        match a {
            Atom::Net(n) if n.prefix_len() == n.max_prefix_len() => {
                s.push_str(&n.addr().to_string())
            }
            Atom::Proto(p) => s.push_str(&p.to_string()),
            Atom::Port(p) if p.lo == p.hi => s.push_str(&p.lo.to_string()),
            Atom::Num(a, b) if a == b => s.push_str(&a.to_string()),
            Atom::Str(x) if !x.ends_with('*') => {
                s.push('"');
                s.push_str(x);
                s.push('"');
            }
            _ => return None,
        }
    }
    Some(s)
}

impl NamedSet {
    /// Builds the hashed index when every element's key is exact.
    pub fn index(&mut self) {
        // A few elements are as quickly searched one by one.
        if self.elements.len() < 16 {
            self.exact = None;
            return;
        }
        let mut map = hashbrown::HashTable::with_capacity(self.elements.len());
        let elements = &self.elements;
        let rehash = |i: &u32| key_hash(&exact_key(&elements[*i as usize].key).unwrap_or_default());
        for (i, e) in elements.iter().enumerate() {
            let Some(k) = exact_key(&e.key) else {
                self.exact = None;
                return;
            };
            let same = |j: &u32| exact_key(&elements[*j as usize].key).as_deref() == Some(&*k);
            // The first element of a key is the one a lookup finds.
            if let hashbrown::hash_table::Entry::Vacant(v) = map.entry(key_hash(&k), same, rehash) {
                v.insert(i as u32);
            }
        }
        self.exact = Some(map);
    }

    /// The first element whose key holds the packet's key.
    pub fn lookup(&self, key: &[Atom]) -> Option<&Element> {
        match &self.exact {
            Some(map) => {
                let k = exact_key(key)?;
                map.find(key_hash(&k), |&i| {
                    exact_key(&self.elements[i as usize].key).as_deref() == Some(&*k)
                })
                .map(|&i| &self.elements[i as usize])
            }
            None => find(&self.elements, key),
        }
    }
}

/// The nftables side of a table: its family, base chains and sets.
#[derive(Clone, Debug, Default)]
pub struct NftTable {
    /// `ip`, `ip6`, `inet`…
    pub family: Box<str>,
    pub bases: Vec<BaseChain>,
    pub sets: HashMap<Box<str>, NamedSet>,
    pub comment: Option<Box<str>>,
}

impl NftTable {
    pub fn base(&self, chain: &str) -> Option<&BaseChain> {
        self.bases.iter().find(|b| &*b.chain == chain)
    }
}

/// Whether one atom of a packet's key falls in an element's atom.
fn atom_holds(elem: &Atom, packet: &Atom) -> bool {
    match (elem, packet) {
        (Atom::Net(n), Atom::Net(p)) => n.contains(&p.addr()),
        (Atom::Range(lo, hi), Atom::Net(p)) => *lo <= p.addr() && p.addr() <= *hi,
        (Atom::Proto(a), Atom::Proto(b)) => a == b,
        (Atom::Port(r), Atom::Port(p)) => r.lo <= p.lo && p.lo <= r.hi,
        (Atom::Num(lo, hi), Atom::Num(v, _)) => lo <= v && v <= hi,
        (Atom::Num(lo, hi), Atom::Port(p)) => *lo <= p.lo as u64 && p.lo as u64 <= *hi,
        (Atom::Port(r), Atom::Num(v, _)) => r.lo as u64 <= *v && *v <= r.hi as u64,
        (Atom::Num(lo, hi), Atom::Proto(p)) => {
            let n = proto_number(*p) as u64;
            *lo <= n && n <= *hi
        }
        (Atom::Str(a), Atom::Str(b)) => glob(a, b),
        _ => false,
    }
}

fn proto_number(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
        Protocol::Icmp => 1,
        Protocol::Icmpv6 => 58,
        Protocol::All => 0,
        Protocol::Number(n) => n,
    }
}

/// Interface names match exactly, or by prefix when the pattern ends in `*`.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// The first element whose key holds the packet's key.
pub fn find<'a>(elements: &'a [Element], key: &[Atom]) -> Option<&'a Element> {
    elements
        .iter()
        .find(|e| e.key.len() == key.len() && e.key.iter().zip(key).all(|(a, b)| atom_holds(a, b)))
}
