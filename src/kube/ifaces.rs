//! Which interfaces a Service's clients use: pods arrive on the pod interface, outside clients on
//! the node's uplink. Named by the user, read from the rules where they show it (kube-proxy's
//! interface-based local-traffic detector, Calico's `cali+`, the usual CNI bridges), or otherwise
//! an interface that no rule names — so another tool's `-i docker0` decides as it does on the node
//! for a packet that does not come from Docker, instead of becoming a question.

use crate::model::criterion::{Criterion, Iface};
use crate::model::{Rule, Ruleset, TargetKind};

/// An interface a probe uses, and why kptrace took it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// A concrete name (a pattern's prefix completed: `cali+` → `cali0`).
    pub name: String,
    /// Said once in a note: where the name came from.
    pub why: String,
}

/// Bridges and prefixes that CNI plugins give pod interfaces, as their rules name them.
const CNI_POD_IFACES: &[(&str, &str)] = &[
    ("cali+", "Calico"),
    ("cni0", "the CNI bridge plugin (flannel)"),
    ("cbr0", "kubenet"),
    ("weave", "Weave Net"),
    ("kube-bridge", "kube-router"),
    ("lxc+", "Cilium"),
];

fn iface_of(r: &Rule) -> impl Iterator<Item = &Iface> {
    r.matches.iter().filter_map(|m| match &m.criterion {
        Criterion::InIface(i) | Criterion::OutIface(i) => Some(i),
        _ => None,
    })
}

fn concrete(pattern: &str) -> String {
    match pattern.strip_suffix('+') {
        Some(prefix) => format!("{prefix}0"),
        None => pattern.to_string(),
    }
}

/// Rules of a chain worth reading for interfaces. kube-proxy's per-Service chains name none but
/// the local-traffic detector's (found by [`infer_pod`] from their first rules), and its long
/// dispatch chains carry the detector in every rule: their first rules tell, so a 50,000-Service
/// dump costs a few hundred rules here.
fn sample(name: &str) -> usize {
    // kube-proxy's nftables per-Service chains (`service-HASH-ns/name/tcp/p80`,
    // `endpoint-HASH-…__10.0.0.1/80`) as its iptables ones.
    let nft = name.contains('/')
        && (super::nft::split_chain_name(name).is_some() || name.starts_with("endpoint-"));
    if super::chain_hash(name).is_some() || name.starts_with("KUBE-SEP-") || nft {
        1
    } else if name.starts_with("KUBE-") {
        200
    } else {
        usize::MAX
    }
}

/// Every interface pattern the rules test.
fn patterns(rs: &Ruleset) -> Vec<Iface> {
    let mut v: Vec<Iface> = Vec::new();
    for t in &rs.tables {
        for c in &t.chains {
            let n = sample(&c.name);
            if n == 1 {
                continue;
            }
            for r in rs.rules(c).take(n) {
                for i in iface_of(r) {
                    if !v.contains(i) {
                        v.push(i.clone());
                    }
                }
            }
        }
    }
    v
}

/// The pod interface the rules show: kube-proxy's local-traffic detector (`! -i cni0` or
/// `-i veth+` on the rules that mark for masquerading), else a CNI plugin's interface.
pub fn infer_pod(rs: &Ruleset) -> Option<Chosen> {
    if let Some(nat) = rs.table("nat") {
        // The detector is on every Service's masquerade rule (in KUBE-SERVICES in older
        // releases, first in each KUBE-SVC- chain since): the first chains show it. Endpoint
        // chains never carry it.
        let kube = nat
            .chains
            .iter()
            .filter(|c| c.name.starts_with("KUBE-") && !c.name.starts_with("KUBE-SEP-"));
        for c in kube.take(64) {
            for r in rs.rules(c).take(sample(&c.name).min(200)) {
                let marks = matches!(&r.target, Some(t) if matches!(&t.kind, TargetKind::Chain(n) if &**n == "KUBE-MARK-MASQ"));
                if !marks {
                    continue;
                }
                if let Some(i) = r.matches.iter().find_map(|m| match &m.criterion {
                    Criterion::InIface(i) => Some(i),
                    _ => None,
                }) {
                    return Some(Chosen {
                        name: concrete(&i.0),
                        why: format!(
                            "kube-proxy's local-traffic detector names `{}` (nat {} line {})",
                            i.0, c.name, r.line
                        ),
                    });
                }
            }
        }
    }
    let named = patterns(rs);
    CNI_POD_IFACES.iter().find_map(|(p, who)| {
        named.iter().any(|i| &*i.0 == *p).then(|| Chosen {
            name: concrete(p),
            why: format!("the rules of {who} name `{p}`"),
        })
    })
}

/// A name that no interface test of the rules matches, from `base` (`base`, `base1`, …).
pub fn unnamed(rs: &Ruleset, base: &str) -> String {
    let named = patterns(rs);
    (0..)
        .map(|k| {
            if k == 0 {
                base.to_string()
            } else {
                format!("{base}{k}")
            }
        })
        .find(|n| !named.iter().any(|i| i.matches(n)))
        .unwrap_or_else(|| base.to_string())
}

/// The pod interface and the uplink a probe uses: the user's, the rules', or unnamed ones.
pub fn choose(rs: &Ruleset, pod: Option<&str>, uplink: Option<&str>) -> (Chosen, Chosen) {
    let pod = match pod {
        Some(p) => Chosen {
            name: concrete(p),
            why: "given".into(),
        },
        None => infer_pod(rs).unwrap_or_else(|| Chosen {
            name: unnamed(rs, "pod0"),
            why: "no rule names the pod interface (give --pod-iface)".into(),
        }),
    };
    let uplink = match uplink {
        Some(u) => Chosen {
            name: concrete(u),
            why: "given".into(),
        },
        None => Chosen {
            name: unnamed(rs, "uplink0"),
            why: "an interface no rule names (give --uplink)".into(),
        },
    };
    (pod, uplink)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(text: &str) -> Ruleset {
        crate::parse::read("t", text.as_bytes().to_vec(), None).unwrap()
    }

    #[test]
    fn the_pod_interface_comes_from_the_rules_that_show_it() {
        // kube-proxy's bridge-interface local-traffic detector.
        let detector = rs("*nat\n:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n\
             -A KUBE-SVC-AAAAAAAAAAAAAAAA ! -i cni0 -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j KUBE-MARK-MASQ\nCOMMIT\n");
        assert_eq!(infer_pod(&detector).unwrap().name, "cni0");
        // Calico's workload interfaces.
        let calico =
            rs("*filter\n:cali-FORWARD - [0:0]\n-A cali-FORWARD -i cali+ -j ACCEPT\nCOMMIT\n");
        assert_eq!(infer_pod(&calico).unwrap().name, "cali0");
        // Docker's bridge is not the pod network; a name no rule tests stands for it.
        let docker = rs("*filter\n:FORWARD DROP [0:0]\n-A FORWARD -o pod0 -j DROP\n-A FORWARD -i docker0 -j ACCEPT\nCOMMIT\n");
        assert!(infer_pod(&docker).is_none());
        assert_eq!(unnamed(&docker, "pod0"), "pod01");
        let (pod, uplink) = choose(&docker, None, Some("eth+"));
        assert_eq!((pod.name.as_str(), uplink.name.as_str()), ("pod01", "eth0"));
    }
}
