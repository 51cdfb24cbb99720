//! The lint rules, one file each. The order here is the order of `--explain` listings and docs.

mod chain_loop;
mod dangling_jump;
mod duplicate_rule;
mod empty_service_chain;
mod local_traffic_policy_no_endpoints;
mod missing_drop;
mod missing_hairpin_masquerade;
mod missing_masquerade;
mod nodeports_not_last;
mod orphan_chain;
mod probability_leak;
mod uneven_distribution;
mod unknown_module;
mod unreachable_rule;

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
];

/// The rule of that name or code.
pub fn find(name: &str) -> Option<&'static dyn Rule> {
    ALL.iter()
        .copied()
        .find(|r| r.meta().name == name || r.meta().code.eq_ignore_ascii_case(name))
}
