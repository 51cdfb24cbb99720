//! The answer of a trace: outcomes with their exact shares, and the notes that qualify them.

use super::packet::{Entry, Packet};
use super::state::*;
use super::Engine;
use serde::Serialize;

/// One way the connection can end, with the share of new connections that end so.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub probability: f64,
    /// `ip:port` the connection is DNAT'd to, if any.
    pub dnat: Option<String>,
    /// The source is rewritten in POSTROUTING (MASQUERADE or SNAT).
    pub masquerade: bool,
    pub verdict: Verdict,
    /// The rule whose ACCEPT/DROP/REJECT decided the verdict; null when a policy or fall-through did.
    pub verdict_rule: Option<RuleRef>,
    /// Some rule on the way could not be decided (see `doubts`): the share is not exact.
    pub approximate: bool,
    pub path: Vec<Step>,
    /// The endpoint chain that DNAT'd (KUBE-SEP-…).
    pub endpoint_chain: Option<String>,
    /// The chain where the path leaves what the input shows.
    pub unknown_chain: Option<String>,
    pub dnat_rule: Option<RuleRef>,
    pub masquerade_rule: Option<RuleRef>,
    /// A returning client sticks to this outcome's endpoint (kube-proxy session affinity).
    pub affinity: Option<Affinity>,
    /// `local` when delivered to the node itself, `forward` when routed on.
    pub delivery: &'static str,
    pub doubts: Vec<Doubt>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PacketJson {
    pub src: String,
    pub dst: String,
    pub proto: String,
    pub sport: u16,
    pub dport: u16,
    pub hook: Entry,
    pub in_iface: Option<String>,
    pub mark: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    pub packet: PacketJson,
    pub outcomes: Vec<Outcome>,
    pub notes: Vec<String>,
}

impl Trace {
    pub fn approximate(&self) -> bool {
        self.outcomes.iter().any(|o| o.approximate)
    }
}

pub(super) fn collect(eng: &Engine, pkt: &Packet, entry: Entry, done: Vec<Branch>) -> Trace {
    let mut outcomes: Vec<Outcome> = Vec::new();
    for b in done {
        if b.weight <= 0.0 {
            continue;
        }
        let verdict = b.verdict.unwrap_or(Verdict::Accept);
        let verdict_rule = match verdict {
            Verdict::Accept => b.accept_rule.clone(),
            _ => b.verdict_rule.clone(),
        };
        let o = Outcome {
            probability: b.weight,
            dnat: b.pkt.dnat.clone(),
            masquerade: b.pkt.masquerade && !matches!(verdict, Verdict::Drop | Verdict::Reject),
            verdict,
            verdict_rule,
            approximate: !b.doubts.is_empty(),
            path: b.path,
            endpoint_chain: b.dnat_chain,
            unknown_chain: b.end_chain,
            dnat_rule: b.dnat_rule,
            masquerade_rule: b.masquerade_rule,
            affinity: b.affinity,
            delivery: if b.delivered_locally {
                "local"
            } else {
                "forward"
            },
            doubts: b.doubts,
        };
        match outcomes.iter_mut().find(|x| {
            x.dnat == o.dnat
                && x.masquerade == o.masquerade
                && x.verdict == o.verdict
                && x.verdict_rule == o.verdict_rule
                && x.endpoint_chain == o.endpoint_chain
                && x.unknown_chain == o.unknown_chain
                && x.approximate == o.approximate
                && x.delivery == o.delivery
        }) {
            Some(x) => {
                x.probability += o.probability;
                for d in o.doubts {
                    if !x.doubts.iter().any(|y| y.reason == d.reason) {
                        x.doubts.push(d);
                    }
                }
            }
            None => outcomes.push(o),
        }
    }
    let mut notes: Vec<String> = eng.rs.notes.iter().map(|n| n.message.clone()).collect();
    notes.extend(eng.notes.iter().cloned());
    Trace {
        packet: PacketJson {
            src: pkt.src.to_string(),
            dst: pkt.dst.to_string(),
            proto: pkt.proto.to_string(),
            sport: pkt.sport,
            dport: pkt.dport,
            hook: entry,
            in_iface: pkt.in_iface.clone(),
            mark: pkt.mark,
        },
        outcomes,
        notes,
    }
}
