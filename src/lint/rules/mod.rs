//! The lint rules, one file each. The order here is the order of `--explain` listings and docs.

mod affinity_inconsistent;
mod chain_loop;
mod dangling_jump;
mod duplicate_rule;
mod empty_service_chain;
mod firewall_drops_everything;
mod forward_policy_drop;
mod iptables_version_skew;
mod local_traffic_policy_no_endpoints;
mod mark_collision;
mod missing_drop;
mod missing_hairpin_masquerade;
mod missing_masquerade;
mod mixed_backends;
mod no_kube_proxy_rules;
mod nodeports_not_last;
mod orphan_chain;
mod probability_leak;
mod proxy_mode_leftovers;
mod third_party_kube_mark_jump;
mod uneven_distribution;
mod unknown_module;
mod unreachable_rule;
mod unreadable_input;

/// Shared imports of the rule files.
mod prelude {
    pub use crate::lint::chain_context::ChainContext;
    pub use crate::lint::context::{is_service_chain, Context};
    pub use crate::lint::finding::{Finding, Meta, Severity};
    pub use crate::lint::Rule;
    pub use crate::model::criterion::Criterion;
    pub use crate::model::{Rule as IptRule, TargetKind};
}

use super::Rule;

pub static ALL: &[&dyn Rule] = &[
    &missing_masquerade::MissingMasquerade,
    &missing_hairpin_masquerade::MissingHairpinMasquerade,
    &missing_drop::MissingDrop,
    &dangling_jump::DanglingJump,
    &chain_loop::ChainLoop,
    &unreachable_rule::UnreachableRule,
    &probability_leak::ProbabilityLeak,
    &uneven_distribution::UnevenDistribution,
    &empty_service_chain::EmptyServiceChain,
    &orphan_chain::OrphanChain,
    &nodeports_not_last::NodeportsNotLast,
    &duplicate_rule::DuplicateRule,
    &local_traffic_policy_no_endpoints::LocalTrafficPolicyNoEndpoints,
    &unknown_module::UnknownModule,
    &forward_policy_drop::ForwardPolicyDrop,
    &firewall_drops_everything::FirewallDropsEverything,
    &mixed_backends::MixedBackends,
    &no_kube_proxy_rules::NoKubeProxyRules,
    &proxy_mode_leftovers::ProxyModeLeftovers,
    &mark_collision::MarkCollision,
    &affinity_inconsistent::AffinityInconsistent,
    &third_party_kube_mark_jump::ThirdPartyKubeMarkJump,
    &iptables_version_skew::IptablesVersionSkew,
];

/// Findings that compare dumps given together (two backends of one node), with the index of the
/// dump each belongs to.
pub fn across(sets: &[&crate::model::Ruleset]) -> Vec<(usize, super::Finding)> {
    mixed_backends::across(sets)
}

/// The rule of that name or code.
pub fn find(name: &str) -> Option<&'static dyn Rule> {
    ALL.iter()
        .copied()
        .find(|r| r.meta().name == name || r.meta().code.eq_ignore_ascii_case(name))
}

/// `unreadable-input`: what the command reports for an input it cannot read. It has no check of
/// its own, so it is not in [`ALL`].
pub fn unreadable_input() -> &'static super::Meta {
    &unreadable_input::META
}

/// Every rule's identity, the command's own `unreadable-input` first: what docs, `--list-rules`,
/// `--explain` and SARIF list.
pub fn metas() -> impl Iterator<Item = &'static super::Meta> {
    std::iter::once(unreadable_input()).chain(ALL.iter().map(|r| r.meta()))
}

/// The rule identity of that name or code, `unreadable-input` included.
pub fn find_meta(name: &str) -> Option<&'static super::Meta> {
    metas().find(|m| m.name == name || m.code.eq_ignore_ascii_case(name))
}
