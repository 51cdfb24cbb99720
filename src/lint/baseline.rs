//! Baselines: findings a team has looked at and accepted for a known-good dump.
//!
//! A baseline file is JSON, `{"version":1,"findings":["rule|chain|rule text", …]}`, written by
//! `kptrace lint --write-baseline FILE` and read by `--baseline FILE`. Fingerprints leave out line
//! numbers so that adding a Service elsewhere does not revive every accepted finding.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Baseline {
    pub version: u32,
    pub findings: BTreeSet<String>,
}

impl Baseline {
    pub fn new(findings: impl IntoIterator<Item = String>) -> Baseline {
        Baseline {
            version: 1,
            findings: findings.into_iter().collect(),
        }
    }

    pub fn contains(&self, fingerprint: &str) -> bool {
        self.findings.contains(fingerprint)
    }
}
