//! What kptrace knows of one Service port: its entry points, endpoints and chains.

use crate::model::{ChainName, Protocol};
use serde::Serialize;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    ClusterIp,
    NodePort,
    ExternalIp,
    LoadBalancer,
}

impl EntryKind {
    pub fn label(self) -> &'static str {
        match self {
            EntryKind::ClusterIp => "cluster IP",
            EntryKind::NodePort => "NodePort",
            EntryKind::ExternalIp => "external IP",
            EntryKind::LoadBalancer => "load balancer",
        }
    }
}

/// A way into the Service: an address and port a client sends to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    /// None for a NodePort (any node address).
    pub address: Option<IpAddr>,
    pub port: u16,
    pub protocol: Option<Protocol>,
    /// The rule that leads in: its chain (KUBE-SERVICES, KUBE-NODEPORTS, KUBE-EXTERNAL-SERVICES)
    /// and line.
    pub chain: &'static str,
    pub line: u32,
    /// The chain the entry rule jumps to (KUBE-SVC-, KUBE-EXT-, KUBE-FW-…).
    pub target: String,
}

impl Entry {
    /// An entry point read from the rule at `line` of `chain`; a NodePort has no address of its
    /// own (it is every node address), whatever the rule's destination.
    pub fn read(
        kind: EntryKind,
        address: Option<IpAddr>,
        port: u16,
        protocol: Option<Protocol>,
        chain: &'static str,
        line: u32,
        target: String,
    ) -> Entry {
        Entry {
            kind,
            address: if kind == EntryKind::NodePort {
                None
            } else {
                address
            },
            port,
            protocol,
            chain,
            line,
            target,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The endpoint chain (KUBE-SEP-…): the name the rule set holds, shared rather than copied
    /// (a large dump has half a million endpoints).
    pub chain: ChainName,
    /// `ip:port` from its DNAT rule, or from the `-> ip:port` comment when the chain is not in the
    /// input. Not looked up by a catalogue of the whole dump ([`super::Catalog::build_resolved`]),
    /// which counts endpoints without holding their addresses. Boxed rather than a `String`: a
    /// large dump's half a million endpoints are eight bytes smaller each.
    pub address: Option<Box<str>>,
    /// The address came from a comment only: the DNAT rule was not in the input.
    pub from_comment: bool,
    /// Packets its DNAT rule counted (new connections), when the input has counters.
    pub packets: Option<u64>,
}

/// One port of one Service, as the rules show it.
#[derive(Clone, Debug, Default)]
pub struct ServicePort {
    /// `ns/name`, when comments name it.
    pub service: Option<String>,
    pub port_name: Option<String>,
    pub protocol: Option<Protocol>,
    /// What groups the chains of this port: the hash of hashed chain names, or a chain name.
    pub key: String,
    pub svc_chain: Option<String>,
    pub ext_chain: Option<String>,
    pub svl_chain: Option<String>,
    pub fw_chain: Option<String>,
    pub xlb_chain: Option<String>,
    pub entries: Vec<Entry>,
    pub endpoints: Vec<Endpoint>,
    /// Endpoints on this node (of KUBE-SVL-/KUBE-XLB-), for externalTrafficPolicy/internalTrafficPolicy Local.
    pub local_endpoints: Vec<Endpoint>,
    /// externalTrafficPolicy Local: external traffic only reaches endpoints on this node.
    pub external_local: bool,
    /// Session affinity timeout (seconds), from `-m recent --rcheck --seconds`.
    pub affinity_seconds: Option<u32>,
    /// A filter rule that rejects/drops this Service's traffic because it has no (local) endpoints: (chain, line, comment tail).
    pub no_endpoint_rules: Vec<(String, u32, String)>,
}

impl ServicePort {
    /// `ns/name:port` or, for an unnamed Service, its first entry `ip:port`.
    pub fn display_name(&self) -> String {
        match (&self.service, &self.port_name) {
            (Some(s), Some(p)) => format!("{s}:{p}"),
            (Some(s), None) => s.clone(),
            (None, _) => self
                .cluster_ip()
                .map(|(ip, port)| crate::kube::host_port(ip, port))
                .or_else(|| self.svc_chain.clone())
                .unwrap_or_else(|| self.key.clone()),
        }
    }

    /// The chains whose rules make up its endpoints: SVC, EXT, SVL and XLB.
    pub fn chains(&self) -> [Option<&str>; 4] {
        [
            self.svc_chain.as_deref(),
            self.ext_chain.as_deref(),
            self.svl_chain.as_deref(),
            self.xlb_chain.as_deref(),
        ]
    }

    /// Every chain of its own: SVC, EXT, SVL, FW and XLB, those it has.
    pub fn own_chains(&self) -> impl Iterator<Item = &str> {
        [
            &self.svc_chain,
            &self.ext_chain,
            &self.svl_chain,
            &self.fw_chain,
            &self.xlb_chain,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
    }

    /// The chain traffic from outside enters: KUBE-EXT (v1.24+) or KUBE-XLB (before).
    pub fn external_chain(&self) -> Option<&str> {
        self.ext_chain.as_deref().or(self.xlb_chain.as_deref())
    }

    /// Whether a filter rule drops or rejects the port's traffic because it has no endpoints
    /// (`local`: no endpoints on this node, kube-proxy's "has no local endpoints" rule for
    /// externalTrafficPolicy Local).
    pub fn no_endpoints_rule(&self, local: bool) -> bool {
        self.no_endpoint_rules
            .iter()
            .any(|(_, _, tail)| tail.contains("no local endpoints") == local)
    }

    pub fn cluster_ip(&self) -> Option<(IpAddr, u16)> {
        self.entries
            .iter()
            .find(|e| e.kind == EntryKind::ClusterIp)
            .and_then(|e| Some((e.address?, e.port)))
    }

    pub fn node_port(&self) -> Option<u16> {
        self.entries
            .iter()
            .find(|e| e.kind == EntryKind::NodePort)
            .map(|e| e.port)
    }

    /// Packets counted by each endpoint's DNAT rule (in the order of `endpoints`, then the local
    /// endpoints not among them), when the input carries counters (`iptables-save -c`, `-L -v`).
    /// nat rules see only the first packet of a connection, so these are new connections.
    pub fn counted_packets(&self) -> Option<Vec<(&Endpoint, u64)>> {
        // An endpoint chain counts the same packets wherever it is listed: one without a count
        // leaves the port uncounted, which most ports of a dump without counters are, and their
        // chains' names need not be read.
        let mut all = self.endpoints.iter().chain(&self.local_endpoints);
        if all.clone().next().is_none() || all.any(|e| e.packets.is_none()) {
            return None;
        }
        let mut seen = std::collections::HashSet::new();
        self.endpoints
            .iter()
            .chain(&self.local_endpoints)
            .filter(|e| seen.insert(e.chain.as_str()))
            .map(|e| Some((e, e.packets?)))
            .collect()
    }

    pub fn addresses(&self, kind: EntryKind) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self
            .entries
            .iter()
            .filter(|e| e.kind == kind)
            .filter_map(|e| e.address)
            .collect();
        v.dedup();
        v
    }
}
