//! Output: human tables, JSON, and the shared pieces both use.

pub mod conditions;
pub mod dot;
pub mod lint;
pub mod ls;
pub mod mermaid;
pub mod style;
pub mod svc;
pub mod trace;
