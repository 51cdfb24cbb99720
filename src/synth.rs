//! Synthetic kube-proxy dumps for tests and benchmarks.
//!
//! Writes what kube-proxy's iptables mode (v1.28+) writes for a cluster of N Services, either as the
//! kernel prints it back (`iptables-save`: builtin chains and hooks, normalised option order, 11
//! decimal probabilities, optional `-c` counters) or as kube-proxy hands it to `iptables-restore`
//! (its own option order, 10 decimals, no hooks). The mix of ports, endpoints and Service kinds
//! follows a large real cluster, so benchmarks and scale tests see the shapes they will meet.
//!
//! Alongside the text the generator returns the [`Cluster`] it wrote, so tests can compute the
//! expected answers independently of the parser and engine.

use crate::model::criterion::Statistic;
use data_encoding::BASE32;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// Which order options are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Order {
    /// What `iptables-save` prints: `-s/-d/-i/-o/-p` first, then modules in kernel order.
    #[default]
    Kernel,
    /// What kube-proxy writes into `iptables-restore`.
    KubeProxy,
}

/// How to build the dump.
#[derive(Clone, Debug)]
pub struct Options {
    pub services: usize,
    pub order: Order,
    /// Print `[packets:bytes]` counters as `iptables-save -c` does.
    pub counters: bool,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            services: 1000,
            order: Order::Kernel,
            counters: false,
            seed: 1,
        }
    }
}

/// The cluster's pod network: kube-proxy's `! -s <clusterCIDR>` masquerade rules test it.
pub const CLUSTER_CIDR: &str = "10.0.0.0/8";
/// The node the dump was taken on.
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 10);
/// Affinity timeout written into `-m recent --seconds`.
pub const AFFINITY_SECONDS: u32 = 10800;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One endpoint of a Service port.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// Runs on the node the dump belongs to (matters for externalTrafficPolicy Local).
    pub local: bool,
    pub chain: String,
    /// The probability text written on the rule that picks this endpoint (None for the last one).
    pub probability: Option<String>,
}

/// One port of a Service, with everything kube-proxy derived from it.
#[derive(Clone, Debug)]
pub struct Port {
    /// `ns/name:port`
    pub name: String,
    pub proto: Proto,
    pub port: u16,
    pub node_port: Option<u16>,
    /// externalTrafficPolicy Local: the port kube-proxy's health check listens on.
    pub health_check_port: Option<u16>,
    pub svc_chain: String,
    pub ext_chain: String,
    pub svl_chain: String,
    pub fw_chain: String,
    pub endpoints: Vec<Endpoint>,
    /// Probability texts of the rules in the local-endpoint chain (externalTrafficPolicy Local).
    pub local_probabilities: Vec<Option<String>>,
}

/// One Service.
#[derive(Clone, Debug)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub cluster_ip: Ipv4Addr,
    pub load_balancer_ip: Option<Ipv4Addr>,
    pub source_ranges: Vec<String>,
    pub affinity: bool,
    pub local_policy: bool,
    pub ports: Vec<Port>,
}

impl Service {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// What was generated.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub services: Vec<Service>,
    pub order: Order,
    /// Endpoint rules lose their comments above 1,000 endpoints, as kube-proxy does.
    pub large: bool,
}

/// `KUBE-SVC-…` style chain name: prefix + first 16 characters of base32(sha256(text)).
pub fn chain_name(prefix: &str, text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let encoded = BASE32.encode(&digest);
    format!("{prefix}{}", &encoded[..16])
}

/// Builds the cluster and writes the dump.
pub fn generate(opts: &Options) -> (Cluster, String) {
    let cluster = build(opts);
    let text = write(&cluster, opts);
    (cluster, text)
}

/// Draws the cluster: Service kinds, ports and endpoint counts in realistic proportions.
pub fn build(opts: &Options) -> Cluster {
    let mut rng = fastrand::Rng::with_seed(opts.seed);
    let mut services = Vec::with_capacity(opts.services);
    let mut next_pod: u32 = u32::from(Ipv4Addr::new(10, 128, 0, 2));
    let mut next_node_port: u16 = 30000;
    let mut total_endpoints = 0usize;
    for i in 0..opts.services {
        let namespace = format!("ns{}", i % 97);
        let name = format!("svc{i}");
        let cluster_ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 20, 0, 0)) + i as u32 + 1);
        let kind = rng.u32(0..100);
        // 10% NodePort, 5% LoadBalancer (a LoadBalancer also has node ports).
        let load_balancer = kind < 5;
        let node_port = kind < 15;
        let local_policy = node_port && rng.u32(0..100) < 20; // 3% of all Services
        let affinity = rng.u32(0..100) < 5;
        let no_endpoints = rng.u32(0..100) < 2;
        let load_balancer_ip = load_balancer
            .then(|| Ipv4Addr::from(u32::from(Ipv4Addr::new(203, 0, 0, 0)) + i as u32 + 1));
        let source_ranges = if load_balancer && rng.bool() {
            vec![
                format!("198.51.{}.0/24", i % 250),
                "192.0.2.0/25".to_string(),
            ]
        } else {
            Vec::new()
        };
        let nports = match rng.u32(0..100) {
            0..70 => 1,
            70..90 => 2,
            _ => rng.usize(3..=4),
        };
        let nendpoints = if no_endpoints {
            0
        } else {
            match rng.u32(0..100) {
                0..40 => 1,
                40..70 => rng.usize(2..=3),
                70..90 => rng.usize(4..=10),
                90..98 => rng.usize(11..=50),
                _ => rng.usize(51..=250),
            }
        };
        let pods: Vec<(Ipv4Addr, bool)> = (0..nendpoints)
            .map(|_| {
                let ip = Ipv4Addr::from(next_pod);
                next_pod += 1;
                (ip, rng.u32(0..3) == 0)
            })
            .collect();
        let mut ports = Vec::with_capacity(nports);
        for p in 0..nports {
            let proto = if rng.u32(0..10) == 0 {
                Proto::Udp
            } else {
                Proto::Tcp
            };
            let port = [80u16, 443, 8080, 53, 9090][p % 5] + (p / 5) as u16;
            let target_port = 8000 + port % 1000;
            let pname = format!("{namespace}/{name}:p{port}");
            let hashed = format!("{pname}{}", proto.name());
            // Node ports are unique per node; a cluster this large runs with a widened
            // `--service-node-port-range`, so allocation simply counts up.
            let np = node_port.then(|| {
                let v = next_node_port;
                next_node_port += 1;
                v
            });
            let endpoints: Vec<Endpoint> = pods
                .iter()
                .map(|&(ip, local)| Endpoint {
                    ip,
                    port: target_port,
                    local,
                    chain: chain_name("KUBE-SEP-", &format!("{hashed}{ip}:{target_port}")),
                    probability: None,
                })
                .collect();
            ports.push(Port {
                svc_chain: chain_name("KUBE-SVC-", &hashed),
                ext_chain: chain_name("KUBE-EXT-", &hashed),
                svl_chain: chain_name("KUBE-SVL-", &hashed),
                fw_chain: chain_name("KUBE-FW-", &hashed),
                name: pname,
                proto,
                port,
                node_port: np,
                health_check_port: None,
                endpoints,
                local_probabilities: Vec::new(),
            });
            total_endpoints += nendpoints;
        }
        services.push(Service {
            namespace,
            name,
            cluster_ip,
            load_balancer_ip,
            source_ranges,
            affinity,
            local_policy,
            ports,
        });
    }
    for svc in &mut services {
        for port in &mut svc.ports {
            if svc.local_policy && port.node_port.is_some() {
                port.health_check_port = Some(next_node_port);
                next_node_port += 1;
            }
            let n = port.endpoints.len();
            for (i, ep) in port.endpoints.iter_mut().enumerate() {
                ep.probability = (i + 1 < n).then(|| probability_text(n - i, opts.order));
            }
            let nlocal = port.endpoints.iter().filter(|e| e.local).count();
            port.local_probabilities = (0..nlocal)
                .map(|i| (i + 1 < nlocal).then(|| probability_text(nlocal - i, opts.order)))
                .collect();
        }
    }
    Cluster {
        services,
        order: opts.order,
        large: total_endpoints > 1000,
    }
}

/// `1/remaining` as the writer prints it: kube-proxy with 10 decimals, the kernel with 11 of
/// what it stored.
fn probability_text(remaining: usize, order: Order) -> String {
    let p = 1.0 / remaining as f64;
    match order {
        Order::KubeProxy => format!("{p:.10}"),
        Order::Kernel => Statistic::saved_probability(Statistic::threshold_of(p)),
    }
}

/// One rule before it is written in either order.
#[derive(Default)]
struct R<'a> {
    src: Option<(bool, &'a str)>,
    dst: Option<&'a str>,
    proto: Option<Proto>,
    comment: Option<&'a str>,
    /// `-m addrtype --dst-type LOCAL` / `--src-type LOCAL`
    addrtype: Option<&'a str>,
    dport: Option<u16>,
    mark: Option<(bool, &'a str)>,
    ctstate: Option<&'a str>,
    /// `-m statistic --mode random --probability p`
    probability: Option<&'a str>,
    /// `-m recent`: name and whether this is the `--set` (else the `--rcheck`).
    recent: Option<(&'a str, bool)>,
    target: &'a str,
}

struct Writer {
    out: String,
    order: Order,
    counters: bool,
    rng: fastrand::Rng,
}

impl Writer {
    fn comment(&mut self, text: &str) {
        self.out.push_str(&crate::model::print::quote(text));
    }

    fn host(&mut self, addr: &str) {
        self.out.push_str(addr);
        if self.order == Order::Kernel && !addr.contains('/') {
            self.out.push_str("/32");
        }
    }

    fn rule(&mut self, chain: &str, r: R) {
        if self.counters {
            let packets = self.rng.u64(0..5000);
            let _ = write!(self.out, "[{packets}:{}] ", packets * 60);
        }
        let _ = write!(self.out, "-A {chain}");
        match self.order {
            Order::Kernel => self.kernel(r),
            Order::KubeProxy => self.kube_proxy(r),
        }
        self.out.push('\n');
    }

    fn kernel(&mut self, r: R) {
        if let Some((neg, s)) = r.src {
            self.out.push_str(if neg { " ! -s " } else { " -s " });
            self.host(s);
        }
        if let Some(d) = r.dst {
            self.out.push_str(" -d ");
            self.host(d);
        }
        if let Some(p) = r.proto {
            let _ = write!(self.out, " -p {}", p.name());
        }
        if let Some(state) = r.ctstate {
            let _ = write!(self.out, " -m conntrack --ctstate {state}");
        }
        if let Some(c) = r.comment {
            self.out.push_str(" -m comment --comment ");
            self.comment(c);
        }
        if let Some((neg, m)) = r.mark {
            let _ = write!(
                self.out,
                " -m mark{} --mark {m}",
                if neg { " !" } else { "" }
            );
        }
        if let Some(t) = r.addrtype {
            let _ = write!(self.out, " -m addrtype {t}");
        }
        if let Some((name, set)) = r.recent {
            if set {
                let _ = write!(
                    self.out,
                    " -m recent --set --name {name} --mask 255.255.255.255 --rsource"
                );
            } else {
                let _ = write!(
                    self.out,
                    " -m recent --rcheck --seconds {AFFINITY_SECONDS} --reap --name {name} --mask 255.255.255.255 --rsource"
                );
            }
        }
        if let Some(p) = r.proto {
            if r.dport.is_some() || r.target == "DNAT" || r.recent.is_some_and(|(_, s)| s) {
                let _ = write!(self.out, " -m {}", p.name());
            }
        }
        if let Some(port) = r.dport {
            let _ = write!(self.out, " --dport {port}");
        }
        if let Some(p) = r.probability {
            let _ = write!(self.out, " -m statistic --mode random --probability {p}");
        }
        self.target(r.target);
    }

    fn kube_proxy(&mut self, r: R) {
        if let Some(state) = r.ctstate {
            let _ = write!(self.out, " -m conntrack --ctstate {state}");
        }
        if let Some(c) = r.comment {
            self.out.push_str(" -m comment --comment ");
            self.comment(c);
        }
        if let Some((neg, m)) = r.mark {
            let _ = write!(
                self.out,
                " -m mark {}--mark {m}",
                if neg { "! " } else { "" }
            );
        }
        if let Some(t) = r.addrtype {
            let _ = write!(self.out, " -m addrtype {t}");
        }
        if let Some((name, set)) = r.recent {
            if set {
                let _ = write!(self.out, " -m recent --name {name} --set");
            } else {
                let _ = write!(
                    self.out,
                    " -m recent --name {name} --rcheck --seconds {AFFINITY_SECONDS} --reap"
                );
            }
        }
        if let Some(p) = r.proto {
            let _ = write!(self.out, " -m {0} -p {0}", p.name());
        }
        if let Some(d) = r.dst {
            let _ = write!(self.out, " -d {d}");
        }
        if let Some(port) = r.dport {
            let _ = write!(self.out, " --dport {port}");
        }
        if let Some((neg, s)) = r.src {
            let _ = write!(self.out, " {}-s {s}", if neg { "! " } else { "" });
        }
        if let Some(p) = r.probability {
            let _ = write!(self.out, " -m statistic --mode random --probability {p}");
        }
        self.target(r.target);
    }

    fn target(&mut self, t: &str) {
        let _ = write!(self.out, " -j {t}");
    }

    fn chain(&mut self, name: &str, policy: &str) {
        // iptables-save -c prints counters for builtin chains only; user chains show [0:0].
        if self.counters && policy != "-" {
            let packets = self.rng.u64(0..100000);
            let _ = writeln!(self.out, ":{name} {policy} [{packets}:{}]", packets * 60);
        } else {
            let _ = writeln!(self.out, ":{name} {policy} [0:0]");
        }
    }
}

/// Writes the cluster as a dump.
pub fn write(cluster: &Cluster, opts: &Options) -> String {
    let mut w = Writer {
        out: String::with_capacity(cluster.services.len() * 2000),
        order: opts.order,
        counters: opts.counters,
        rng: fastrand::Rng::with_seed(opts.seed ^ 0x5eed),
    };
    let kernel = opts.order == Order::Kernel;
    if kernel {
        w.out
            .push_str("# Generated by iptables-save v1.8.9 (legacy) on Sun Nov 22 10:00:00 2026\n");
    }
    write_filter(&mut w, cluster, kernel);
    write_nat(&mut w, cluster, kernel);
    if kernel {
        w.out.push_str("# Completed on Sun Nov 22 10:00:00 2026\n");
        return rules_in_declaration_order(&w.out);
    }
    w.out
}

/// iptables-save writes each table's rules chain by chain, in the order it declared the chains
/// (checked against the real `iptables-save` after `iptables-restore`); rules keep their order
/// within a chain.
fn rules_in_declaration_order(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut decls: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut rules: Vec<(usize, &str)> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(d) = line.strip_prefix(':') {
            let name = d.split(' ').next().unwrap_or("");
            let n = decls.len();
            decls.insert(name, n);
            out.push_str(line);
        } else if line.starts_with("-A ") || line.starts_with('[') {
            let chain = line
                .split(' ')
                .skip_while(|w| *w != "-A")
                .nth(1)
                .unwrap_or("");
            rules.push((decls.get(chain).copied().unwrap_or(usize::MAX), line));
        } else if line.starts_with("COMMIT") {
            rules.sort_by_key(|r| r.0);
            for (_, r) in rules.drain(..) {
                out.push_str(r);
            }
            out.push_str(line);
            decls.clear();
        } else {
            out.push_str(line);
        }
    }
    out
}

fn write_filter(w: &mut Writer, cluster: &Cluster, kernel: bool) {
    w.out.push_str("*filter\n");
    if kernel {
        for b in ["INPUT", "FORWARD", "OUTPUT"] {
            w.chain(b, "ACCEPT");
        }
    }
    let mut chains = vec![
        "KUBE-EXTERNAL-SERVICES",
        "KUBE-FORWARD",
        "KUBE-NODEPORTS",
        "KUBE-PROXY-FIREWALL",
        "KUBE-SERVICES",
    ];
    if kernel {
        chains.push("KUBE-FIREWALL");
        chains.sort_unstable();
    }
    for c in &chains {
        w.chain(c, "-");
    }
    if kernel {
        let new = Some("NEW");
        let hooks: [(&str, Option<&str>, &str, &str); 9] = [
            (
                "INPUT",
                new,
                "kubernetes load balancer firewall",
                "KUBE-PROXY-FIREWALL",
            ),
            (
                "INPUT",
                None,
                "kubernetes health check service ports",
                "KUBE-NODEPORTS",
            ),
            (
                "INPUT",
                new,
                "kubernetes externally-visible service portals",
                "KUBE-EXTERNAL-SERVICES",
            ),
            (
                "FORWARD",
                new,
                "kubernetes load balancer firewall",
                "KUBE-PROXY-FIREWALL",
            ),
            (
                "FORWARD",
                None,
                "kubernetes forwarding rules",
                "KUBE-FORWARD",
            ),
            (
                "FORWARD",
                new,
                "kubernetes service portals",
                "KUBE-SERVICES",
            ),
            (
                "FORWARD",
                new,
                "kubernetes externally-visible service portals",
                "KUBE-EXTERNAL-SERVICES",
            ),
            (
                "OUTPUT",
                new,
                "kubernetes load balancer firewall",
                "KUBE-PROXY-FIREWALL",
            ),
            ("OUTPUT", new, "kubernetes service portals", "KUBE-SERVICES"),
        ];
        for (chain, ctstate, comment, target) in hooks {
            w.rule(
                chain,
                R {
                    ctstate,
                    comment: Some(comment),
                    target,
                    ..R::default()
                },
            );
        }
        w.rule(
            "INPUT",
            R {
                target: "KUBE-FIREWALL",
                ..R::default()
            },
        );
        w.rule(
            "OUTPUT",
            R {
                target: "KUBE-FIREWALL",
                ..R::default()
            },
        );
    }
    // Filter rules of each Service, grouped by chain as kube-proxy's buffers group them.
    let mut nodeports = Vec::new();
    let mut services = Vec::new();
    let mut external = Vec::new();
    let mut firewall = Vec::new();
    for svc in &cluster.services {
        let cip = svc.cluster_ip.to_string();
        let lb = svc.load_balancer_ip.map(|ip| ip.to_string());
        for port in &svc.ports {
            let local_eps = port.endpoints.iter().filter(|e| e.local).count();
            if let Some(hc) = port.health_check_port {
                nodeports.push((
                    format!("{} health check node port", port.name),
                    None,
                    hc,
                    Proto::Tcp,
                    "ACCEPT",
                ));
            }
            if port.endpoints.is_empty() {
                services.push((
                    format!("{} has no endpoints", port.name),
                    Some(cip.clone()),
                    port.port,
                    port.proto,
                    "REJECT",
                ));
                if let Some(ip) = &lb {
                    external.push((
                        format!("{} has no endpoints", port.name),
                        Some(ip.clone()),
                        port.port,
                        port.proto,
                        "REJECT",
                    ));
                }
                if let Some(np) = port.node_port {
                    external.push((
                        format!("{} has no endpoints", port.name),
                        Some(String::from("LOCAL")),
                        np,
                        port.proto,
                        "REJECT",
                    ));
                }
            } else if svc.local_policy && local_eps == 0 {
                if let Some(ip) = &lb {
                    external.push((
                        format!("{} has no local endpoints", port.name),
                        Some(ip.clone()),
                        port.port,
                        port.proto,
                        "DROP",
                    ));
                }
                if let Some(np) = port.node_port {
                    external.push((
                        format!("{} has no local endpoints", port.name),
                        Some(String::from("LOCAL")),
                        np,
                        port.proto,
                        "DROP",
                    ));
                }
            }
            if let (Some(ip), false) = (&lb, svc.source_ranges.is_empty()) {
                if !port.endpoints.is_empty() {
                    firewall.push((
                        format!("{} traffic not accepted by {}", port.name, port.fw_chain),
                        Some(ip.clone()),
                        port.port,
                        port.proto,
                        "DROP",
                    ));
                }
            }
        }
    }
    let emit =
        |w: &mut Writer, chain: &str, rows: &[(String, Option<String>, u16, Proto, &str)]| {
            for (comment, dst, port, proto, target) in rows {
                let local = dst.as_deref() == Some("LOCAL");
                w.rule(
                    chain,
                    R {
                        comment: Some(comment),
                        dst: dst.as_deref().filter(|_| !local),
                        addrtype: local.then_some("--dst-type LOCAL"),
                        proto: Some(*proto),
                        dport: Some(*port),
                        target: if *target == "REJECT" && kernel {
                            "REJECT --reject-with icmp-port-unreachable"
                        } else {
                            target
                        },
                        ..R::default()
                    },
                );
            }
        };
    emit(w, "KUBE-EXTERNAL-SERVICES", &external);
    if kernel {
        w.rule(
            "KUBE-FIREWALL",
            R {
                src: Some((true, "127.0.0.0/8")),
                dst: Some("127.0.0.0/8"),
                comment: Some("block incoming localnet connections"),
                ctstate: None,
                target: "DROP",
                ..R::default()
            },
        );
    }
    w.rule(
        "KUBE-FORWARD",
        R {
            ctstate: Some("INVALID"),
            target: "DROP",
            ..R::default()
        },
    );
    w.rule(
        "KUBE-FORWARD",
        R {
            comment: Some("kubernetes forwarding rules"),
            mark: Some((false, "0x4000/0x4000")),
            target: "ACCEPT",
            ..R::default()
        },
    );
    w.rule(
        "KUBE-FORWARD",
        R {
            comment: Some("kubernetes forwarding conntrack rule"),
            ctstate: Some("RELATED,ESTABLISHED"),
            target: "ACCEPT",
            ..R::default()
        },
    );
    emit(w, "KUBE-NODEPORTS", &nodeports);
    emit(w, "KUBE-PROXY-FIREWALL", &firewall);
    emit(w, "KUBE-SERVICES", &services);
    w.out.push_str("COMMIT\n");
}

fn write_nat(w: &mut Writer, cluster: &Cluster, kernel: bool) {
    w.out.push_str("*nat\n");
    if kernel {
        for b in ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"] {
            w.chain(b, "ACCEPT");
        }
    }
    let mut chains: Vec<&str> = vec![
        "KUBE-MARK-MASQ",
        "KUBE-NODEPORTS",
        "KUBE-POSTROUTING",
        "KUBE-SERVICES",
    ];
    for svc in &cluster.services {
        for port in &svc.ports {
            if port.endpoints.is_empty() {
                continue;
            }
            chains.push(&port.svc_chain);
            if port.node_port.is_some() || svc.load_balancer_ip.is_some() {
                chains.push(&port.ext_chain);
            }
            // kube-proxy writes the local-endpoint chain only when this node has local endpoints.
            if svc.local_policy && port.endpoints.iter().any(|e| e.local) {
                chains.push(&port.svl_chain);
            }
            if !svc.source_ranges.is_empty() {
                chains.push(&port.fw_chain);
            }
            chains.extend(port.endpoints.iter().map(|e| e.chain.as_str()));
        }
    }
    if kernel {
        chains.sort_unstable();
    }
    chains.dedup();
    for c in &chains {
        w.chain(c, "-");
    }
    if kernel {
        w.rule(
            "PREROUTING",
            R {
                comment: Some("kubernetes service portals"),
                target: "KUBE-SERVICES",
                ..R::default()
            },
        );
        w.rule(
            "OUTPUT",
            R {
                comment: Some("kubernetes service portals"),
                target: "KUBE-SERVICES",
                ..R::default()
            },
        );
        w.rule(
            "POSTROUTING",
            R {
                comment: Some("kubernetes postrouting rules"),
                target: "KUBE-POSTROUTING",
                ..R::default()
            },
        );
    }
    let mark_masq = if kernel {
        "MARK --set-xmark 0x4000/0x4000"
    } else {
        "MARK --or-mark 0x4000"
    };
    let unmark = if kernel {
        "MARK --set-xmark 0x4000/0x0"
    } else {
        "MARK --xor-mark 0x4000"
    };
    let masquerade = "MASQUERADE --random-fully";

    // KUBE-NODEPORTS, then KUBE-SERVICES, then per-Service chains: kube-proxy's write order.
    for svc in &cluster.services {
        for port in &svc.ports {
            if let (Some(np), false) = (port.node_port, port.endpoints.is_empty()) {
                w.rule(
                    "KUBE-NODEPORTS",
                    R {
                        comment: Some(&port.name),
                        proto: Some(port.proto),
                        dport: Some(np),
                        target: &port.ext_chain,
                        ..R::default()
                    },
                );
            }
        }
    }
    for svc in &cluster.services {
        let cip = svc.cluster_ip.to_string();
        let lb = svc.load_balancer_ip.map(|ip| ip.to_string());
        for port in &svc.ports {
            if port.endpoints.is_empty() {
                continue;
            }
            let c = format!("{} cluster IP", port.name);
            w.rule(
                "KUBE-SERVICES",
                R {
                    comment: Some(&c),
                    proto: Some(port.proto),
                    dst: Some(&cip),
                    dport: Some(port.port),
                    target: &port.svc_chain,
                    ..R::default()
                },
            );
            if let Some(ip) = &lb {
                let c = format!("{} loadbalancer IP", port.name);
                let target = if svc.source_ranges.is_empty() {
                    &port.ext_chain
                } else {
                    &port.fw_chain
                };
                w.rule(
                    "KUBE-SERVICES",
                    R {
                        comment: Some(&c),
                        proto: Some(port.proto),
                        dst: Some(ip),
                        dport: Some(port.port),
                        target,
                        ..R::default()
                    },
                );
            }
        }
    }
    w.rule(
        "KUBE-SERVICES",
        R {
            comment: Some(
                "kubernetes service nodeports; NOTE: this must be the last rule in this chain",
            ),
            addrtype: Some("--dst-type LOCAL"),
            target: "KUBE-NODEPORTS",
            ..R::default()
        },
    );
    for svc in &cluster.services {
        let cip = svc.cluster_ip.to_string();
        for port in svc.ports.iter().filter(|p| !p.endpoints.is_empty()) {
            write_port_chains(w, cluster, svc, port, &cip);
        }
    }
    w.rule(
        "KUBE-MARK-MASQ",
        R {
            target: mark_masq,
            ..R::default()
        },
    );
    w.rule(
        "KUBE-POSTROUTING",
        R {
            mark: Some((true, "0x4000/0x4000")),
            target: "RETURN",
            ..R::default()
        },
    );
    w.rule(
        "KUBE-POSTROUTING",
        R {
            target: unmark,
            ..R::default()
        },
    );
    w.rule(
        "KUBE-POSTROUTING",
        R {
            comment: Some("kubernetes service traffic requiring SNAT"),
            target: masquerade,
            ..R::default()
        },
    );
    w.out.push_str("COMMIT\n");
}

fn write_port_chains(w: &mut Writer, cluster: &Cluster, svc: &Service, port: &Port, cip: &str) {
    let external = port.node_port.is_some() || svc.load_balancer_ip.is_some();
    if external {
        let ext = &port.ext_chain;
        if svc.local_policy {
            let c1 = format!("pod traffic for {} external destinations", port.name);
            w.rule(
                ext,
                R {
                    comment: Some(&c1),
                    src: Some((false, CLUSTER_CIDR)),
                    target: &port.svc_chain,
                    ..R::default()
                },
            );
            let c2 = format!(
                "masquerade LOCAL traffic for {} external destinations",
                port.name
            );
            w.rule(
                ext,
                R {
                    comment: Some(&c2),
                    addrtype: Some("--src-type LOCAL"),
                    target: "KUBE-MARK-MASQ",
                    ..R::default()
                },
            );
            let c3 = format!(
                "route LOCAL traffic for {} external destinations",
                port.name
            );
            w.rule(
                ext,
                R {
                    comment: Some(&c3),
                    addrtype: Some("--src-type LOCAL"),
                    target: &port.svc_chain,
                    ..R::default()
                },
            );
            if port.endpoints.iter().any(|e| e.local) {
                w.rule(
                    ext,
                    R {
                        target: &port.svl_chain,
                        ..R::default()
                    },
                );
            }
        } else {
            let c = format!("masquerade traffic for {} external destinations", port.name);
            w.rule(
                ext,
                R {
                    comment: Some(&c),
                    target: "KUBE-MARK-MASQ",
                    ..R::default()
                },
            );
            w.rule(
                ext,
                R {
                    target: &port.svc_chain,
                    ..R::default()
                },
            );
        }
    }
    if svc.load_balancer_ip.is_some() && !svc.source_ranges.is_empty() {
        let c = format!("{} loadbalancer IP", port.name);
        for range in &svc.source_ranges {
            w.rule(
                &port.fw_chain,
                R {
                    comment: Some(&c),
                    src: Some((false, range)),
                    target: &port.ext_chain,
                    ..R::default()
                },
            );
        }
    }
    // KUBE-SVC-: off-cluster masquerade, affinity checks, then the statistic ladder.
    let c = format!("{} cluster IP", port.name);
    w.rule(
        &port.svc_chain,
        R {
            comment: Some(&c),
            proto: Some(port.proto),
            dst: Some(cip),
            dport: Some(port.port),
            src: Some((true, CLUSTER_CIDR)),
            target: "KUBE-MARK-MASQ",
            ..R::default()
        },
    );
    let eps: Vec<&Endpoint> = port.endpoints.iter().collect();
    write_ladder(w, cluster, svc, port, &port.svc_chain, &eps, |e| {
        e.probability.as_deref()
    });
    if svc.local_policy {
        let local: Vec<&Endpoint> = port.endpoints.iter().filter(|e| e.local).collect();
        if !local.is_empty() {
            let probs = &port.local_probabilities;
            let idx = |e: &Endpoint| local.iter().position(|l| l.chain == e.chain).unwrap();
            write_ladder(w, cluster, svc, port, &port.svl_chain, &local, |e| {
                probs[idx(e)].as_deref()
            });
        }
    }
    for ep in &port.endpoints {
        let comment = (!cluster.large).then_some(port.name.as_str());
        let ip = ep.ip.to_string();
        w.rule(
            &ep.chain,
            R {
                comment,
                src: Some((false, &ip)),
                target: "KUBE-MARK-MASQ",
                ..R::default()
            },
        );
        let dnat = format!("DNAT --to-destination {ip}:{}", ep.port);
        w.rule(
            &ep.chain,
            R {
                comment,
                proto: Some(port.proto),
                recent: svc.affinity.then_some((ep.chain.as_str(), true)),
                target: &dnat,
                ..R::default()
            },
        );
    }
}

fn write_ladder<'e>(
    w: &mut Writer,
    cluster: &Cluster,
    svc: &Service,
    port: &Port,
    chain: &str,
    eps: &[&'e Endpoint],
    probability: impl Fn(&'e Endpoint) -> Option<&'e str>,
) {
    let comments: Vec<String> = eps
        .iter()
        .map(|e| format!("{} -> {}:{}", port.name, e.ip, e.port))
        .collect();
    let comment = |i: usize| (!cluster.large).then_some(comments[i].as_str());
    if svc.affinity {
        for (i, e) in eps.iter().enumerate() {
            w.rule(
                chain,
                R {
                    comment: comment(i),
                    recent: Some((e.chain.as_str(), false)),
                    target: &e.chain,
                    ..R::default()
                },
            );
        }
    }
    for (i, e) in eps.iter().enumerate() {
        w.rule(
            chain,
            R {
                comment: comment(i),
                probability: probability(e),
                target: &e.chain,
                ..R::default()
            },
        );
    }
}
