//! Evaluates a rule's criteria against the packet as it is at that point.
//!
//! Each criterion is true, false, or unknown (the engine cannot know: an ipset's contents, an
//! interface the user did not name, a module it does not model). Unknown is never guessed away and
//! never turned into a probability: it is a [`Fact`] the answer depends on. The engine follows both
//! worlds, each with the whole share, and labels every outcome with the conditions it took.

use super::state::PacketState;
use crate::model::criterion::*;
use crate::model::nft::{Atom, Field, Lookup, SetRef};
use crate::model::Rule;
use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq)]
pub enum Tri {
    Yes,
    No,
    Unknown(Fact),
}

/// A question about the packet or the node that the input cannot answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    /// Same question, same key: a second rule asking it is decided by the first answer.
    pub key: String,
    /// The question as a statement: "the packet arrives on `docker0`".
    pub text: String,
}

impl Fact {
    fn ask(key: impl Into<String>, text: impl Into<String>) -> Tri {
        Tri::Unknown(Fact {
            key: key.into(),
            text: text.into(),
        })
    }
}

/// Where in the kernel's path a rule is evaluated; decides which interfaces exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

pub struct Ctx<'a> {
    pub hook: HookKind,
    pub local: &'a [IpNet],
    /// The table whose rules are evaluated: in raw, conntrack has not yet seen the packet.
    pub table: &'a str,
    /// The table's nftables sets, for lookups.
    pub sets: Option<&'a crate::model::nft::NftTable>,
}

impl Ctx<'_> {
    pub fn is_local(&self, ip: IpAddr) -> bool {
        self.local.iter().any(|n| n.contains(&ip))
    }
}

fn contains(net: &IpNet, ip: IpAddr) -> bool {
    net.contains(&ip)
}

fn is_multicast(ip: IpAddr) -> bool {
    ip.is_multicast()
}

fn addr_kind(ctx: &Ctx, ip: IpAddr, kind: AddrKind) -> Tri {
    let local = ctx.is_local(ip);
    let bcast = matches!(ip, IpAddr::V4(a) if a.is_broadcast());
    match kind {
        AddrKind::Local => bool_tri(local),
        AddrKind::Multicast => bool_tri(is_multicast(ip)),
        AddrKind::Broadcast => bool_tri(bcast),
        AddrKind::Unicast => bool_tri(!local && !is_multicast(ip) && !bcast),
        other => Fact::ask(
            format!("addrtype {ip} {}", other.name()),
            format!(
                "the node's routes give {ip} address type {} (not in a rule dump)",
                other.name()
            ),
        ),
    }
}

fn bool_tri(b: bool) -> Tri {
    if b {
        Tri::Yes
    } else {
        Tri::No
    }
}

fn iface(ctx: &Ctx, given: &Option<String>, i: &Iface, dir: &str) -> Tri {
    let exists = match dir {
        "in" => matches!(
            ctx.hook,
            HookKind::Prerouting | HookKind::Input | HookKind::Forward
        ),
        _ => matches!(
            ctx.hook,
            HookKind::Output | HookKind::Forward | HookKind::Postrouting
        ),
    };
    if !exists {
        return Tri::No;
    }
    match given {
        Some(name) => bool_tri(i.matches(name)),
        None => {
            let what = if i.0.ends_with('+') {
                format!("an interface matching `{}`", i.0)
            } else {
                format!("`{}`", i.0)
            };
            let verb = if dir == "in" {
                "arrives on"
            } else {
                "leaves by"
            };
            Fact::ask(
                format!("{dir}-iface {}", i.0),
                format!("the packet {verb} {what}"),
            )
        }
    }
}

/// The packet's value of each field of a key (`ip daddr . meta l4proto . th dport`); None when the
/// packet has no such field (a port of an ICMP packet), or a fact when the input cannot tell.
pub fn key_of(p: &PacketState, fields: &[Field]) -> Result<Option<Vec<Atom>>, Tri> {
    let mut key = Vec::with_capacity(fields.len());
    for f in fields {
        key.push(match f {
            Field::SAddr => Atom::Net(IpNet::from(p.src)),
            Field::DAddr => Atom::Net(IpNet::from(p.dst)),
            Field::L4Proto => Atom::Proto(p.proto),
            Field::DPort | Field::SPort if !p.proto.has_ports() => return Ok(None),
            Field::DPort => Atom::Port(PortRange::single(p.dport)),
            Field::SPort => Atom::Port(PortRange::single(p.sport)),
            Field::Mark => Atom::Num(p.mark as u64, p.mark as u64),
            Field::IifName | Field::OifName => {
                let i = if *f == Field::IifName {
                    &p.in_iface
                } else {
                    &p.out_iface
                };
                match i {
                    Some(i) => Atom::Str(i.as_str().into()),
                    None => return Ok(None),
                }
            }
        });
    }
    Ok(Some(key))
}

/// `KEY @set` / `KEY { … }`: whether the packet's key is in the set.
fn lookup(ctx: &Ctx, p: &PacketState, l: &Lookup) -> Tri {
    let key = match key_of(p, &l.key) {
        Ok(Some(k)) => k,
        Ok(None) => return Tri::No,
        Err(t) => return t,
    };
    let found = match &l.set {
        SetRef::Inline(e) => crate::model::nft::find(e, &key).is_some(),
        SetRef::Named(n) => match ctx.sets.and_then(|t| t.sets.get(n)) {
            Some(s) => s.lookup(&key).is_some(),
            None => {
                return Fact::ask(
                    format!("set {n}"),
                    format!("set `@{n}` holds the packet's key (the set is not in the input)"),
                )
            }
        },
    };
    bool_tri(found)
}

/// Evaluates one criterion (without its negation). Statistic criteria are handled by the caller.
pub fn criterion(ctx: &Ctx, p: &PacketState, c: &Criterion) -> Tri {
    match c {
        Criterion::Source(n) => bool_tri(contains(n, p.src)),
        Criterion::Destination(n) => bool_tri(contains(n, p.dst)),
        Criterion::Masked(m) => {
            let a = if m.dir == Dir::Src { p.src } else { p.dst };
            bool_tri(match (a, &m.addr, &m.mask) {
                (IpAddr::V4(a), IpAddr::V4(v), IpAddr::V4(m)) => {
                    u32::from(a) & u32::from(*m) == u32::from(*v)
                }
                (IpAddr::V6(a), IpAddr::V6(v), IpAddr::V6(m)) => {
                    u128::from(a) & u128::from(*m) == u128::from(*v)
                }
                _ => false,
            })
        }
        Criterion::Protocol(pr) => bool_tri(*pr == Protocol::All || *pr == p.proto),
        Criterion::InIface(i) => iface(ctx, &p.in_iface, i, "in"),
        Criterion::OutIface(i) => iface(ctx, &p.out_iface, i, "out"),
        // A new connection's first packet is never a non-first fragment.
        Criterion::Fragment => Tri::No,
        Criterion::Port { dir, range } => {
            if !p.proto.has_ports() {
                return Tri::No;
            }
            let port = if *dir == Dir::Src { p.sport } else { p.dport };
            bool_tri(range.contains(port))
        }
        Criterion::Multiport { dir, ports } => {
            if !p.proto.has_ports() {
                return Tri::No;
            }
            let hit = |x: u16| ports.iter().any(|r| r.contains(x));
            bool_tri(match dir {
                MultiDir::Src => hit(p.sport),
                MultiDir::Dst => hit(p.dport),
                MultiDir::Either => hit(p.sport) || hit(p.dport),
            })
        }
        Criterion::TcpFlags { mask, comp } => {
            if p.proto != Protocol::Tcp {
                return Tri::No;
            }
            const SYN: u8 = 0x02;
            bool_tri(SYN & mask == *comp)
        }
        Criterion::AddrType { dir, kinds } => {
            let ip = if *dir == Dir::Src { p.src } else { p.dst };
            let mut unknown = None;
            for k in kinds {
                match addr_kind(ctx, ip, *k) {
                    Tri::Yes => return Tri::Yes,
                    Tri::Unknown(r) => unknown = Some(r),
                    Tri::No => {}
                }
            }
            unknown.map(Tri::Unknown).unwrap_or(Tri::No)
        }
        Criterion::AddrTypeLimitIface { dir } => Fact::ask(
            format!("addrtype limit-iface {dir:?}"),
            "the address belongs to the interface the packet uses (`--limit-iface-in/out`; the dump lists no addresses)",
        ),
        Criterion::Mark { value, mask } => bool_tri(p.mark & mask == *value),
        // A new connection's conntrack mark starts at 0.
        Criterion::ConnMark { value, mask } => bool_tri(p.ctmark & mask == *value),
        // raw runs before conntrack: a packet there has no entry yet, which reads as INVALID.
        Criterion::CtState { states, .. } if ctx.table == "raw" => {
            bool_tri(states.iter().any(|s| match s {
                CtState::Untracked => p.untracked,
                CtState::Invalid => !p.untracked,
                _ => false,
            }))
        }
        Criterion::CtState { states, .. } => bool_tri(states.iter().any(|s| match s {
            CtState::New => !p.untracked,
            CtState::Untracked => p.untracked,
            CtState::Dnat => p.dnat.is_some(),
            CtState::Snat => p.masquerade,
            _ => false,
        })),
        Criterion::Statistic(_) => Tri::Yes,
        Criterion::Recent(r) => match r.mode {
            // The first packet of a client has no entry yet: only --set matches (and records it),
            // and a check of a list this packet was just added to finds it (one hit, just now).
            RecentMode::Set => Tri::Yes,
            RecentMode::Rcheck | RecentMode::Update | RecentMode::Remove => bool_tri(
                p.recent.iter().any(|n| **n == *r.name) && r.hitcount.is_none_or(|h| h <= 1),
            ),
        },
        Criterion::Comment(_) => Tri::Yes,
        Criterion::Set(m) => Fact::ask(
            format!("set {} {}", m.name, m.flags),
            format!(
                "ipset `{}` holds the packet's {} (members are not in a rule dump)",
                m.name, m.flags
            ),
        ),
        Criterion::Physdev(_) => {
            let spec = spec_of(c);
            Fact::ask(
                format!("physdev {spec}"),
                format!("the packet crossed a bridge port as `{spec}` says"),
            )
        }
        // Per rule: each hides its own fields (decided in `rule`, which knows the line).
        Criterion::Hidden(why) => Fact::ask(format!("hidden {why}"), why.to_string()),
        Criterion::Lookup(l) => lookup(ctx, p, l),
        Criterion::Other(o) => match &*o.module {
            // nfacct only counts; it always matches.
            "nfacct" => Tri::Yes,
            _ => {
                let spec = spec_of(c);
                Fact::ask(
                    spec.clone(),
                    format!("`{spec}` matches (not decidable from rules)"),
                )
            }
        },
    }
}

/// The criterion in iptables syntax, without its negation: the same test, however negated.
fn spec_of(c: &Criterion) -> String {
    let m = Match {
        negated: false,
        continues: false,
        criterion: c.clone(),
        span: crate::model::Span::NONE,
    };
    crate::model::print::criterion(&m, None)
}

/// How a rule matches: not at all, surely, with a probability, or unknowably.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleMatch {
    No,
    /// Matches with this probability (1.0 when no statistic criterion).
    Yes(f64),
    /// Whether it matches depends on this fact (the first undecided one); the engine follows both
    /// answers and evaluates the rule again in each.
    Maybe(Fact),
}

/// What a branch already took as given: fact key → whether it holds.
pub trait Given {
    fn given(&self, key: &str) -> Option<bool>;
    /// An interface the branch took the packet to use, by name (`in`/`out`), if a concrete one.
    fn iface(&self, dir: &str) -> Option<&str>;
}

/// Decides a fact from what the branch took as given: the same question, or an interface named
/// outright (`-i docker0` held, so `-i cni0` does not).
fn decide(g: &dyn Given, c: &Criterion, fact: &Fact) -> Option<bool> {
    if let Some(v) = g.given(&fact.key) {
        return Some(v);
    }
    let (dir, i) = match c {
        Criterion::InIface(i) => ("in", i),
        Criterion::OutIface(i) => ("out", i),
        _ => return None,
    };
    g.iface(dir).map(|name| i.matches(name))
}

pub fn rule(ctx: &Ctx, p: &PacketState, g: &dyn Given, r: &Rule) -> RuleMatch {
    if r.invalid {
        if let Some(v) = g.given(&format!("invalid {}", r.line)) {
            return if v {
                RuleMatch::Yes(1.0)
            } else {
                RuleMatch::No
            };
        }
        return RuleMatch::Maybe(Fact {
            key: format!("invalid {}", r.line),
            text: format!(
                "the rule at line {} (which could not be read) matches",
                r.line
            ),
        });
    }
    let mut prob = 1.0;
    let mut unknown: Option<Fact> = None;
    for m in r.matches.iter() {
        if let Criterion::Statistic(s) = &m.criterion {
            let q = s.probability();
            prob *= if m.negated { 1.0 - q } else { q };
            continue;
        }
        let mut t = criterion(ctx, p, &m.criterion);
        if let Tri::Unknown(f) = &mut t {
            if matches!(m.criterion, Criterion::Hidden(_)) {
                // Each hidden field is its own question.
                f.key = format!("{} at line {}", f.key, r.line);
            }
            if let Some(v) = decide(g, &m.criterion, f) {
                t = bool_tri(v);
            }
        }
        match t {
            Tri::Yes if m.negated => return RuleMatch::No,
            Tri::No if !m.negated => return RuleMatch::No,
            Tri::Unknown(f) => unknown = unknown.or(Some(f)),
            _ => {}
        }
    }
    if prob == 0.0 {
        return RuleMatch::No;
    }
    match unknown {
        Some(f) => RuleMatch::Maybe(f),
        None => RuleMatch::Yes(prob),
    }
}
