//! Walks one table's chains for one hook, the way netfilter does, for a set of branches.
//!
//! The call stack is explicit (no recursion, so a 100,000-deep chain of jumps cannot overflow the
//! stack). When branches split (statistic rules, undecidable criteria) they are processed in program
//! order: a stack of (chain, rule index) frames only ever grows lexicographically as execution moves
//! on, so branches that reach the same rule with the same packet state meet in the queue and are merged.
//! That keeps a 250-endpoint Service linear and bounds pathological fan-outs.

use super::matcher::{self, Ctx, HookKind, RuleMatch};
use super::state::*;
use super::{ChainSrc, Engine};
use crate::model::target::other_target_is_terminal;
use crate::model::{Policy, Rule, TargetKind};
use std::collections::BTreeMap;

/// Deeper than any rule set the kernel loads (nf_tables refuses more than 16 nested jumps; x_tables
/// bounds nesting by the number of chains); stops a runaway walk with a clear doubt.
pub const MAX_DEPTH: usize = 1 << 20;
/// Distinct branches followed at once. A Service of 250 endpoints needs 250; statistic rules that
/// each set another mark bit would need 2^n. Past this the least likely branches stop, together,
/// as one "not followed" outcome that keeps their share.
pub const MAX_BRANCHES: usize = 2048;
/// Rule evaluations for one trace, all branches together.
pub const MAX_STEPS: u64 = 20_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub src: ChainSrc,
    pub idx: u32,
    pub via_goto: bool,
}

type Key = Vec<u64>;

fn key(frames: &[Frame]) -> Key {
    frames
        .iter()
        .map(|f| {
            let code = match f.src {
                ChainSrc::Real(id) => (id.0 as u64) << 2,
                ChainSrc::Virtual(k) => ((k as u64) << 2) | 2,
            } | f.via_goto as u64;
            ((f.idx as u64) << 32) | code
        })
        .collect()
}

/// A chain already on the call stack means a loop (`A → … → A`), which the kernel refuses to load.
/// Checked when the stack is short, then at every power-of-two depth, so a legitimately deep stack
/// costs linear time in all.
fn jump_cycle(frames: &[Frame], next: ChainSrc) -> Option<Vec<ChainSrc>> {
    let depth = frames.len();
    let on_stack = |frames: &[Frame]| {
        frames
            .iter()
            .position(|f| f.src == next)
            .map(|i| (i, depth))
    };
    let (start, end) = if depth <= 32 {
        on_stack(frames)?
    } else if depth.is_power_of_two() {
        let mut seen = std::collections::HashMap::with_capacity(depth);
        let mut dup = None;
        for (i, f) in frames.iter().enumerate() {
            if let Some(&j) = seen.get(&f.src) {
                dup = Some((j, i));
                break;
            }
            seen.insert(f.src, i);
        }
        dup.or_else(|| on_stack(frames))?
    } else {
        return None;
    };
    let mut cycle: Vec<ChainSrc> = frames[start..end].iter().map(|f| f.src).collect();
    cycle.push(frames[start].src);
    Some(cycle)
}

/// Branches at the same point with the same future and share, whose conditions differ only in
/// the answer to one question, do not depend on it: they become one branch without it. (Docker's
/// `-i docker0 … -j ACCEPT` that a pod's packet may or may not meet, then the same path for both.)
fn unite_worlds(group: &mut Vec<(Branch, Vec<Frame>)>) {
    if group.len() < 2 || group.iter().all(|(b, _)| b.conds.is_empty()) {
        return;
    }
    let mut changed = true;
    while changed {
        changed = false;
        'outer: for i in 0..group.len() {
            for j in i + 1..group.len() {
                let (a, b) = (&group[i], &group[j]);
                if a.1 != b.1 || !same_share(a.0.weight, b.0.weight) {
                    continue;
                }
                let Some(k) = differs_in_one(&a.0.conds, &b.0.conds) else {
                    continue;
                };
                let mut a2 = a.0.clone();
                a2.conds.remove(k);
                let mut b2 = b.0.clone();
                b2.conds.remove(k);
                if !a2.same_future(&b2) {
                    continue;
                }
                for d in b2.doubts {
                    if !a2.doubts.iter().any(|x| x.reason == d.reason) {
                        a2.doubts.push(d);
                    }
                }
                group[i].0 = a2;
                group.swap_remove(j);
                changed = true;
                break 'outer;
            }
        }
    }
}

/// Shares are products of the kernel's dyadic probabilities; equal ones agree to rounding.
pub(crate) fn same_share(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
}

/// The value of option `name` in a target's arguments.
fn opt<'a>(args: &'a [Box<str>], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| &**a == name)?;
    args.get(i + 1).map(|v| &**v)
}

fn num(v: &str) -> Option<u32> {
    match v.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// `value[/mask]`, mask defaulting to all ones.
fn value_mask(v: &str) -> Option<(u32, u32)> {
    match v.split_once('/') {
        Some((a, m)) => Some((num(a)?, num(m)?)),
        None => Some((num(v)?, u32::MAX)),
    }
}

/// CONNMARK, as the kernel computes it: (mark, ctmark) after the target.
/// `--save-mark`: ctmark = (ctmark & ~ctmask) ^ (mark & nfmask);
/// `--restore-mark`: mark = (mark & ~nfmask) ^ (ctmark & ctmask);
/// `--set-xmark v/m`: ctmark = (ctmark & ~m) ^ v (and `--set-mark`, `--and/or/xor-mark` through it).
pub(crate) fn connmark(args: &[Box<str>], mark: u32, ctmark: u32) -> Option<(u32, u32)> {
    let masks = |def: u32| -> Option<(u32, u32)> {
        let m = opt(args, "--mask").map(num).unwrap_or(Some(def))?;
        let nf = opt(args, "--nfmask").map(num).unwrap_or(Some(m))?;
        let ct = opt(args, "--ctmask").map(num).unwrap_or(Some(m))?;
        Some((nf, ct))
    };
    let has = |o: &str| args.iter().any(|a| &**a == o);
    if has("--save-mark") {
        let (nf, ct) = masks(u32::MAX)?;
        return Some((mark, (ctmark & !ct) ^ (mark & nf)));
    }
    if has("--restore-mark") {
        let (nf, ct) = masks(u32::MAX)?;
        return Some(((mark & !nf) ^ (ctmark & ct), ctmark));
    }
    let (v, m) = if let Some(x) = opt(args, "--set-xmark") {
        value_mask(x)?
    } else if let Some(x) = opt(args, "--set-mark") {
        let (v, m) = value_mask(x)?;
        (v, m | v)
    } else if let Some(x) = opt(args, "--and-mark") {
        (0, !num(x)?)
    } else if let Some(x) = opt(args, "--or-mark") {
        let v = num(x)?;
        (v, v)
    } else if let Some(x) = opt(args, "--xor-mark") {
        (num(x)?, 0)
    } else {
        return None;
    };
    Some((mark, (ctmark & !m) ^ v))
}

/// NETMAP's one-to-one mapping: the network part from `to`, the host part kept.
fn netmap(ip: std::net::IpAddr, to: ipnet::IpNet) -> std::net::IpAddr {
    match (ip, to) {
        (std::net::IpAddr::V4(a), ipnet::IpNet::V4(n)) => {
            let m = u32::from(n.netmask());
            std::net::Ipv4Addr::from((u32::from(a) & !m) | (u32::from(n.network()) & m)).into()
        }
        (std::net::IpAddr::V6(a), ipnet::IpNet::V6(n)) => {
            let m = u128::from(n.netmask());
            std::net::Ipv6Addr::from((u128::from(a) & !m) | (u128::from(n.network()) & m)).into()
        }
        _ => ip,
    }
}

/// Harmless targets: they log, count or tweak headers, and the packet goes on unchanged for routing.
pub(crate) fn harmless(name: &str) -> bool {
    matches!(
        name,
        "NFLOG"
            | "ULOG"
            | "TRACE"
            | "AUDIT"
            | "CHECKSUM"
            | "TCPMSS"
            | "TCPOPTSTRIP"
            | "TOS"
            | "DSCP"
            | "TTL"
            | "HL"
            | "ECN"
            | "SECMARK"
            | "CONNSECMARK"
            | "CLASSIFY"
            | "IDLETIMER"
            | "LED"
            | "RATEEST"
            | "SET"
    )
}

pub(crate) struct Walk<'e, 'a> {
    pub eng: &'e Engine<'a>,
    pub table: &'a str,
    pub builtin: &'a str,
    pub hook: HookKind,
    /// The chain is of type nat (iptables' nat table, or an nftables `type nat` base chain).
    pub nat: bool,
    /// Accepting here is the filter decision worth naming (iptables' filter table, or an
    /// nftables `type filter` base chain).
    pub filter: bool,
    /// The table's nftables sets and maps, looked up once for every rule the walk evaluates.
    sets: Option<&'a crate::model::nft::NftTable>,
    pub steps: &'e mut u64,
    /// Further branches a target split off (a queue that may or may not have a reader).
    forked: Vec<Next>,
    /// The nth rule followed by its counter (position, every), not by its share.
    pub nth: Option<((u32, u32), u32)>,
}

impl<'e, 'a> Walk<'e, 'a> {
    pub fn new(
        eng: &'e Engine<'a>,
        table: &'a str,
        builtin: &'a str,
        hook: HookKind,
        steps: &'e mut u64,
    ) -> Self {
        let sets = eng.rs.table(table).and_then(|t| t.nft.as_deref());
        let nft = sets.and_then(|t| t.base(builtin));
        Walk {
            eng,
            table,
            builtin,
            hook,
            nat: nft.map_or(table == "nat", |b| &*b.kind == "nat"),
            filter: nft.map_or(table == "filter", |b| &*b.kind == "filter"),
            sets,
            steps,
            forked: Vec::new(),
            nth: None,
        }
    }
}

enum Next {
    Continue(Branch, Vec<Frame>),
    Done(Branch),
}

impl Walk<'_, '_> {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            hook: self.hook,
            local: &self.eng.local,
            table: self.table,
            sets: self.sets,
        }
    }

    fn rref(&self, src: ChainSrc, line: u32) -> RuleRef {
        RuleRef {
            table: self.table.to_string(),
            chain: self.eng.chain_name(self.table, src).to_string(),
            line,
        }
    }

    fn step(&self, b: &mut Branch, src: ChainSrc, rule: &Rule, action: String, p: Option<f64>) {
        b.path.push(Step {
            table: self.table.to_string(),
            chain: self.eng.chain_name(self.table, src).to_string(),
            line: rule.line,
            action,
            probability: p,
            assumed: rule.is_assumed(),
        });
    }

    /// Runs every branch through this table's chain for the hook. Returns all branches; those that
    /// were dropped or stopped carry a verdict.
    pub fn run(&mut self, branches: Vec<Branch>) -> Vec<Branch> {
        let Some(entry) = self.eng.builtin(self.table, self.builtin) else {
            return branches;
        };
        let start = vec![Frame {
            src: entry,
            idx: 0,
            via_goto: false,
        }];
        let mut out = Vec::new();
        let mut queue: BTreeMap<Key, Vec<(Branch, Vec<Frame>)>> = BTreeMap::new();
        // Branches waiting in `queue`, kept as a count: summing the queue at every step would
        // make a wide ladder quadratic.
        let mut queued = 0usize;
        let mut pending: Vec<(Branch, Vec<Frame>)> =
            branches.into_iter().map(|b| (b, start.clone())).collect();
        loop {
            // One branch in flight: step it directly (no keys to build). Several: program order;
            // every branch at the earliest program point forms one group, merged where equal.
            let group: Vec<(Branch, Vec<Frame>)> = if pending.len() == 1 && queue.is_empty() {
                std::mem::take(&mut pending)
            } else {
                for (b, f) in pending.drain(..) {
                    queue.entry(key(&f)).or_default().push((b, f));
                    queued += 1;
                }
                let Some((_, items)) = queue.pop_first() else {
                    break;
                };
                queued -= items.len();
                // Many states at one rule: compare only the mark bits some rule reads.
                let read = if items.len() > 8 {
                    self.eng.read_marks()
                } else {
                    u32::MAX
                };
                let mut merged: Vec<(Branch, Vec<Frame>)> = Vec::with_capacity(items.len());
                for (b, f) in items {
                    match merged
                        .iter_mut()
                        .find(|(m, mf)| *mf == f && m.same_future_reading(&b, read))
                    {
                        Some((m, _)) => m.absorb(b),
                        None => merged.push((b, f)),
                    }
                }
                unite_worlds(&mut merged);
                merged
            };
            let group = self.skip_misses(group);
            for (b, frames) in group {
                for n in self.advance(b, frames) {
                    match n {
                        Next::Continue(b, f) => pending.push((b, f)),
                        Next::Done(b) => out.push(b),
                    }
                }
            }
            if pending.len() + queued > MAX_BRANCHES {
                pending.extend(std::mem::take(&mut queue).into_values().flatten());
                queued = 0;
                if let Some(stopped) = self.prune(&mut pending) {
                    out.push(stopped);
                }
            }
            if pending.is_empty() && queue.is_empty() {
                break;
            }
        }
        out
    }

    /// Keeps the `MAX_BRANCHES / 2` most likely branches and stops the rest as one outcome that
    /// carries their whole share, so shares still add up to 1 and the user is told.
    fn prune(&self, live: &mut Vec<(Branch, Vec<Frame>)>) -> Option<Branch> {
        live.sort_by(|a, b| b.0.weight.total_cmp(&a.0.weight));
        let rest = live.split_off(MAX_BRANCHES / 2);
        let mut it = rest.into_iter();
        let (mut stopped, frames) = it.next()?;
        for (b, _) in it {
            stopped.weight += b.weight;
        }
        let top = frames.last().unwrap();
        let line = self
            .eng
            .rule_at(self.table, top.src, top.idx as usize)
            .map_or(0, |r| r.line);
        stopped.verdict = Some(Verdict::Unknown);
        stopped.doubts.push(Doubt {
            rule: self.rref(top.src, line),
            reason: format!(
                "the trace split into more than {MAX_BRANCHES} distinct packet states; the least likely were not followed further"
            ),
        });
        Some(stopped)
    }

    /// Moves a group of branches that stand at the same rule past every following rule that none
    /// of them matches, without the per-step bookkeeping. Scanning KUBE-SERVICES for one Service
    /// among 50,000 is almost entirely such misses.
    fn skip_misses(&mut self, mut group: Vec<(Branch, Vec<Frame>)>) -> Vec<(Branch, Vec<Frame>)> {
        let Some((_, frames)) = group.first() else {
            return group;
        };
        // (One branch: nothing to compare; comparing a deep stack with itself at every step would
        // make a 100,000-deep walk quadratic.)
        if group.len() > 1 && group[1..].iter().any(|(_, f)| f != frames) {
            return group;
        }
        let top = frames.last().unwrap().clone();
        let mut idx = top.idx as usize;
        let ctx = self.ctx();
        let mut steps = *self.steps;
        while let Some(rule) = self.eng.rule_at(self.table, top.src, idx) {
            if steps + group.len() as u64 > MAX_STEPS
                || group
                    .iter()
                    .any(|(b, _)| !matches!(matcher::rule(&ctx, &b.pkt, b, rule), RuleMatch::No))
            {
                break;
            }
            steps += group.len() as u64;
            idx += 1;
        }
        *self.steps = steps;
        for (_, f) in &mut group {
            f.last_mut().unwrap().idx = idx as u32;
        }
        group
    }

    fn policy(&self, mut b: Branch) -> Next {
        let policy = self
            .eng
            .policy(self.table, self.builtin)
            .unwrap_or(Policy::Accept);
        if policy == Policy::Drop {
            b.verdict = Some(Verdict::Drop);
            b.verdict_rule = None;
        }
        if self.filter || policy == Policy::Drop {
            b.path.push(Step {
                table: self.table.to_string(),
                chain: self.builtin.to_string(),
                line: 0,
                action: format!("policy {}", policy.name()),
                probability: None,
                assumed: false,
            });
            if policy == Policy::Accept {
                b.accept_rule = None;
            }
        }
        Next::Done(b)
    }

    fn ret(&self, b: Branch, mut frames: Vec<Frame>) -> Next {
        if frames.len() == 1 {
            return self.policy(b);
        }
        // A chain entered by goto returns to the caller of the chain that did the goto.
        while let Some(f) = frames.pop() {
            if !f.via_goto {
                break;
            }
        }
        match frames.last_mut() {
            Some(top) => {
                top.idx += 1;
                Next::Continue(b, frames)
            }
            None => self.policy(b),
        }
    }

    /// Evaluates the nth rule the engine follows by its counter, as the kernel does: the
    /// criteria before the statistic match decide whether the counter moves at all; it then
    /// moves by one and the statistic matches when it wraps to 0 (`!` inverts); the criteria
    /// after it decide the rest. Undecided criteria fork before the counter moves.
    fn count_nth(&self, b: &mut Branch, rule: &Rule, every: u32) -> RuleMatch {
        let at = rule
            .matches
            .iter()
            .position(|m| matches!(m.criterion, crate::model::Criterion::Statistic(_)))
            .unwrap_or(0);
        let part = |r: std::ops::Range<usize>| Rule {
            matches: rule.matches[r].to_vec().into(),
            ..rule.clone()
        };
        let before = part(0..at);
        let after = part(at + 1..rule.matches.len());
        match matcher::rule(&self.ctx(), &b.pkt, b, &before) {
            RuleMatch::No => return RuleMatch::No,
            RuleMatch::Maybe(f) => return RuleMatch::Maybe(f),
            RuleMatch::Yes(_) => {}
        }
        let rest = matcher::rule(&self.ctx(), &b.pkt, b, &after);
        if let RuleMatch::Maybe(f) = rest {
            return RuleMatch::Maybe(f);
        }
        let c = b.pkt.nth_counter.unwrap_or(0);
        let next = if c + 1 >= every { 0 } else { c + 1 };
        b.pkt.nth_counter = Some(next);
        let hit = (next == 0) != rule.matches[at].negated;
        match rest {
            RuleMatch::Yes(p) if hit => RuleMatch::Yes(p),
            _ => RuleMatch::No,
        }
    }

    fn advance(&mut self, mut b: Branch, mut frames: Vec<Frame>) -> Vec<Next> {
        *self.steps += 1;
        if *self.steps > MAX_STEPS {
            let top = frames.last().unwrap();
            b.verdict = Some(Verdict::Unknown);
            b.doubts.push(Doubt {
                rule: self.rref(top.src, 0),
                reason: format!("evaluation stopped after {MAX_STEPS} rule evaluations"),
            });
            return vec![Next::Done(b)];
        }
        let top = frames.last().unwrap().clone();
        let rule = self.eng.rule_at(self.table, top.src, top.idx as usize);
        // A paste cut this chain here: rules it elided might have matched first, and past its
        // last shown rule what follows is not known.
        if !self.eng.rs.cuts.is_empty() {
            let name = self.eng.chain_name(self.table, top.src);
            if let Some(line) = self.eng.rs.cut_at(self.table, name, top.idx) {
                let at = self.rref(top.src, line);
                let Some(rule) = rule else {
                    b.verdict = Some(Verdict::Unknown);
                    b.end_chain = Some(name.to_string());
                    b.doubts.push(Doubt {
                        rule: at,
                        reason: format!(
                            "the paste cuts chain `{name}` at line {line}: its rules after the last one shown are not in the input"
                        ),
                    });
                    return vec![Next::Done(b)];
                };
                let reason = format!(
                    "the paste elides rules of chain `{name}` at line {line}: one of them may have matched before line {}",
                    rule.line
                );
                if !b.doubts.iter().any(|d| d.reason == reason) {
                    b.doubts.push(Doubt { rule: at, reason });
                }
            }
        }
        let Some(rule) = rule else {
            return vec![self.ret(b, frames)];
        };
        let counted = self
            .nth
            .filter(|(key, _)| *key == (rule.span.start, rule.line))
            .map(|(_, every)| every);
        let verdict = match counted {
            Some(every) => self.count_nth(&mut b, rule, every),
            None => matcher::rule(&self.ctx(), &b.pkt, &b, rule),
        };
        let p = match verdict {
            RuleMatch::No => {
                frames.last_mut().unwrap().idx += 1;
                return vec![Next::Continue(b, frames)];
            }
            RuleMatch::Yes(p) => p,
            // Undecidable: two worlds, each with the whole share, and the rule evaluated again in
            // each (the next undecided criterion, if any, forks again).
            RuleMatch::Maybe(fact) => {
                let rref = self.rref(top.src, rule.line);
                let mut yes = b.clone();
                yes.assume(Condition {
                    fact: fact.key.clone(),
                    text: fact.text.clone(),
                    holds: true,
                    rule: rref.clone(),
                });
                b.assume(Condition {
                    fact: fact.key,
                    text: fact.text,
                    holds: false,
                    rule: rref,
                });
                // Both leave this rule before they can meet again (meeting here, they would be
                // united back into the undecided branch).
                let mut out = self.advance(yes, frames.clone());
                out.extend(self.advance(b, frames));
                return out;
            }
        };
        let mut out = Vec::with_capacity(2);
        let stat = rule.statistic().is_some();
        // An nth rule keeps one counter that every evaluation advances: a packet that meets it
        // twice advances it twice, and the share is no longer 1/N of the packets.
        if let (Some(crate::model::criterion::Statistic::Nth { every, packet }), None) =
            (rule.statistic(), counted)
        {
            let id = (rule.span.start, rule.line);
            if b.nth_seen.contains(&id) {
                b.nth_twice.get_or_insert((id, *every, *packet));
                let reason = format!(
                    "the nth rule at line {} is met twice by one packet: its counter advances twice, so its share is not 1/N",
                    rule.line
                );
                if !b.doubts.iter().any(|d| d.reason == reason) {
                    b.doubts.push(Doubt {
                        rule: self.rref(top.src, rule.line),
                        reason,
                    });
                }
            } else {
                b.nth_seen.push(id);
            }
        }
        if p < 1.0 {
            let mut not_taken = b.clone();
            not_taken.weight *= 1.0 - p;
            let mut f = frames.clone();
            f.last_mut().unwrap().idx += 1;
            if not_taken.weight > 0.0 {
                out.push(Next::Continue(not_taken, f));
            }
            b.weight *= p;
        }
        let shown_p = stat.then_some(p);
        out.push(self.apply(b, frames, rule, shown_p));
        out.append(&mut self.forked);
        out
    }

    fn apply(
        &mut self,
        mut b: Branch,
        mut frames: Vec<Frame>,
        rule: &Rule,
        p: Option<f64>,
    ) -> Next {
        for m in rule.matches.iter() {
            if let crate::model::Criterion::Recent(r) = &m.criterion {
                if r.mode == crate::model::criterion::RecentMode::Rcheck {
                    // Recorded on the way of a returning client; the first packet never takes it.
                } else if r.mode == crate::model::criterion::RecentMode::Set {
                    if !b.pkt.recent.iter().any(|n| **n == *r.name) {
                        b.pkt.recent.push(r.name.clone());
                    }
                    b.affinity = Some(Affinity {
                        name: r.name.to_string(),
                        seconds: self.eng.affinity_seconds(&r.name),
                    });
                }
            }
        }
        // (`-m recent --set` without a target records the packet too.)
        let Some(target) = &rule.target else {
            frames.last_mut().unwrap().idx += 1;
            return Next::Continue(b, frames);
        };
        self.apply_target(b, frames, rule, target, p)
    }

    /// An nftables verdict map: the verdict of the element the packet's key finds, or for
    /// `numgen random mod N` one branch per verdict with the share of the values that map to it.
    fn vmap(
        &mut self,
        mut b: Branch,
        mut frames: Vec<Frame>,
        rule: &Rule,
        v: &crate::model::nft::Vmap,
        p: Option<f64>,
    ) -> Next {
        use crate::model::nft::{Atom, MapVerdict, SetRef, VmapKey};
        let top = frames.last().unwrap().clone();
        let named = match &v.map {
            SetRef::Inline(_) => None,
            SetRef::Named(n) => match self.sets.and_then(|t| t.sets.get(n)) {
                Some(s) => Some(s),
                None => {
                    b.verdict = Some(Verdict::Unknown);
                    b.doubts.push(Doubt {
                        rule: self.rref(top.src, rule.line),
                        reason: format!("map `@{n}` is not in the input"),
                    });
                    return Next::Done(b);
                }
            },
        };
        let elements: &[crate::model::nft::Element] = match (&v.map, named) {
            (SetRef::Inline(e), _) => e,
            (_, Some(s)) => &s.elements,
            (_, None) => &[],
        };
        let target = |verdict: &MapVerdict| -> Option<crate::model::Target> {
            let (kind, goto) = match verdict {
                MapVerdict::Accept => (TargetKind::Accept, false),
                MapVerdict::Drop => (TargetKind::Drop, false),
                MapVerdict::Reject => (TargetKind::Reject { with: None }, false),
                MapVerdict::Return => (TargetKind::Return, false),
                MapVerdict::Continue => return None,
                MapVerdict::Jump(c) => (TargetKind::Chain(c.clone()), false),
                MapVerdict::Goto(c) => (TargetKind::Chain(c.clone()), true),
                MapVerdict::Nat(to) => (
                    TargetKind::Dnat {
                        to: Some(Box::new(*to)),
                        flags: Vec::new(),
                    },
                    false,
                ),
            };
            Some(crate::model::Target {
                goto,
                kind,
                span: rule.span,
                before: Box::new([]),
            })
        };
        match &v.key {
            VmapKey::Fields(fields) => {
                let key = match matcher::key_of(&b.pkt, fields) {
                    Ok(Some(k)) => k,
                    _ => {
                        frames.last_mut().unwrap().idx += 1;
                        return Next::Continue(b, frames);
                    }
                };
                let found = match named {
                    Some(s) => s.lookup(&key),
                    None => crate::model::nft::find(elements, &key),
                };
                match found.and_then(|e| e.verdict.as_ref()).and_then(target) {
                    Some(t) => self.apply_target(b, frames, rule, &t, p),
                    None => {
                        frames.last_mut().unwrap().idx += 1;
                        Next::Continue(b, frames)
                    }
                }
            }
            VmapKey::Numgen { modulus } => {
                let n = u64::from(*modulus).max(1);
                // Values 0…N-1 by the element that holds each (the first, as the kernel's lookup).
                let mut shares: Vec<(Option<crate::model::Target>, u64)> = Vec::new();
                let mut covered = 0u64;
                for e in elements {
                    let Some(Atom::Num(lo, hi)) = e.key.first() else {
                        continue;
                    };
                    let (lo, hi) = (*lo, (*hi).min(n - 1));
                    if lo > hi {
                        continue;
                    }
                    let count = hi - lo + 1;
                    covered += count;
                    let t = e.verdict.as_ref().and_then(target);
                    match shares.iter_mut().find(|(x, _)| *x == t) {
                        Some((_, c)) => *c += count,
                        None => shares.push((t, count)),
                    }
                }
                let mut outs: Vec<Next> = Vec::new();
                let uncovered = n.saturating_sub(covered);
                if uncovered > 0 {
                    shares.push((None, uncovered));
                }
                for (t, count) in shares {
                    let share = count as f64 / n as f64;
                    let mut br = b.clone();
                    br.weight *= share;
                    if br.weight <= 0.0 {
                        continue;
                    }
                    let shown = Some(p.unwrap_or(1.0) * share);
                    match t {
                        Some(t) => {
                            outs.push(self.apply_target(br, frames.clone(), rule, &t, shown))
                        }
                        None => {
                            let mut f = frames.clone();
                            f.last_mut().unwrap().idx += 1;
                            outs.push(Next::Continue(br, f));
                        }
                    }
                }
                let first = outs.remove(0);
                self.forked.extend(outs);
                first
            }
        }
    }

    fn apply_target(
        &mut self,
        mut b: Branch,
        mut frames: Vec<Frame>,
        rule: &Rule,
        target: &crate::model::Target,
        p: Option<f64>,
    ) -> Next {
        // Statements before the verdict change the packet first, each as its own target would
        // (they never end the rule: marks, NOTRACK), and the verdict follows on the same rule.
        for kind in target.before.iter() {
            let effect = crate::model::Target {
                goto: false,
                kind: kind.clone(),
                span: target.span,
                before: Box::new([]),
            };
            let depth = frames.len();
            let idx = frames.last().map(|f| f.idx);
            match self.apply_target(b, frames, rule, &effect, p) {
                Next::Continue(nb, mut nf)
                    if nf.len() == depth && nf.last().map(|f| f.idx) == idx.map(|i| i + 1) =>
                {
                    nf.last_mut().unwrap().idx -= 1;
                    b = nb;
                    frames = nf;
                }
                // A statement kptrace reads as ending the rule: what it decided stands.
                other => return other,
            }
        }
        let top = frames.last().unwrap().clone();
        let here = self.rref(top.src, rule.line);
        let nat_hook = self.nat;
        match &target.kind {
            TargetKind::Vmap(v) => self.vmap(b, frames, rule, v, p),
            TargetKind::Chain(name) => {
                let verb = if target.goto { "goto" } else { "jump" };
                self.step(&mut b, top.src, rule, format!("{verb} {name}"), p);
                match self.eng.resolve(self.table, name) {
                    super::Resolved::Chain(src) => {
                        if let Some(cycle) = jump_cycle(&frames, src) {
                            let names: Vec<&str> = cycle
                                .iter()
                                .map(|s| self.eng.chain_name(self.table, *s))
                                .collect();
                            b.verdict = Some(Verdict::Unknown);
                            b.doubts.push(Doubt {
                                rule: here,
                                reason: format!(
                                    "jump cycle {}: iptables-restore refuses rule sets with loops, so the kernel never held these rules",
                                    names.join(" → ")
                                ),
                            });
                            return Next::Done(b);
                        }
                        if frames.len() >= MAX_DEPTH {
                            b.verdict = Some(Verdict::Unknown);
                            b.doubts.push(Doubt {
                                rule: here,
                                reason: format!("jump depth over {MAX_DEPTH}: evaluation stopped"),
                            });
                            return Next::Done(b);
                        }
                        // A grep for the Service's name leaves out kube-proxy's rules that do not
                        // carry it; where such a rule would come first, say so.
                        if self.eng.rs.fragment {
                            if let ChainSrc::Real(id) = src {
                                let t = self.eng.rs.table(self.table).unwrap();
                                let rules = self.eng.rs.rules(t.get(id));
                                if let Some(what) = super::assumed::grep_gap(name, rules) {
                                    b.doubts.push(Doubt {
                                        rule: here.clone(),
                                        reason: format!(
                                            "a grep for the Service cannot show {what}, which `{name}` holds first on a node: the outcome through `{name}` may differ"
                                        ),
                                    });
                                }
                            }
                        }
                        frames.push(Frame {
                            src,
                            idx: 0,
                            via_goto: target.goto,
                        });
                        Next::Continue(b, frames)
                    }
                    super::Resolved::Opaque => {
                        b.verdict = Some(Verdict::Unknown);
                        b.end_chain = Some(name.to_string());
                        b.doubts.push(Doubt {
                            rule: here,
                            reason: format!("the rules of chain `{name}` are not in the input"),
                        });
                        Next::Done(b)
                    }
                    super::Resolved::Missing => {
                        b.doubts.push(Doubt {
                            rule: here,
                            reason: format!(
                                "jump to `{name}`, which the input does not declare: treated as an empty chain"
                            ),
                        });
                        frames.last_mut().unwrap().idx += 1;
                        Next::Continue(b, frames)
                    }
                }
            }
            TargetKind::Accept => {
                self.step(&mut b, top.src, rule, "ACCEPT".into(), p);
                if self.filter {
                    b.accept_rule = Some(here);
                }
                Next::Done(b)
            }
            TargetKind::Drop | TargetKind::Reject { .. } => {
                let v = if matches!(target.kind, TargetKind::Drop) {
                    Verdict::Drop
                } else {
                    Verdict::Reject
                };
                self.step(&mut b, top.src, rule, target.kind.name().to_string(), p);
                b.verdict = Some(v);
                b.verdict_rule = Some(here);
                Next::Done(b)
            }
            TargetKind::Return => {
                self.step(&mut b, top.src, rule, "RETURN".into(), p);
                self.ret(b, frames)
            }
            TargetKind::Dnat { to: Some(to), .. }
                if nat_hook && matches!(self.hook, HookKind::Prerouting | HookKind::Output) =>
            {
                let before = (b.pkt.dst, b.pkt.dport);
                // An address range is the kernel's per-source choice: the lowest address stands
                // for it, and the outcome lists the range.
                if let Some((lo, hi)) = to.addr {
                    b.pkt.dst = lo;
                    b.dnat_range = (lo != hi).then(|| format!("{lo}-{hi}"));
                }
                // A port already inside the range is kept; otherwise the lowest is taken.
                if let Some(ports) = to.ports {
                    if !ports.contains(b.pkt.dport) {
                        b.pkt.dport = ports.lo;
                    }
                }
                // A DNAT to the same address and port changes nothing: conntrack records no NAT.
                if (b.pkt.dst, b.pkt.dport) != before || b.pkt.dnat.is_some() {
                    b.pkt.dnat = Some(crate::model::print::host_port(b.pkt.dst, b.pkt.dport));
                }
                let shown = to.to_string();
                self.step(&mut b, top.src, rule, format!("DNAT {shown}"), p);
                b.dnat_rule = Some(here);
                b.dnat_chain = Some(self.eng.chain_name(self.table, top.src).to_string());
                Next::Done(b)
            }
            TargetKind::Redirect { to_ports, .. }
                if nat_hook && matches!(self.hook, HookKind::Prerouting | HookKind::Output) =>
            {
                // To loopback from the node itself; to the primary address of the interface the
                // packet arrived on otherwise (the node's first address when that is not known).
                let ip = if self.hook == HookKind::Output {
                    match b.pkt.dst {
                        std::net::IpAddr::V6(_) => "::1".parse().unwrap(),
                        _ => "127.0.0.1".parse().unwrap(),
                    }
                } else {
                    b.pkt
                        .in_iface
                        .as_deref()
                        .and_then(|i| self.eng.iface_addr(i))
                        .unwrap_or_else(|| self.eng.primary_local())
                };
                b.pkt.dst = ip;
                if let Some(p) = to_ports {
                    if !p.contains(b.pkt.dport) {
                        b.pkt.dport = p.lo;
                    }
                }
                b.pkt.dnat = Some(crate::model::print::host_port(ip, b.pkt.dport));
                let action = format!("REDIRECT to local port {}", b.pkt.dport);
                self.step(&mut b, top.src, rule, action, p);
                b.dnat_rule = Some(here);
                b.dnat_chain = Some(self.eng.chain_name(self.table, top.src).to_string());
                Next::Done(b)
            }
            TargetKind::Masquerade { .. } | TargetKind::Snat { .. }
                if nat_hook && matches!(self.hook, HookKind::Postrouting | HookKind::Input) =>
            {
                // MASQUERADE picks the out interface's address: a packet already from it keeps
                // its source address, which is no masquerading as far as replies are concerned.
                let unchanged = matches!(target.kind, TargetKind::Masquerade { .. })
                    && b.pkt
                        .out_iface
                        .as_deref()
                        .and_then(|i| self.eng.iface_addr(i))
                        .is_some_and(|a| a == b.pkt.src);
                if unchanged {
                    let action = format!(
                        "MASQUERADE (no change: {} is already the address of `{}`)",
                        b.pkt.src,
                        b.pkt.out_iface.as_deref().unwrap_or_default()
                    );
                    self.step(&mut b, top.src, rule, action, p);
                    return Next::Done(b);
                }
                if !matches!(target.kind, TargetKind::Masquerade { .. })
                    || self.hook == HookKind::Postrouting
                {
                    b.pkt.masquerade = true;
                    b.masquerade_rule = Some(here);
                }
                self.step(&mut b, top.src, rule, target.kind.name().to_string(), p);
                Next::Done(b)
            }
            TargetKind::Mark(op) => {
                let before = b.pkt.mark;
                b.pkt.mark = op.apply(before);
                let action = format!("MARK {:#x} → {:#x}", before, b.pkt.mark);
                self.step(&mut b, top.src, rule, action, p);
                frames.last_mut().unwrap().idx += 1;
                Next::Continue(b, frames)
            }
            TargetKind::ConnMark { args } => {
                match connmark(args, b.pkt.mark, b.pkt.ctmark) {
                    Some((mark, ctmark)) => {
                        let action = format!(
                            "CONNMARK mark {:#x} → {mark:#x}, ctmark {:#x} → {ctmark:#x}",
                            b.pkt.mark, b.pkt.ctmark
                        );
                        b.pkt.mark = mark;
                        b.pkt.ctmark = ctmark;
                        self.step(&mut b, top.src, rule, action, p);
                    }
                    None => b.doubts.push(Doubt {
                        rule: here,
                        reason: "CONNMARK with these options is not modelled".into(),
                    }),
                }
                frames.last_mut().unwrap().idx += 1;
                Next::Continue(b, frames)
            }
            TargetKind::Other { name, args }
                if &**name == "NETMAP"
                    && nat_hook
                    && matches!(self.hook, HookKind::Prerouting | HookKind::Output) =>
            {
                // NETMAP maps the destination network one to one and, like DNAT, ends nat.
                if let Some(to) = opt(args, "--to").and_then(|t| t.parse::<ipnet::IpNet>().ok()) {
                    b.pkt.dst = netmap(b.pkt.dst, to);
                    b.pkt.dnat = Some(crate::model::print::host_port(b.pkt.dst, b.pkt.dport));
                }
                let action = format!("NETMAP to {}", b.pkt.dst);
                self.step(&mut b, top.src, rule, action, p);
                b.dnat_rule = Some(here);
                b.dnat_chain = Some(self.eng.chain_name(self.table, top.src).to_string());
                Next::Done(b)
            }
            TargetKind::Other { name, .. }
                if &**name == "NETMAP"
                    && nat_hook
                    && matches!(self.hook, HookKind::Postrouting | HookKind::Input) =>
            {
                if self.hook == HookKind::Postrouting {
                    b.pkt.masquerade = true;
                    b.masquerade_rule = Some(here);
                }
                self.step(&mut b, top.src, rule, "NETMAP (source)".into(), p);
                Next::Done(b)
            }
            TargetKind::Other { name, args } if &**name == "NFQUEUE" || &**name == "QUEUE" => {
                // A program reading the queue decides; whether one runs, a dump cannot say.
                // Without one the kernel drops, or with --queue-bypass lets the packet go on.
                let queue = opt(args, "--queue-num")
                    .or_else(|| opt(args, "--queue-balance"))
                    .unwrap_or("0")
                    .to_string();
                let fact = format!("nfqueue reader {queue}");
                let given = <Branch as matcher::Given>::given(&b, &fact);
                let cond = |holds| Condition {
                    fact: fact.clone(),
                    text: format!("a program reads netfilter queue {queue}"),
                    holds,
                    rule: here.clone(),
                };
                let bypass = args.iter().any(|a| &**a == "--queue-bypass");
                let mut read = b.clone();
                let mut unread = b;
                self.step(&mut read, top.src, rule, name.to_string(), p);
                read.verdict = Some(Verdict::Unknown);
                read.end_chain = Some(self.eng.chain_name(self.table, top.src).to_string());
                read.doubts.push(Doubt {
                    rule: here.clone(),
                    reason: format!("target `{name}` hands the packet to a program"),
                });
                let unread_next = |mut u: Branch, this: &mut Self| {
                    if bypass {
                        this.step(
                            &mut u,
                            top.src,
                            rule,
                            format!("{name} (no reader: bypass, accepted)"),
                            p,
                        );
                        if this.filter {
                            u.accept_rule = Some(here.clone());
                        }
                    } else {
                        this.step(
                            &mut u,
                            top.src,
                            rule,
                            format!("{name} (no reader: dropped)"),
                            p,
                        );
                        u.verdict = Some(Verdict::Drop);
                        u.verdict_rule = Some(here.clone());
                    }
                    Next::Done(u)
                };
                match given {
                    Some(true) => Next::Done(read),
                    Some(false) => unread_next(unread, self),
                    None => {
                        read.assume(cond(true));
                        unread.assume(cond(false));
                        self.forked.push(Next::Done(read));
                        unread_next(unread, self)
                    }
                }
            }
            TargetKind::Other { name, args } => {
                let notrack = &**name == "NOTRACK"
                    || (&**name == "CT" && args.iter().any(|a| &**a == "--notrack"));
                if notrack {
                    b.pkt.untracked = true;
                    self.step(&mut b, top.src, rule, "NOTRACK".into(), p);
                } else if other_target_is_terminal(name) {
                    self.step(&mut b, top.src, rule, name.to_string(), p);
                    b.verdict = Some(Verdict::Unknown);
                    b.end_chain = Some(self.eng.chain_name(self.table, top.src).to_string());
                    b.doubts.push(Doubt {
                        rule: here,
                        reason: format!("target `{name}` hands the packet elsewhere"),
                    });
                    return Next::Done(b);
                } else if !harmless(name) {
                    b.doubts.push(Doubt {
                        rule: here,
                        reason: format!(
                            "target `{name}` is not modelled; assumed to let the packet go on"
                        ),
                    });
                }
                frames.last_mut().unwrap().idx += 1;
                Next::Continue(b, frames)
            }
            // LOG, and NAT targets outside the hooks where they act, let the packet go on.
            _ => {
                frames.last_mut().unwrap().idx += 1;
                Next::Continue(b, frames)
            }
        }
    }
}
