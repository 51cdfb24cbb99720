//! The rule-set model that every front end builds and every command reads.
//!
//! `parse/` (and later front ends: command scripts, listings, nftables) produce a [`Ruleset`];
//! `graph/`, `engine/`, `kube/` and `lint/` only ever see this model, never input text.

pub mod chain;
pub mod chain_name;
pub mod criterion;
pub mod nft;
pub mod print;
pub mod rule;
pub mod rule_list;
pub mod ruleset;
pub mod share;
pub mod source;
pub mod table;
pub mod target;

pub use chain::{Chain, ChainOrigin, Policy, RuleSlot};
pub use chain_name::ChainName;
pub use criterion::{Criterion, Match, Protocol};
pub use rule::{Counters, Rule};
pub use rule_list::{RuleList, RunReader, RunSource};
pub use ruleset::{Cut, Family, InputFormat, Note, Ruleset, Visit};
pub use source::{Source, Span};
pub use table::{ChainId, Table};
pub use target::{Target, TargetKind};
