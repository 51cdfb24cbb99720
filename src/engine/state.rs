//! What the engine carries along one branch: the packet as rules have changed it, the share of
//! traffic the branch stands for, and the evidence (path, deciding rules, reasons for doubt).

use crate::model::Protocol;
use serde::Serialize;
use std::net::IpAddr;

/// The packet, as the rules so far have rewritten and marked it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PacketState {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Protocol,
    pub sport: u16,
    pub dport: u16,
    pub in_iface: Option<String>,
    pub out_iface: Option<String>,
    pub mark: u32,
    pub ctmark: u32,
    /// `ip:port` after DNAT/REDIRECT.
    pub dnat: Option<String>,
    /// Source rewritten in POSTROUTING (MASQUERADE or SNAT).
    pub masquerade: bool,
    pub untracked: bool,
    /// `-m recent` lists this packet was added to on its way (`--set`).
    pub recent: Vec<Box<str>>,
    /// The counter of the one nth rule the engine follows exactly (see `Engine::trace`).
    pub nth_counter: Option<u32>,
}

impl PacketState {
    /// The first packet of a connection, before any rule has touched it.
    pub fn new(pkt: &super::Packet) -> PacketState {
        PacketState {
            src: pkt.src,
            dst: pkt.dst,
            proto: pkt.proto,
            sport: pkt.sport,
            dport: pkt.dport,
            in_iface: pkt.in_iface.clone(),
            out_iface: pkt.out_iface.clone(),
            mark: pkt.mark,
            ctmark: 0,
            dnat: None,
            masquerade: false,
            untracked: false,
            recent: Vec::new(),
            nth_counter: None,
        }
    }
}

/// A rule, as output names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct RuleRef {
    pub table: String,
    pub chain: String,
    /// 1-based line in the input; null for a rule kptrace assumed.
    #[serde(serialize_with = "line_or_null")]
    pub line: u32,
}

fn line_or_null<S: serde::Serializer>(line: &u32, s: S) -> Result<S::Ok, S::Error> {
    if *line == 0 {
        s.serialize_none()
    } else {
        s.serialize_u32(*line)
    }
}

/// One step of a path: a rule that matched (or a policy that applied) and what it did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub table: String,
    pub chain: String,
    #[serde(serialize_with = "line_or_null")]
    pub line: u32,
    /// What happened: `jump KUBE-SVC-…`, `DNAT 10.1.2.3:80`, `MARK or 0x4000`, `policy ACCEPT`…
    pub action: String,
    /// For a statistic rule: the probability of the way taken at this rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// The rule was assumed (kube-proxy's standard hooks), not read.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub assumed: bool,
}

/// Something the input cannot decide (an interface not given, an ipset's members, a rate limit, a
/// rule a paste could not show) and that an outcome depends on. An outcome's share holds in every
/// world where all its conditions hold; it is never multiplied by a guess.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Condition {
    /// Stable identity of the question; outcomes asking the same question share it.
    pub fact: String,
    /// The question as a statement: "the packet arrives on `docker0`".
    pub text: String,
    /// Whether this outcome is the one where the statement is true.
    pub holds: bool,
    /// The first rule that asked.
    pub rule: RuleRef,
}

impl Condition {
    /// "if the packet arrives on `docker0`" / "unless the packet arrives on `docker0`".
    pub fn phrase(&self) -> String {
        format!("{} {}", if self.holds { "if" } else { "unless" }, self.text)
    }
}

/// Whether two sorted condition lists ask the same questions with the same answers.
pub fn same_answers(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.fact == y.fact && x.holds == y.holds)
}

/// The one question two sorted condition lists answer differently, every other answer being the
/// same: two branches (or outcomes) with the same future and share that differ only there do not
/// depend on that question.
pub fn differs_in_one(a: &[Condition], b: &[Condition]) -> Option<usize> {
    if a.len() != b.len() {
        return None;
    }
    let mut at = None;
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x.fact != y.fact {
            return None;
        }
        if x.holds != y.holds {
            if at.is_some() {
                return None;
            }
            at = Some(i);
        }
    }
    at
}

/// Whether conditions hold in `world`: one answer per question of `facts` (sorted), bit `i` for
/// `facts[i]`. A question outside `facts` is not constrained.
pub fn holds_in(conds: &[Condition], facts: &[&str], world: u64) -> bool {
    conds
        .iter()
        .all(|c| match facts.binary_search(&c.fact.as_str()) {
            Ok(i) => (world >> i & 1 == 1) == c.holds,
            Err(_) => true,
        })
}

/// Why an outcome is approximate: which rule the engine could not decide, and why.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Doubt {
    pub rule: RuleRef,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Accept,
    Drop,
    Reject,
    /// The path leads into rules the input does not hold (a fragment) or a target that hands the
    /// packet elsewhere (NFQUEUE…): what happens next is not known.
    Unknown,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
            Verdict::Reject => "reject",
            Verdict::Unknown => "unknown",
        }
    }
}

/// A session-affinity rule on the path: a returning client sticks to this endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Affinity {
    pub name: String,
    pub seconds: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Branch {
    pub weight: f64,
    pub pkt: PacketState,
    pub path: Vec<Step>,
    pub doubts: Vec<Doubt>,
    pub verdict: Option<Verdict>,
    pub verdict_rule: Option<RuleRef>,
    /// The last filter-table ACCEPT rule seen (decides "accept" if nothing drops later).
    pub accept_rule: Option<RuleRef>,
    pub dnat_rule: Option<RuleRef>,
    pub masquerade_rule: Option<RuleRef>,
    /// The chain where the path ended without a verdict (opaque chain of a fragment).
    pub end_chain: Option<String>,
    /// The endpoint chain (the chain that DNAT'd).
    pub dnat_chain: Option<String>,
    pub affinity: Option<Affinity>,
    pub delivered_locally: bool,
    /// What this branch took as given, sorted by fact; its weight is its share in those worlds.
    pub conds: Vec<Condition>,
    /// A DNAT to an address range (`lo-hi`): the kernel picks one per source.
    pub dnat_range: Option<String>,
    /// The nth rules this packet met (by position), to notice one met twice.
    pub nth_seen: Vec<(u32, u32)>,
    /// An nth rule this packet met twice: (position, every, packet).
    pub nth_twice: Option<((u32, u32), u32, u32)>,
}

impl super::matcher::Given for Branch {
    fn given(&self, key: &str) -> Option<bool> {
        self.conds.iter().find(|c| c.fact == key).map(|c| c.holds)
    }
    fn iface(&self, dir: &str) -> Option<&str> {
        let prefix = if dir == "in" {
            "in-iface "
        } else {
            "out-iface "
        };
        self.conds.iter().find_map(|c| {
            let name = c.fact.strip_prefix(prefix)?;
            (c.holds && !name.ends_with('+')).then_some(name)
        })
    }
}

impl Branch {
    pub fn new(pkt: PacketState) -> Branch {
        Branch {
            weight: 1.0,
            pkt,
            path: Vec::new(),
            doubts: Vec::new(),
            verdict: None,
            verdict_rule: None,
            accept_rule: None,
            dnat_rule: None,
            masquerade_rule: None,
            end_chain: None,
            dnat_chain: None,
            affinity: None,
            delivered_locally: false,
            conds: Vec::new(),
            dnat_range: None,
            nth_seen: Vec::new(),
            nth_twice: None,
        }
    }

    /// Takes `fact` as given (true or false) from here on.
    pub fn assume(&mut self, c: Condition) {
        let at = self.conds.partition_point(|x| x.fact < c.fact);
        self.conds.insert(at, c);
    }

    /// Whether the conditions are the same questions with the same answers.
    pub fn same_conds(&self, o: &Branch) -> bool {
        same_answers(&self.conds, &o.conds)
    }

    /// Two branches that will behave the same from here on (their histories may differ).
    pub fn same_future(&self, o: &Branch) -> bool {
        self.same_future_reading(o, u32::MAX)
    }

    /// [`Branch::same_future`], where only the mark bits in `read` matter: bits no rule tests
    /// cannot change what happens next.
    pub fn same_future_reading(&self, o: &Branch, read: u32) -> bool {
        let (a, b) = (&self.pkt, &o.pkt);
        a.src == b.src
            && a.dst == b.dst
            && a.proto == b.proto
            && a.sport == b.sport
            && a.dport == b.dport
            && a.in_iface == b.in_iface
            && a.out_iface == b.out_iface
            && (a.mark ^ b.mark) & read == 0
            && (a.ctmark ^ b.ctmark) & read == 0
            && a.dnat == b.dnat
            && a.masquerade == b.masquerade
            && a.untracked == b.untracked
            && a.recent == b.recent
            && a.nth_counter == b.nth_counter
            && self.verdict == o.verdict
            && self.verdict_rule == o.verdict_rule
            && self.end_chain == o.end_chain
            && self.dnat_chain == o.dnat_chain
            && self.dnat_range == o.dnat_range
            && self.accept_rule == o.accept_rule
            && self.masquerade_rule == o.masquerade_rule
            && self.affinity == o.affinity
            && self.doubts.is_empty() == o.doubts.is_empty()
            && self.same_conds(o)
    }

    /// Folds `o` into `self`: the weights add, doubts join, and the heavier branch's path is kept.
    pub fn absorb(&mut self, o: Branch) {
        if o.weight > self.weight {
            self.path = o.path;
        }
        self.weight += o.weight;
        for d in o.doubts {
            // The same doubt at another rule adds nothing for the reader.
            if !self.doubts.iter().any(|x| x.reason == d.reason) {
                self.doubts.push(d);
            }
        }
    }
}
