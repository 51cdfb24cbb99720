//! Evaluates a rule's criteria against the packet as it is at that point.
//!
//! Each criterion is true, false, or unknown (the engine cannot know: an ipset's contents, an
//! interface the user did not name, a module it does not model). Unknown is never guessed away: the
//! rule "may match", and the engine follows both ways and marks the outcomes approximate.

use super::state::PacketState;
use crate::model::criterion::*;
use crate::model::Rule;
use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq)]
pub enum Tri {
    Yes,
    No,
    Unknown(String),
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
        other => Tri::Unknown(format!(
            "address type {} depends on the node's routes",
            other.name()
        )),
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
        None => Tri::Unknown(format!(
            "the {dir}put interface is not known (give --{dir}-iface)"
        )),
    }
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
        Criterion::AddrTypeLimitIface { .. } => Tri::Unknown(
            "--limit-iface-in/out limits LOCAL to one interface's addresses, which the dump does not list"
                .into(),
        ),
        Criterion::Mark { value, mask } => bool_tri(p.mark & mask == *value),
        // A new connection's conntrack mark starts at 0.
        Criterion::ConnMark { value, mask } => bool_tri(p.ctmark & mask == *value),
        Criterion::CtState { states, .. } => bool_tri(states.iter().any(|s| match s {
            CtState::New => !p.untracked,
            CtState::Untracked => p.untracked,
            CtState::Dnat => p.dnat.is_some(),
            CtState::Snat => p.masquerade,
            _ => false,
        })),
        Criterion::Statistic(_) => Tri::Yes,
        Criterion::Recent(r) => match r.mode {
            // The first packet of a client has no entry yet: only --set matches (and records it).
            RecentMode::Set => Tri::Yes,
            RecentMode::Rcheck | RecentMode::Update | RecentMode::Remove => Tri::No,
        },
        Criterion::Comment(_) => Tri::Yes,
        Criterion::Set(m) => Tri::Unknown(format!(
            "ipset `{}`'s members are not in an iptables dump",
            m.name
        )),
        Criterion::Physdev(_) => Tri::Unknown(
            "whether the packet crossed a bridge (physdev) is not known".into(),
        ),
        Criterion::Hidden(why) => Tri::Unknown(why.to_string()),
        Criterion::Other(o) => match &*o.module {
            // nfacct only counts; it always matches.
            "nfacct" => Tri::Yes,
            module => Tri::Unknown(if o.option.is_empty() {
                format!("match `-m {module}` is not modelled")
            } else {
                format!("match `-m {module} {}` is not modelled", o.option)
            }),
        },
    }
}

/// How a rule matches: not at all, surely, with a probability, or unknowably.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleMatch {
    No,
    /// Matches with this probability (1.0 when no statistic criterion).
    Yes(f64),
    /// Some criterion cannot be decided; the rest match with this probability.
    Maybe(f64, String),
}

pub fn rule(ctx: &Ctx, p: &PacketState, r: &Rule) -> RuleMatch {
    if r.invalid {
        return RuleMatch::Maybe(1.0, "the rule could not be parsed".into());
    }
    let mut prob = 1.0;
    let mut unknown: Option<String> = None;
    for m in r.matches.iter() {
        if let Criterion::Statistic(s) = &m.criterion {
            let q = s.probability();
            prob *= if m.negated { 1.0 - q } else { q };
            continue;
        }
        match criterion(ctx, p, &m.criterion) {
            Tri::Yes if m.negated => return RuleMatch::No,
            Tri::No if !m.negated => return RuleMatch::No,
            Tri::Unknown(why) => unknown = unknown.or(Some(why)),
            _ => {}
        }
    }
    if prob == 0.0 {
        return RuleMatch::No;
    }
    match unknown {
        Some(why) => RuleMatch::Maybe(prob, why),
        None => RuleMatch::Yes(prob),
    }
}
