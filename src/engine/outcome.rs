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
    /// When the DNAT names an address range (`10.0.0.1-10.0.0.3`), the kernel picks one address
    /// per client: `dnat` shows the lowest, this the whole range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dnat_range: Option<String>,
    /// The source is rewritten in POSTROUTING (MASQUERADE or SNAT).
    pub masquerade: bool,
    pub verdict: Verdict,
    /// The rule whose ACCEPT/DROP/REJECT decided the verdict; null when a policy or fall-through did.
    pub verdict_rule: Option<RuleRef>,
    /// Some rule on the way could not be decided (see `doubts`): the share is not exact.
    pub approximate: bool,
    /// The path used rules kptrace assumed because the input cannot show them (kube-proxy's hooks
    /// in a restore payload or a grep; steps with `"assumed": true`). The share is exact if they
    /// are there, as they are on a node running kube-proxy.
    pub assumed: bool,
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
    /// What the input cannot decide and this outcome depends on. `probability` is the outcome's
    /// share in the worlds where every condition holds as stated; empty: in every world.
    pub conditions: Vec<Condition>,
}

impl Outcome {
    /// How the outcome reads in a table: the DNAT destination, DROP, REJECT, or where the packet
    /// goes without DNAT.
    pub fn label(&self) -> String {
        let o = self;
        match (&o.dnat, o.verdict) {
            (_, Verdict::Drop) => "DROP".into(),
            (_, Verdict::Reject) => "REJECT".into(),
            (Some(d), _) => d.clone(),
            (None, Verdict::Unknown) => match &o.unknown_chain {
                Some(c) => format!("{c} (rules not in input)"),
                None => "unknown".into(),
            },
            (None, Verdict::Accept) => {
                if o.delivery == "local" {
                    "delivered to the node (no DNAT)".into()
                } else {
                    "forwarded unchanged (no DNAT)".into()
                }
            }
        }
    }

    fn same_kind(&self, o: &Outcome) -> bool {
        self.dnat == o.dnat
            && self.masquerade == o.masquerade
            && self.verdict == o.verdict
            && self.verdict_rule == o.verdict_rule
            && self.endpoint_chain == o.endpoint_chain
            && self.unknown_chain == o.unknown_chain
            && self.approximate == o.approximate
            && self.delivery == o.delivery
    }

    fn same_conds(&self, o: &Outcome) -> bool {
        same_answers(&self.conditions, &o.conditions)
    }
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

    /// The questions the outcomes depend on, each once.
    pub fn facts(&self) -> Vec<&str> {
        let mut f: Vec<&str> = self
            .outcomes
            .iter()
            .flat_map(|o| o.conditions.iter().map(|c| c.fact.as_str()))
            .collect();
        f.sort_unstable();
        f.dedup();
        f
    }

    /// For every answer to the questions (up to `2^limit` of them): the total share of the
    /// outcomes that hold there. Each is 1 when the trace is whole; `None` past the limit.
    pub fn world_totals(&self, limit: usize) -> Option<Vec<f64>> {
        let facts = self.facts();
        if facts.len() > limit {
            return None;
        }
        let totals = (0u64..1 << facts.len())
            .map(|world| {
                self.outcomes
                    .iter()
                    .filter(|o| holds_in(&o.conditions, &facts, world))
                    .map(|o| o.probability)
                    .sum()
            })
            .collect();
        Some(totals)
    }
}

/// Outcomes that are the same in both answers to one question, with the same share, do not
/// depend on it: one outcome without that condition.
fn unite(outcomes: &mut Vec<Outcome>) {
    let mut changed = true;
    while changed {
        changed = false;
        'outer: for i in 0..outcomes.len() {
            for j in i + 1..outcomes.len() {
                let (a, b) = (&outcomes[i], &outcomes[j]);
                if !a.same_kind(b) || !super::walk::same_share(a.probability, b.probability) {
                    continue;
                }
                let Some(k) = differs_in_one(&a.conditions, &b.conditions) else {
                    continue;
                };
                let b = outcomes.swap_remove(j);
                let a = &mut outcomes[i];
                a.conditions.remove(k);
                a.assumed |= b.assumed;
                for d in b.doubts {
                    if !a.doubts.iter().any(|y| y.reason == d.reason) {
                        a.doubts.push(d);
                    }
                }
                // Two outcomes that now ask the same questions in the same world add up.
                if let Some(m) = outcomes.iter().enumerate().position(|(x, o)| {
                    x != i && o.same_kind(&outcomes[i]) && o.same_conds(&outcomes[i])
                }) {
                    let o = outcomes.swap_remove(m);
                    let i = if i == outcomes.len() { m } else { i };
                    outcomes[i].probability += o.probability;
                }
                changed = true;
                break 'outer;
            }
        }
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
            dnat_range: b.dnat_range.clone(),
            masquerade: b.pkt.masquerade && !matches!(verdict, Verdict::Drop | Verdict::Reject),
            verdict,
            verdict_rule,
            approximate: !b.doubts.is_empty(),
            assumed: b.path.iter().any(|s| s.assumed),
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
            conditions: b.conds,
        };
        match outcomes
            .iter_mut()
            .find(|x| x.same_kind(&o) && x.same_conds(&o))
        {
            Some(x) => {
                x.probability += o.probability;
                x.assumed |= o.assumed;
                for d in o.doubts {
                    if !x.doubts.iter().any(|y| y.reason == d.reason) {
                        x.doubts.push(d);
                    }
                }
            }
            None => outcomes.push(o),
        }
    }
    unite(&mut outcomes);
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
