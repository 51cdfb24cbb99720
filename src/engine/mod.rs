//! The packet engine: what netfilter does with the first packet of a connection.
//!
//! Hooks run in the kernel's order — raw, mangle, nat, filter for PREROUTING or OUTPUT; the routing
//! decision (after DNAT: a node address is delivered locally, anything else is forwarded); then
//! mangle/nat POSTROUTING, where masquerading is decided from the mark as it is then. Statistic rules
//! split the traffic into weighted branches whose shares are exact products of the probabilities the
//! kernel stores (`round(p·2³¹)/2³¹`).

pub mod assumed;
pub mod matcher;
pub mod outcome;
pub mod packet;
pub mod state;
pub(crate) mod walk;
pub use walk::{MAX_BRANCHES, MAX_DEPTH, MAX_STEPS};

use crate::model::{ChainId, Policy, Rule, Ruleset};
use ipnet::IpNet;
use matcher::HookKind;
pub use outcome::{Outcome, Trace};
pub use packet::{Entry, Packet};
use rustc_hash::FxHashMap;
use state::{Branch, PacketState};
use std::net::IpAddr;

/// What one packet's walk through the hooks carries from table to table.
struct Run {
    /// Rule evaluations so far, all branches together.
    steps: u64,
    /// The nth rule followed by its counter (position, every), if any.
    nth: Option<((u32, u32), u32)>,
}

/// Where a chain's rules come from: the input, or kptrace's assumption of kube-proxy's standard ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ChainSrc {
    Real(ChainId),
    Virtual(u32),
}

pub(crate) enum Resolved {
    Chain(ChainSrc),
    /// Named in a fragment whose paste does not hold its rules.
    Opaque,
    /// Not in the input at all.
    Missing,
}

struct VirtualChain {
    name: String,
    rules: Vec<Rule>,
}

/// A rule set prepared for tracing, with the node's addresses.
pub struct Engine<'a> {
    pub rs: &'a Ruleset,
    /// Node addresses and loopback: what LOCAL means.
    pub local: Vec<IpNet>,
    pub node_ips: Vec<IpAddr>,
    virtuals: Vec<VirtualChain>,
    /// (table, chain) → virtual chain with kube-proxy's standard contents.
    standard: FxHashMap<(String, String), u32>,
    /// (table, builtin) → assumed hook rules that run before the chain's own rules.
    hooks: FxHashMap<(String, String), Vec<Rule>>,
    /// (table, chain) → assumed rules that run after the chain's own rules.
    tails: FxHashMap<(String, String), Vec<Rule>>,
    pub notes: Vec<String>,
    affinity: FxHashMap<String, Option<u32>>,
    /// Networks reached through a named interface (the pod network through the pod interface).
    routes: Vec<(IpNet, String)>,
    /// The interface of the default route, when known.
    uplink: Option<String>,
    /// Primary addresses of interfaces, where known (what MASQUERADE picks there).
    iface_addrs: Vec<(String, IpAddr)>,
    /// Mark bits some rule tests (computed when a trace first needs it).
    read_marks: std::sync::OnceLock<u32>,
}

const HOOK_TABLES: &[(&str, &str)] = &[
    ("nat", "PREROUTING"),
    ("nat", "OUTPUT"),
    ("nat", "POSTROUTING"),
    ("filter", "INPUT"),
    ("filter", "FORWARD"),
    ("filter", "OUTPUT"),
];

/// Every chain a built-in chain leads to, through any number of jumps.
fn reachable(rs: &Ruleset, t: &crate::model::Table, from: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut todo = vec![from.to_string()];
    while let Some(name) = todo.pop() {
        let Some(c) = t.chain(&name) else { continue };
        for r in rs.rules(c) {
            if let Some(j) = r.jump_target() {
                if !seen.iter().any(|s| s == j) && seen.len() < 10_000 {
                    seen.push(j.to_string());
                    todo.push(j.to_string());
                }
            }
        }
    }
    seen
}

impl<'a> Engine<'a> {
    pub fn new(rs: &'a Ruleset, node_ips: &[IpAddr]) -> Engine<'a> {
        let mut local: Vec<IpNet> =
            vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        local.extend(node_ips.iter().map(|ip| IpNet::from(*ip)));
        let mut eng = Engine {
            rs,
            local,
            node_ips: node_ips.to_vec(),
            virtuals: Vec::new(),
            standard: FxHashMap::default(),
            hooks: FxHashMap::default(),
            tails: FxHashMap::default(),
            notes: Vec::new(),
            affinity: FxHashMap::default(),
            routes: Vec::new(),
            uplink: None,
            iface_addrs: Vec::new(),
            read_marks: std::sync::OnceLock::new(),
        };
        eng.assume_standard_rules();
        eng
    }

    fn assume_standard_rules(&mut self) {
        let rs = self.rs;
        let mut assumed_hooks = Vec::new();
        for &(table, builtin) in HOOK_TABLES {
            let Some(t) = rs.table(table) else { continue };
            // A table the input shows whole is the node's: its hooks are what it says. A listing
            // shows the chains it was asked for: a built-in chain it does not list is not shown,
            // not empty (`iptables -t nat -nL` pasted without POSTROUTING).
            let listed =
                rs.format != crate::model::InputFormat::Listing || t.shows_builtin(builtin);
            if t.shows_builtins() && listed {
                continue;
            }
            let reached = reachable(rs, t, builtin);
            let mut rules = Vec::new();
            for &(target, new_only) in assumed::standard_hooks(table, builtin) {
                let present = t.chain(target).is_some()
                    || (target == "KUBE-POSTROUTING" && t.chain("KUBE-SERVICES").is_some());
                if present && !reached.iter().any(|e| e == target) {
                    rules.push(assumed::hook_rule(target, new_only));
                    assumed_hooks.push(format!("{table} {builtin} → {target}"));
                }
            }
            if !rules.is_empty() {
                self.hooks.insert((table.into(), builtin.into()), rules);
            }
        }
        // A grep'd paste that shows KUBE-NODEPORTS but not the rule that leads there: kube-proxy always
        // ends nat KUBE-SERVICES with `-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`.
        if rs.fragment {
            if let Some(nat) = rs.table("nat") {
                let leads = nat.chains.iter().any(|c| {
                    rs.rules(c)
                        .any(|r| r.jump_target() == Some("KUBE-NODEPORTS"))
                });
                if nat
                    .chain("KUBE-NODEPORTS")
                    .is_some_and(|c| !c.rules.is_empty())
                    && !leads
                {
                    self.tails.insert(
                        ("nat".into(), "KUBE-SERVICES".into()),
                        vec![assumed::nodeports_rule()],
                    );
                    assumed_hooks
                        .push("nat KUBE-SERVICES → KUBE-NODEPORTS (for LOCAL destinations)".into());
                }
            }
        }
        if !assumed_hooks.is_empty() {
            self.notes.push(format!(
                "kube-proxy's standard hooks were assumed (not in the input): {}",
                assumed_hooks.join(", ")
            ));
        }
        // Well-known helper chains a fragment names without their rules (or never shows at all).
        let mut filled = Vec::new();
        if let Some(nat) = rs.table("nat") {
            for name in ["KUBE-MARK-MASQ", "KUBE-MARK-DROP", "KUBE-POSTROUTING"] {
                let needed = match nat.chain(name) {
                    Some(c) => c.is_opaque(),
                    None => {
                        name == "KUBE-POSTROUTING"
                            && self
                                .hooks
                                .contains_key(&("nat".to_string(), "POSTROUTING".to_string()))
                    }
                };
                if needed {
                    let rules = assumed::standard_chain(name).unwrap();
                    self.standard
                        .insert(("nat".into(), name.into()), self.virtuals.len() as u32);
                    self.virtuals.push(VirtualChain {
                        name: name.into(),
                        rules,
                    });
                    filled.push(name);
                }
            }
        }
        if !filled.is_empty() {
            self.notes.push(format!(
                "not in the input, so kube-proxy's standard contents were assumed: {}",
                filled.join(", ")
            ));
        }
    }

    /// The mark and conntrack-mark bits that any rule (read or assumed) tests. Branches that differ
    /// only in other bits behave the same: 40 statistic rules that each set a bit nobody tests
    /// are one state, not 2^40. Reads every rule once, so it is computed only when a trace splits
    /// into many states.
    pub(crate) fn read_marks(&self) -> u32 {
        *self.read_marks.get_or_init(|| {
            let mut bits = 0x8000u32; // kubelet's drop mark, assumed for nat-only pastes
            let mut see = |r: &Rule| {
                for m in r.matches.iter() {
                    match &m.criterion {
                        crate::model::Criterion::Mark { mask, .. }
                        | crate::model::Criterion::ConnMark { mask, .. } => bits |= *mask,
                        _ => {}
                    }
                }
            };
            for t in &self.rs.tables {
                for c in &t.chains {
                    self.rs.rules(c).for_each(&mut see);
                }
            }
            for v in &self.virtuals {
                v.rules.iter().for_each(&mut see);
            }
            for r in self.hooks.values().chain(self.tails.values()).flatten() {
                see(r);
            }
            bits
        })
    }

    /// The hook rules the engine assumed, as (table, built-in chain, rules placed first there):
    /// what a node running kube-proxy has and the input does not show.
    pub fn assumed_hooks(&self) -> Vec<(String, String, Vec<Rule>)> {
        let mut v: Vec<(String, String, Vec<Rule>)> = self
            .hooks
            .iter()
            .map(|((t, b), r)| (t.clone(), b.clone(), r.clone()))
            .collect();
        v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        v
    }

    pub(crate) fn builtin(&self, table: &str, builtin: &str) -> Option<ChainSrc> {
        let t = self.rs.table(table)?;
        t.id(builtin).map(ChainSrc::Real)
    }

    pub(crate) fn policy(&self, table: &str, builtin: &str) -> Option<Policy> {
        self.rs.chain(table, builtin)?.policy
    }

    pub(crate) fn chain_name(&self, table: &str, src: ChainSrc) -> &str {
        match src {
            ChainSrc::Real(id) => &self.rs.table(table).unwrap().get(id).name,
            ChainSrc::Virtual(k) => &self.virtuals[k as usize].name,
        }
    }

    pub(crate) fn rule_at(&self, table: &str, src: ChainSrc, idx: usize) -> Option<&Rule> {
        match src {
            ChainSrc::Virtual(k) => self.virtuals[k as usize].rules.get(idx),
            ChainSrc::Real(id) => {
                let t = self.rs.table(table)?;
                let c = t.get(id);
                let mut idx = idx;
                if c.builtin {
                    if let Some(pre) = self.hooks.get(&(table.to_string(), c.name.to_string())) {
                        if idx < pre.len() {
                            return Some(&pre[idx]);
                        }
                        idx -= pre.len();
                    }
                }
                if idx < c.rules.len() {
                    return Some(self.rs.rule(c, idx));
                }
                self.tails
                    .get(&(table.to_string(), c.name.to_string()))
                    .and_then(|t| t.get(idx - c.rules.len()))
            }
        }
    }

    pub(crate) fn resolve(&self, table: &str, name: &str) -> Resolved {
        if let Some(&k) = self.standard.get(&(table.to_string(), name.to_string())) {
            return Resolved::Chain(ChainSrc::Virtual(k));
        }
        match self
            .rs
            .table(table)
            .and_then(|t| t.id(name).map(|id| (t, id)))
        {
            Some((t, id)) if t.get(id).is_opaque() => Resolved::Opaque,
            Some((_, id)) => Resolved::Chain(ChainSrc::Real(id)),
            None => Resolved::Missing,
        }
    }

    pub(crate) fn primary_local(&self) -> IpAddr {
        self.node_ips
            .first()
            .copied()
            .unwrap_or_else(|| "127.0.0.1".parse().unwrap())
    }

    /// The `--seconds` of the `--rcheck` rule that checks list `name` (kube-proxy's affinity timeout).
    pub(crate) fn affinity_seconds(&self, name: &str) -> Option<u32> {
        if let Some(s) = self.affinity.get(name) {
            return *s;
        }
        None
    }

    /// Learns affinity timeouts from the balancing chains the caller knows of.
    pub fn learn_affinity(&mut self, name: &str, seconds: Option<u32>) {
        self.affinity.insert(name.to_string(), seconds);
    }

    pub fn is_local(&self, ip: IpAddr) -> bool {
        self.local.iter().any(|n| n.contains(&ip))
    }

    /// Tells the engine the node's routes: `routes` (network → interface) and the default route's
    /// interface. With them a packet leaves by the interface the kernel would route it to, so
    /// `-o` rules decide; without them `-o` is a condition of the answer.
    pub fn set_routes(&mut self, routes: Vec<(IpNet, String)>, uplink: Option<String>) {
        self.routes = routes;
        self.uplink = uplink;
    }

    /// Tells the engine an interface's primary address: MASQUERADE out of it picks that address,
    /// so a packet already from it is not rewritten.
    pub fn set_iface_addr(&mut self, iface: &str, addr: IpAddr) {
        self.iface_addrs.retain(|(i, _)| i != iface);
        self.iface_addrs.push((iface.to_string(), addr));
    }

    pub(crate) fn iface_addr(&self, iface: &str) -> Option<IpAddr> {
        self.iface_addrs
            .iter()
            .find(|(i, _)| i == iface)
            .map(|(_, a)| *a)
    }

    /// The interface a packet to `dst` leaves by, if the routes say.
    pub fn route(&self, dst: IpAddr) -> Option<String> {
        if self.is_local(dst) {
            return Some("lo".into());
        }
        self.routes
            .iter()
            .filter(|(n, _)| n.contains(&dst))
            .max_by_key(|(n, _)| n.prefix_len())
            .map(|(_, i)| i.clone())
            .or_else(|| self.uplink.clone())
    }

    fn reroute(&self, branches: &mut [Branch], fixed: bool) {
        if fixed {
            return;
        }
        for b in branches {
            b.pkt.out_iface = self.route(b.pkt.dst);
        }
    }

    /// Traces the first packet of a new connection.
    pub fn trace(&self, pkt: &Packet, entry: Entry) -> Trace {
        let mut done = self.walk_all(pkt, entry, None, 0);
        if let Some(exact) = self.nth_exactly(pkt, entry, &done) {
            done = exact;
        }
        outcome::collect(self, pkt, entry, done)
    }

    /// A packet that meets one nth rule twice advances its counter twice per packet: the shares
    /// are those of the counter's cycle. Traces the packet from every counter value; when each
    /// start leads to one next value (no coin flip or condition changes how often the rule is
    /// met), follows the kernel's counter from `--packet` to its cycle and averages the outcomes
    /// over it. Otherwise the outcomes keep saying they are approximate.
    fn nth_exactly(&self, pkt: &Packet, entry: Entry, done: &[Branch]) -> Option<Vec<Branch>> {
        let (key, every, packet) = done.iter().find_map(|b| b.nth_twice)?;
        if done
            .iter()
            .filter_map(|b| b.nth_twice)
            .any(|(k, _, _)| k != key)
            || every == 0
            || every > 1024
        {
            return None;
        }
        let mut by_start: Vec<Vec<Branch>> = Vec::with_capacity(every as usize);
        let mut next = Vec::with_capacity(every as usize);
        for c in 0..every {
            let branches = self.walk_all(pkt, entry, Some((key, every)), c);
            let ends: Vec<u32> = branches
                .iter()
                .map(|b| b.pkt.nth_counter.unwrap_or(c))
                .collect();
            if ends.windows(2).any(|w| w[0] != w[1]) {
                return None;
            }
            next.push(ends.first().copied().unwrap_or(c));
            by_start.push(branches);
        }
        // The kernel starts the counter at `--packet`; the packets then walk its orbit.
        let mut seen = vec![false; every as usize];
        let mut c = packet.min(every - 1);
        while !seen[c as usize] {
            seen[c as usize] = true;
            c = next[c as usize];
        }
        let mut cycle = vec![c];
        let mut d = next[c as usize];
        while d != c {
            cycle.push(d);
            d = next[d as usize];
        }
        let n = cycle.len() as f64;
        let mut out = Vec::new();
        for c in cycle {
            for mut b in std::mem::take(&mut by_start[c as usize]) {
                b.weight /= n;
                b.pkt.nth_counter = None;
                out.push(b);
            }
        }
        Some(out)
    }

    /// Every branch of one packet's way through the hooks, with the exactly followed nth rule's
    /// counter starting at `start`.
    fn walk_all(
        &self,
        pkt: &Packet,
        entry: Entry,
        nth: Option<((u32, u32), u32)>,
        start: u32,
    ) -> Vec<Branch> {
        let mut state = PacketState::new(pkt);
        if nth.is_some() {
            state.nth_counter = Some(start);
        }
        let mut run = Run { steps: 0, nth };
        let mut live = vec![Branch::new(state)];
        let mut done: Vec<Branch> = Vec::new();
        // An out interface the caller names holds throughout; otherwise the routes decide it.
        let fixed_out = pkt.out_iface.is_some();
        if entry == Entry::Output {
            self.reroute(&mut live, fixed_out);
        }
        let first = match entry {
            Entry::Prerouting => "PREROUTING",
            Entry::Output => "OUTPUT",
        };
        let first_hook = match entry {
            Entry::Prerouting => HookKind::Prerouting,
            Entry::Output => HookKind::Output,
        };
        let tables_first: &[&'static str] = match entry {
            Entry::Prerouting => &["raw", "mangle", "nat"],
            Entry::Output => &["raw", "mangle", "nat", "filter", "security"],
        };
        live = self.run_tables(live, &mut done, tables_first, first, first_hook, &mut run);
        // Routing decision, per branch: after DNAT, a node address is local.
        let (local, mut forward): (Vec<Branch>, Vec<Branch>) =
            live.into_iter().partition(|b| self.is_local(b.pkt.dst));
        self.reroute(&mut forward, fixed_out);
        match entry {
            Entry::Prerouting => {
                let mut input = local;
                for b in &mut input {
                    b.delivered_locally = true;
                }
                let input = self.run_tables(
                    input,
                    &mut done,
                    &["mangle", "filter", "security", "nat"],
                    "INPUT",
                    HookKind::Input,
                    &mut run,
                );
                done.extend(input);
                let fwd = self.run_tables(
                    forward,
                    &mut done,
                    &["mangle", "filter", "security"],
                    "FORWARD",
                    HookKind::Forward,
                    &mut run,
                );
                let post = self.run_tables(
                    fwd,
                    &mut done,
                    &["mangle", "nat"],
                    "POSTROUTING",
                    HookKind::Postrouting,
                    &mut run,
                );
                done.extend(post);
            }
            Entry::Output => {
                let mut all = local;
                all.extend(forward);
                self.reroute(&mut all, fixed_out);
                let post = self.run_tables(
                    all,
                    &mut done,
                    &["mangle", "nat"],
                    "POSTROUTING",
                    HookKind::Postrouting,
                    &mut run,
                );
                // Traffic to the node itself loops back and meets INPUT.
                let (to_self, away): (Vec<Branch>, Vec<Branch>) =
                    post.into_iter().partition(|b| self.is_local(b.pkt.dst));
                let mut to_self = to_self;
                for b in &mut to_self {
                    b.delivered_locally = true;
                    b.pkt.in_iface = Some("lo".into());
                }
                let input = self.run_tables(
                    to_self,
                    &mut done,
                    &["mangle", "filter", "security"],
                    "INPUT",
                    HookKind::Input,
                    &mut run,
                );
                done.extend(input);
                done.extend(away);
            }
        }
        self.assume_kubelet_drop(&mut done);
        done
    }

    /// A paste of the nat table alone shows KUBE-MARK-DROP setting 0x8000 but not the filter
    /// table, where kubelet (before 1.28 or so) dropped such packets (`KUBE-FIREWALL -m mark --mark
    /// 0x8000/0x8000 -j DROP`). Whether that rule is there the input cannot say: a condition.
    fn assume_kubelet_drop(&self, done: &mut Vec<Branch>) {
        if self.rs.table("filter").is_some() {
            return;
        }
        let Some(nat) = self.rs.table("nat") else {
            return;
        };
        if nat.chain("KUBE-MARK-DROP").is_none() {
            return;
        }
        let fact = "kubelet KUBE-FIREWALL mark drop";
        let rule = state::RuleRef {
            table: "filter".into(),
            chain: "KUBE-FIREWALL".into(),
            line: 0,
        };
        let mut dropped = Vec::new();
        for b in done.iter_mut() {
            if b.verdict.is_none() && b.pkt.mark & 0x8000 == 0x8000 {
                let mut d = b.clone();
                let cond = |holds| {
                    state::Condition {
                    fact: fact.into(),
                    text: "the filter table (not in the input) holds kubelet's `KUBE-FIREWALL` rule that drops packets marked 0x8000".into(),
                    holds,
                    rule: rule.clone(),
                }
                };
                b.assume(cond(false));
                d.assume(cond(true));
                d.verdict = Some(state::Verdict::Drop);
                d.verdict_rule = None;
                d.path.push(state::Step {
                    table: "filter".into(),
                    chain: "KUBE-FIREWALL".into(),
                    line: 0,
                    action: "DROP (mark 0x8000; kubelet's rule, if the filter table holds it)"
                        .into(),
                    probability: None,
                    assumed: true,
                });
                dropped.push(d);
            }
        }
        done.extend(dropped);
    }

    /// The packet mark after a MARK or CONNMARK target, from `mark` and the connection's `ctmark`;
    /// None for other targets and CONNMARK options that are not modelled.
    pub fn mark_after(target: &crate::model::TargetKind, mark: u32, ctmark: u32) -> Option<u32> {
        match target {
            crate::model::TargetKind::Mark(op) => Some(op.apply(mark)),
            crate::model::TargetKind::ConnMark { args } => {
                walk::connmark(args, mark, ctmark).map(|(m, _)| m)
            }
            _ => None,
        }
    }

    /// The share of forwarded traffic carrying `mark` that mangle and nat POSTROUTING masquerade or SNATs, as
    /// the rules (with kube-proxy's standard hooks assumed where missing) decide it.
    pub fn postrouting_masquerade_share(&self, mark: u32, src: IpAddr, dst: IpAddr) -> f64 {
        let mut pkt = Packet::new(src, dst, crate::model::Protocol::Tcp, 80);
        pkt.mark = mark;
        let state = PacketState::new(&pkt);
        let mut run = Run {
            steps: 0,
            nth: None,
        };
        let mut done = Vec::new();
        let mut start = Branch::new(state);
        self.reroute(std::slice::from_mut(&mut start), false);
        // mangle runs before nat here: a MARK there can clear the bit nat tests.
        let live = self.run_tables(
            vec![start],
            &mut done,
            &["mangle", "nat"],
            "POSTROUTING",
            HookKind::Postrouting,
            &mut run,
        );
        let all: Vec<Branch> = done.into_iter().chain(live).collect();
        // What the dump cannot decide (an `-o` of an interface not named) makes worlds; the
        // share is that of the world that masquerades most, so an unknown is never a shortfall.
        let mut facts: Vec<&str> = all
            .iter()
            .flat_map(|b| b.conds.iter().map(|c| c.fact.as_str()))
            .collect();
        facts.sort_unstable();
        facts.dedup();
        facts.truncate(12);
        (0u64..1 << facts.len())
            .map(|world| {
                all.iter()
                    .filter(|b| b.pkt.masquerade)
                    .filter(|b| state::holds_in(&b.conds, &facts, world))
                    .map(|b| b.weight)
                    .sum::<f64>()
            })
            .fold(0.0, f64::max)
    }

    /// The chains a hook runs, in order: iptables' built-in chains of `tables` (in the kernel's
    /// order for the hook), and every nftables base chain on the hook, all by priority.
    fn hook_chains<'s>(
        &'s self,
        tables: &[&'static str],
        builtin: &'static str,
        hook: HookKind,
    ) -> Vec<(&'s str, &'s str)> {
        let nft_hook = match hook {
            HookKind::Prerouting => crate::model::nft::Hook::Prerouting,
            HookKind::Input => crate::model::nft::Hook::Input,
            HookKind::Forward => crate::model::nft::Hook::Forward,
            HookKind::Output => crate::model::nft::Hook::Output,
            HookKind::Postrouting => crate::model::nft::Hook::Postrouting,
        };
        let mut all: Vec<(i32, &str, &str)> = Vec::new();
        for &t in tables {
            if self.rs.table(t).is_some_and(|t| t.nft.is_none()) || self.rs.table(t).is_none() {
                all.push((iptables_priority(t, hook), t, builtin));
            }
        }
        for t in &self.rs.tables {
            if let Some(nft) = &t.nft {
                for b in nft.bases.iter().filter(|b| b.hook == nft_hook) {
                    all.push((b.priority, &t.name, &b.chain));
                }
            }
        }
        // Stable: iptables' tables keep the kernel's order among equal priorities.
        all.sort_by_key(|(p, _, _)| *p);
        all.into_iter().map(|(_, t, c)| (t, c)).collect()
    }

    fn run_tables(
        &self,
        mut live: Vec<Branch>,
        done: &mut Vec<Branch>,
        tables: &[&'static str],
        builtin: &'static str,
        hook: HookKind,
        run: &mut Run,
    ) -> Vec<Branch> {
        for (table, chain) in self.hook_chains(tables, builtin, hook) {
            if live.is_empty() {
                break;
            }
            let mut w = walk::Walk::new(self, table, chain, hook, &mut run.steps);
            w.nth = run.nth;
            // Untracked packets never see NAT.
            let (bypass, walked): (Vec<Branch>, Vec<Branch>) =
                live.into_iter().partition(|b| w.nat && b.pkt.untracked);
            live = w.run(walked);
            live.extend(bypass);
            let (stopped, go_on): (Vec<Branch>, Vec<Branch>) =
                live.into_iter().partition(|b| b.verdict.is_some());
            done.extend(stopped);
            live = go_on;
        }
        live
    }
}

/// Where iptables' tables sit on a hook, in nftables' terms.
fn iptables_priority(table: &str, hook: HookKind) -> i32 {
    match table {
        "raw" => -300,
        "mangle" => -150,
        "nat" if matches!(hook, HookKind::Prerouting | HookKind::Output) => -100,
        "nat" => 100,
        "filter" => 0,
        "security" => 50,
        _ => 0,
    }
}
