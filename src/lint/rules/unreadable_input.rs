//! # unreadable-input
//!
//! ## What it flags
//! An input kptrace cannot read: a file that cannot be opened, text that is not a rule dump, or a
//! line no iptables tool would accept (an unterminated quote, an unknown table, a rule for a chain
//! never declared). Each error is one finding at its line and column.
//!
//! ## Why it matters
//! A dump that cannot be read is not checked: in CI it must fail, visibly, beside the findings of
//! the other files, not hide them. The exit code is 2.
//!
//! ## Example
//! ```text
//! *nat
//! -A KUBE-SERVICES -m comment --comment "unterminated -j KUBE-SVC-X
//! ```
//!
//! ## Fix
//! Capture the dump again (`iptables-save > node.rules`), whole; or fix the line the finding
//! points at.

use super::prelude::*;

pub(crate) static META: Meta = Meta {
    name: "unreadable-input",
    code: "KP000",
    severity: Severity::Error,
    summary: "an input that cannot be read (made by the command, not by a check)",
    source: include_str!("unreadable_input.rs"),
    scoped: false,
};
