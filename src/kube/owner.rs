//! Who writes a chain: kube-proxy (any proxy mode), kubelet, or another tool on the node, told by
//! the names each one uses.
//!
//! `lint` judges kube-proxy's rules and what stands in the path of Service traffic; a finding
//! about another tool's chain that touches no Service is said as a note by default.

/// The writer of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// kube-proxy, in the mode named.
    KubeProxy(Mode),
    /// kubelet (`KUBE-MARK-DROP`, `KUBE-FIREWALL`, its canary, hostports).
    Kubelet,
    /// Another tool, named when its chain names tell.
    Other(Option<&'static str>),
}

/// kube-proxy's proxy modes, as their chains show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Chains every mode shares (`KUBE-SERVICES`, `KUBE-POSTROUTING`, `KUBE-MARK-MASQ`…).
    Any,
    Iptables,
    Ipvs,
    Userspace,
    /// Its nftables table (`service-HASH-ns/name/…`, `mark-for-masquerade`…).
    Nftables,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Any => "any",
            Mode::Iptables => "iptables",
            Mode::Ipvs => "IPVS",
            Mode::Userspace => "userspace",
            Mode::Nftables => "nftables",
        }
    }
}

/// Prefixes of other tools' chains, and the tool.
const OTHERS: &[(&str, &str)] = &[
    ("KUBE-ROUTER-", "kube-router"),
    ("KUBE-POD-FW-", "kube-router"),
    ("KUBE-NWPLCY-", "kube-router"),
    ("KUBE-SRC-", "kube-router"),
    ("KUBE-DST-", "kube-router"),
    ("DOCKER", "Docker"),
    ("LIBVIRT_", "libvirt"),
    ("ufw-", "ufw"),
    ("ufw6-", "ufw"),
    ("FLANNEL", "flannel"),
    ("cali-", "Calico"),
    ("CILIUM_", "Cilium"),
    ("OLD_CILIUM_", "Cilium"),
    ("ISTIO_", "Istio"),
    ("CNI-", "a CNI plugin"),
    ("WEAVE", "Weave Net"),
    ("ANTREA-", "Antrea"),
    ("IN_", "firewalld"),
    ("FWD_", "firewalld"),
    ("FWDI_", "firewalld"),
    ("FWDO_", "firewalld"),
    ("OUTPUT_direct", "firewalld"),
    ("INPUT_direct", "firewalld"),
    ("FORWARD_direct", "firewalld"),
    ("PREROUTING_", "firewalld"),
    ("POSTROUTING_", "firewalld"),
    ("POST_", "firewalld"),
    ("PRE_", "firewalld"),
    ("zone_", "OpenWrt"),
    ("delegate_", "OpenWrt"),
    ("forwarding_", "OpenWrt"),
    ("input_", "OpenWrt"),
    ("output_", "OpenWrt"),
    ("postrouting_", "OpenWrt"),
    ("prerouting_", "OpenWrt"),
    ("syn_flood", "OpenWrt"),
    ("MINIUPNPD", "miniupnpd"),
    ("reject", "OpenWrt"),
];

impl Owner {
    /// The writer of chain `name`. Built-in chains are everyone's: `Other(None)`.
    pub fn of(name: &str) -> Owner {
        if let Some((_, tool)) = OTHERS.iter().find(|(p, _)| name.starts_with(p)) {
            return Owner::Other(Some(tool));
        }
        match name {
            "KUBE-MARK-DROP" | "KUBE-FIREWALL" | "KUBE-KUBELET-CANARY" | "KUBE-HOSTPORTS" => {
                return Owner::Kubelet
            }
            "KUBE-SERVICES"
            | "KUBE-POSTROUTING"
            | "KUBE-MARK-MASQ"
            | "KUBE-NODEPORTS"
            | "KUBE-PROXY-CANARY"
            | "KUBE-FORWARD"
            | "KUBE-EXTERNAL-SERVICES"
            | "KUBE-PROXY-FIREWALL" => return Owner::KubeProxy(Mode::Any),
            "KUBE-LOAD-BALANCER"
            | "KUBE-NODE-PORT"
            | "KUBE-IPVS-FILTER"
            | "KUBE-IPVS-OUT-FILTER"
            | "KUBE-SOURCE-RANGES-FIREWALL"
            | "KUBE-LOOP-BACK" => return Owner::KubeProxy(Mode::Ipvs),
            _ => {}
        }
        // kube-proxy's nftables chains: per-Service ones carry `ns/name/proto/port`.
        let nft_prefix = ["service-", "external-", "local-", "firewall-", "endpoint-"]
            .iter()
            .any(|p| name.starts_with(p));
        if (nft_prefix && name.contains('/'))
            || matches!(
                name,
                "mark-for-masquerade"
                    | "masquerading"
                    | "reject-chain"
                    | "cluster-ips-check"
                    | "firewall-check"
                    | "nodeport-endpoints-check"
                    | "service-endpoints-check"
                    | "endpoints-check"
            )
        {
            return Owner::KubeProxy(Mode::Nftables);
        }
        if name.starts_with("KUBE-HP-") {
            return Owner::Kubelet;
        }
        if name.starts_with("KUBE-PORTALS-") || name.starts_with("KUBE-NODEPORT-") {
            return Owner::KubeProxy(Mode::Userspace);
        }
        if super::SERVICE_CHAIN_PREFIXES
            .iter()
            .any(|p| name.starts_with(p))
        {
            return Owner::KubeProxy(Mode::Iptables);
        }
        if name.starts_with("KUBE-") {
            // A KUBE- chain of no known family: kube-proxy's or kubelet's of another version.
            return Owner::KubeProxy(Mode::Any);
        }
        Owner::Other(None)
    }

    /// kube-proxy's or kubelet's.
    pub fn is_kube(self) -> bool {
        !matches!(self, Owner::Other(_))
    }
}

/// kube-proxy's ipsets (IPVS mode), as `-m set --match-set NAME` names them.
pub fn is_ipvs_set(name: &str) -> bool {
    name.starts_with("KUBE-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tell_the_writer() {
        assert_eq!(Owner::of("KUBE-SVC-ABC"), Owner::KubeProxy(Mode::Iptables));
        assert_eq!(
            Owner::of("KUBE-LOAD-BALANCER"),
            Owner::KubeProxy(Mode::Ipvs)
        );
        assert_eq!(Owner::of("KUBE-MARK-DROP"), Owner::Kubelet);
        assert_eq!(
            Owner::of("KUBE-ROUTER-FORWARD"),
            Owner::Other(Some("kube-router"))
        );
        assert_eq!(Owner::of("ufw-before-input"), Owner::Other(Some("ufw")));
        assert_eq!(Owner::of("FORWARD"), Owner::Other(None));
        assert_eq!(
            Owner::of("endpoint-ABCDEFGH-ns/svc/tcp/http__10.0.0.1/80"),
            Owner::KubeProxy(Mode::Nftables)
        );
        assert_eq!(
            Owner::of("mark-for-masquerade"),
            Owner::KubeProxy(Mode::Nftables)
        );
        assert!(!Owner::of("DOCKER-USER").is_kube());
    }
}
