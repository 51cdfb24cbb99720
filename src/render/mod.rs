//! Output: human tables, JSON, and the shared pieces both use.

/// The version of the JSON outputs' schema (docs/json.md). Fields are only ever added within a
/// version; a rename or removal would make it 2.
pub const SCHEMA_VERSION: u32 = 1;

pub mod conditions;
pub mod dot;
pub mod lint;
pub mod ls;
pub mod mermaid;
pub mod picture;
pub mod style;
pub mod svc;
pub mod trace;
