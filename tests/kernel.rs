//! The kernel is the judge: load a dump into a network namespace with the real `iptables-restore`,
//! send bounded bursts of UDP datagrams through it, read the DNAT and SNAT decisions from
//! `conntrack -L`, and compare them with kptrace's trace of the same packet.
//!
//! Topology per case (all namespaces are created here and deleted afterwards):
//! `client` —veth— `node` (the dump, forwarding on) —veth— `pods` (every endpoint address).
//! Shares are compared with a binomial bound of 5 standard deviations (3,000 datagrams: 1/3 and 0.30
//! are 4.1σ apart at 0.30, so a wrong probability still fails), masquerading and drops exactly.
//! Without root (or without `ip netns`), the tests say loudly that they were skipped.

mod common;

use common::sh;

use kptrace::engine::state::Verdict;
use kptrace::engine::{Engine, Entry, Packet};
use kptrace::model::Protocol;
use kptrace::synth::{self, Options, Order, NODE_IP};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);
const N: usize = 3000;
const CLIENT_GW: &str = "192.168.0.10";
const PODS_GW: &str = "10.255.0.1";

/// The namespaces of one case; dropping it deletes them.
struct Lab {
    node: String,
    client: String,
    pods: String,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.node, &self.client, &self.pods] {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
    }
}

fn can_run() -> bool {
    let probe = format!(
        "kpt-probe-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let ok = sh(&["ip", "netns", "add", &probe]).is_ok();
    if ok {
        let _ = sh(&["ip", "netns", "del", &probe]);
    }
    let tools = ["iptables-restore", "conntrack", "python3"]
        .iter()
        .all(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    // As root (CI) every tool is installed by .ci/run: a failure there is a failure, not a skip.
    let root = sh(&["id", "-u"]).is_ok_and(|u| u.trim() == "0");
    assert!(
        !root || (ok && tools),
        "running as root, but network namespaces or the tools are not usable (ip netns: {ok}, tools: {tools})"
    );
    if !(ok && tools) {
        eprintln!("\n*** SKIPPED: kernel differential tests need root, `ip netns`, iptables-restore, conntrack and python3 ***\n");
    }
    ok && tools
}

fn nsexec<'a>(ns: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    v
}

impl Lab {
    fn new(dump: &str, endpoints: &[Ipv4Addr], clients: &[Ipv4Addr]) -> Lab {
        Lab::with_node(dump, endpoints, clients, CLIENT_GW.parse().unwrap())
    }

    fn with_node(
        dump: &str,
        endpoints: &[Ipv4Addr],
        clients: &[Ipv4Addr],
        node_ip: Ipv4Addr,
    ) -> Lab {
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let lab = Lab {
            node: format!("kpt-node-{id}"),
            client: format!("kpt-client-{id}"),
            pods: format!("kpt-pods-{id}"),
        };
        for ns in [&lab.node, &lab.client, &lab.pods] {
            sh(&["ip", "netns", "add", ns]).unwrap();
        }
        let (n, c, p) = (lab.node.as_str(), lab.client.as_str(), lab.pods.as_str());
        let run = |a: Vec<&str>| sh(&a).unwrap();
        run(vec![
            "ip", "link", "add", "c0", "netns", c, "type", "veth", "peer", "name", "nc0", "netns",
            n,
        ]);
        run(vec![
            "ip", "link", "add", "p0", "netns", p, "type", "veth", "peer", "name", "np0", "netns",
            n,
        ]);
        for (ns, dev) in [
            (n, "lo"),
            (n, "nc0"),
            (n, "np0"),
            (c, "lo"),
            (c, "c0"),
            (p, "lo"),
            (p, "p0"),
        ] {
            run(nsexec(ns, &["ip", "link", "set", dev, "up"]));
        }
        run(nsexec(
            n,
            &["ip", "addr", "add", &format!("{node_ip}/32"), "dev", "nc0"],
        ));
        run(nsexec(
            n,
            &["ip", "addr", "add", &format!("{PODS_GW}/30"), "dev", "np0"],
        ));
        run(nsexec(
            p,
            &["ip", "addr", "add", "10.255.0.2/30", "dev", "p0"],
        ));
        run(nsexec(
            p,
            &["ip", "route", "add", "default", "via", PODS_GW],
        ));
        // Endpoints stay silent: a reset would end the connection's conntrack entry at once.
        run(nsexec(
            p,
            &["iptables", "-A", "INPUT", "-p", "tcp", "-j", "DROP"],
        ));
        let client_addr = if node_ip == Ipv4Addr::new(192, 168, 0, 2) {
            "192.168.0.3"
        } else {
            "192.168.0.2"
        };
        run(nsexec(
            c,
            &[
                "ip",
                "addr",
                "add",
                &format!("{client_addr}/32"),
                "dev",
                "c0",
            ],
        ));
        run(nsexec(
            c,
            &["ip", "route", "add", &format!("{node_ip}/32"), "dev", "c0"],
        ));
        run(nsexec(
            c,
            &["ip", "route", "add", "default", "via", &node_ip.to_string()],
        ));
        // A node has a default route; without one, its own traffic to a cluster IP is unroutable
        // before nat OUTPUT ever sees it.
        run(nsexec(
            n,
            &[
                "ip",
                "route",
                "replace",
                &format!("{client_addr}/32"),
                "dev",
                "nc0",
            ],
        ));
        run(nsexec(
            n,
            &["ip", "route", "add", "default", "via", client_addr],
        ));
        for cl in clients {
            let a = format!("{cl}/32");
            run(nsexec(c, &["ip", "addr", "add", &a, "dev", "c0"]));
            run(nsexec(n, &["ip", "route", "add", &a, "dev", "nc0"]));
        }
        for ep in endpoints {
            let a = format!("{ep}/32");
            run(nsexec(p, &["ip", "addr", "add", &a, "dev", "p0"]));
            run(nsexec(n, &["ip", "route", "replace", &a, "dev", "np0"]));
        }
        for k in [
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
            // nft's reject answers with ICMP, which Linux rate-limits.
            "net.ipv4.icmp_ratelimit=0",
        ] {
            run(nsexec(n, &["sysctl", "-qw", k]));
        }
        let path = std::env::temp_dir().join(format!("kpt-dump-{id}.rules"));
        std::fs::write(&path, dump).unwrap();
        // nftables rulesets load with `nft -f` (what `nft list ruleset` prints is loadable).
        let loader = if kptrace::parse::nft::looks_like(dump) {
            "nft"
        } else {
            "iptables-restore"
        };
        let loaded = if loader == "nft" {
            sh(&nsexec(n, &["nft", "-f", path.to_str().unwrap()]))
        } else {
            sh(&nsexec(n, &["iptables-restore", path.to_str().unwrap()]))
        };
        let _ = std::fs::remove_file(&path);
        loaded.unwrap_or_else(|e| panic!("{loader} refused the rules: {e}"));
        lab
    }

    /// Sends N UDP datagrams, each from a new source port, and returns the conntrack view of each:
    /// (DNAT destination or None, masqueraded). Datagrams without an entry were dropped.
    fn send(
        &self,
        from_node: bool,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        dport: u16,
        _same_port: bool,
    ) -> Vec<(Option<String>, bool)> {
        self.send_proto("udp", N, from_node, src, dst, dport)
    }

    /// `count` new connections (UDP datagrams, or TCP SYNs whose sockets are closed at once), each
    /// from a new source port.
    fn send_proto(
        &self,
        proto: &str,
        count: usize,
        from_node: bool,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        dport: u16,
    ) -> Vec<(Option<String>, bool)> {
        let ns = if from_node { &self.node } else { &self.client };
        let script = if proto == "udp" {
            format!(
                "import socket\nfor i in range({count}):\n    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n    s.bind(('{src}', 20000+i))\n    s.sendto(b'x',('{dst}',{dport}))\n    s.close()\n"
            )
        } else {
            format!(
                "import socket\nfor i in range({count}):\n    s=socket.socket(socket.AF_INET,socket.SOCK_STREAM)\n    s.setblocking(False)\n    s.bind(('{src}', 20000+i))\n    try:\n        s.connect(('{dst}',{dport}))\n    except (BlockingIOError, OSError):\n        pass\n    s.close()\n"
            )
        };
        // Connections the kernel confirms are reported as NEW events (with their NAT), even when a
        // TCP reset ends them at once; a dropped or rejected first packet never is.
        let mut watch = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.node,
                "conntrack",
                "-E",
                "-e",
                "NEW",
                "-p",
                proto,
                "-b",
                "33554432",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        sh(&nsexec(ns, &["python3", "-c", &script])).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        // Live entries too, in case a burst overflowed the event socket.
        let listed = sh(&nsexec(&self.node, &["conntrack", "-L", "-p", proto])).unwrap_or_default();
        let _ = watch.kill();
        let events = String::from_utf8_lossy(&watch.wait_with_output().unwrap().stdout).to_string();
        let mut ports = std::collections::BTreeSet::new();
        let table: String = events
            .lines()
            .chain(listed.lines())
            .filter(|l| {
                let sport = l.split_whitespace().find(|w| w.starts_with("sport="));
                sport.is_some_and(|p| ports.insert(p.to_string()))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let mut out = Vec::new();
        for line in table.lines() {
            let kv: Vec<(&str, &str)> = line
                .split_whitespace()
                .filter_map(|w| w.split_once('='))
                .collect();
            let get =
                |k: &str, nth: usize| kv.iter().filter(|(a, _)| *a == k).nth(nth).map(|(_, v)| *v);
            if get("src", 0) != Some(&src.to_string()) || get("dst", 0) != Some(&dst.to_string()) {
                continue;
            }
            let (rsrc, rsport, rdst) = (
                get("src", 1).unwrap(),
                get("sport", 1).unwrap(),
                get("dst", 1).unwrap(),
            );
            let dnat = (rsrc != dst.to_string() || rsport != dport.to_string())
                .then(|| format!("{rsrc}:{rsport}"));
            out.push((dnat, rdst != src.to_string()));
        }
        out
    }
}

struct Case<'a> {
    name: &'a str,
    dump: String,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    dport: u16,
    from_node: bool,
}

struct Setup {
    proto: &'static str,
    node_ip: Ipv4Addr,
    /// Further addresses of the node.
    extra: Vec<Ipv4Addr>,
}

/// Compares the kernel with kptrace for one packet description.
fn check(case: &Case) {
    check_with(
        case,
        &Setup {
            proto: "udp",
            node_ip: NODE_IP,
            extra: Vec::new(),
        },
    )
}

fn check_with(case: &Case, setup: &Setup) {
    let rs = kptrace::parse::read(case.name, case.dump.clone().into_bytes(), None).unwrap();
    let mut node_ips = vec![IpAddr::V4(setup.node_ip)];
    node_ips.extend(setup.extra.iter().map(|a| IpAddr::V4(*a)));
    let eng = Engine::new(&rs, &node_ips);
    let entry = if case.from_node {
        Entry::Output
    } else {
        Entry::Prerouting
    };
    let proto = if setup.proto == "udp" {
        Protocol::Udp
    } else {
        Protocol::Tcp
    };
    let t = eng.trace(
        &Packet::new(
            IpAddr::V4(case.src),
            IpAddr::V4(case.dst),
            proto,
            case.dport,
        ),
        entry,
    );
    assert!(!t.approximate(), "{}: kptrace is not exact here", case.name);
    let endpoints: Vec<Ipv4Addr> = t
        .outcomes
        .iter()
        .filter_map(|o| o.dnat.as_ref())
        .filter_map(|d| d.split(':').next()?.parse().ok())
        .collect();
    // A single certain outcome needs few connections; shares need many.
    let n = if t.outcomes.len() == 1 { 100 } else { N };
    let clients: Vec<Ipv4Addr> = if case.from_node {
        vec![]
    } else {
        vec![case.src]
    };
    let lab = Lab::with_node(&case.dump, &endpoints, &clients, setup.node_ip);
    for a in &setup.extra {
        sh(&nsexec(
            &lab.node,
            &["ip", "addr", "add", &format!("{a}/32"), "dev", "nc0"],
        ))
        .unwrap();
    }
    let seen = lab.send_proto(
        setup.proto,
        n,
        case.from_node,
        case.src,
        case.dst,
        case.dport,
    );
    eprintln!(
        "kernel case `{}`: {n} {} connections",
        case.name, setup.proto
    );
    // Expected: destination → (share, masquerade); drops have no conntrack entry.
    let mut want: BTreeMap<Option<String>, (f64, bool)> = BTreeMap::new();
    let mut dropped = 0.0;
    for o in &t.outcomes {
        match o.verdict {
            Verdict::Drop | Verdict::Reject => dropped += o.probability,
            _ => {
                let e = want.entry(o.dnat.clone()).or_insert((0.0, o.masquerade));
                e.0 += o.probability;
                assert_eq!(e.1, o.masquerade);
            }
        }
    }
    let mut got: BTreeMap<Option<String>, (usize, usize)> = BTreeMap::new();
    for (d, m) in &seen {
        let e = got.entry(d.clone()).or_default();
        e.0 += 1;
        e.1 += *m as usize;
    }
    let kernel_dropped = n - seen.len();
    let bound = |p: f64| 5.0 * (n as f64 * p * (1.0 - p)).sqrt() + 1.0;
    assert!(
        (kernel_dropped as f64 - dropped * n as f64).abs() <= bound(dropped),
        "{}: kernel dropped {kernel_dropped} of {n}, kptrace says {dropped}",
        case.name
    );
    for d in got.keys() {
        assert!(
            want.contains_key(d),
            "{}: kernel sent traffic to {d:?}, which kptrace never names ({want:?})",
            case.name
        );
    }
    // Session affinity: one client's connections all stick to the endpoint its first one reached,
    // which is what kptrace reports beside the first packet's shares (checked without affinity).
    if t.outcomes.iter().any(|o| o.affinity.is_some()) {
        assert_eq!(
            got.len(),
            1,
            "{}: affinity should pin one client to one endpoint: {got:?}",
            case.name
        );
        let (d, (k, m)) = got.iter().next().unwrap();
        assert_eq!(*k, n - kernel_dropped);
        assert_eq!(*m == *k, want[d].1, "{}: masquerade of {d:?}", case.name);
        return;
    }
    for (d, (p, masq)) in &want {
        let (k, m) = got.get(d).copied().unwrap_or((0, 0));
        assert!(
            (k as f64 - p * n as f64).abs() <= bound(*p),
            "{}: {d:?} got {k} of {n}, kptrace says {p}; kernel: {got:?}; kptrace: {want:?}",
            case.name
        );
        if k > 0 {
            assert_eq!(
                m == k,
                *masq,
                "{}: {d:?} masqueraded {m} of {k}, kptrace says {masq}",
                case.name
            );
            assert!(m == 0 || m == k, "{}: mixed masquerade", case.name);
        }
    }
}

fn generated() -> (synth::Cluster, String) {
    synth::generate(&Options {
        services: 400,
        order: Order::Kernel,
        counters: false,
        seed: 7,
    })
}

#[test]
fn generated_services_agree_with_the_kernel() {
    if !can_run() {
        return;
    }
    let (cluster, dump) = generated();
    let pod = Ipv4Addr::new(10, 0, 0, 10);
    let outside = Ipv4Addr::new(198, 18, 0, 1);
    let pick = |f: &dyn Fn(&synth::Service) -> bool| {
        cluster
            .services
            .iter()
            .find(|s| f(s))
            .unwrap_or_else(|| panic!("no such Service in the generated dump"))
    };
    let udp = |s: &synth::Service| s.ports[0].proto == synth::Proto::Udp;
    let n_eps = |s: &synth::Service| s.ports[0].endpoints.len();
    let mut cases = Vec::new();
    let three = pick(&|s| n_eps(s) == 3 && udp(s) && !s.affinity);
    cases.push((
        "cluster IP, 3 endpoints, from a pod",
        three.cluster_ip,
        three.ports[0].port,
        pod,
        false,
    ));
    cases.push((
        "cluster IP, 3 endpoints, from the node",
        three.cluster_ip,
        three.ports[0].port,
        NODE_IP,
        true,
    ));
    let many = pick(&|s| n_eps(s) >= 4 && udp(s) && !s.affinity);
    cases.push((
        "cluster IP, many endpoints, from outside",
        many.cluster_ip,
        many.ports[0].port,
        outside,
        false,
    ));
    let np = pick(&|s| {
        s.ports[0].node_port.is_some() && !s.local_policy && n_eps(s) > 1 && udp(s) && !s.affinity
    });
    cases.push((
        "NodePort from outside",
        NODE_IP,
        np.ports[0].node_port.unwrap(),
        outside,
        false,
    ));
    let none = pick(&|s| n_eps(s) == 0 && udp(s));
    cases.push((
        "Service without endpoints",
        none.cluster_ip,
        none.ports[0].port,
        pod,
        false,
    ));
    let local = cluster
        .services
        .iter()
        .find(|s| s.local_policy && n_eps(s) > 0 && udp(s) && !s.affinity);
    if let Some(l) = local {
        cases.push((
            "externalTrafficPolicy Local NodePort",
            NODE_IP,
            l.ports[0].node_port.unwrap(),
            outside,
            false,
        ));
    }
    let lb = cluster
        .services
        .iter()
        .find(|s| !s.source_ranges.is_empty() && n_eps(s) > 0 && udp(s) && !s.affinity);
    if let Some(lb) = lb {
        cases.push((
            "load balancer from a disallowed source",
            lb.load_balancer_ip.unwrap(),
            lb.ports[0].port,
            outside,
            false,
        ));
        cases.push((
            "load balancer from an allowed source",
            lb.load_balancer_ip.unwrap(),
            lb.ports[0].port,
            Ipv4Addr::new(192, 0, 2, 5),
            false,
        ));
    }
    for (name, dst, dport, src, from_node) in cases {
        check(&Case {
            name,
            dump: dump.clone(),
            src,
            dst,
            dport,
            from_node,
        });
    }
}

fn hand_written(ladder: &str) -> String {
    format!(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:SVC - [0:0]\n:MASQ - [0:0]\n\
-A PREROUTING -d 10.96.0.50/32 -p udp -m udp --dport 53 -j SVC\n\
-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE\n\
-A MASQ -j MARK --set-xmark 0x4000/0x4000\n{ladder}COMMIT\n"
    )
}

#[test]
fn hand_written_probabilities_marks_negations_goto_and_return_agree_with_the_kernel() {
    if !can_run() {
        return;
    }
    let client = Ipv4Addr::new(10, 0, 0, 10);
    let dst = Ipv4Addr::new(10, 96, 0, 50);
    let cases = [
        (
            "uneven 0.2 / 0.9 / rest",
            "-A SVC -m statistic --mode random --probability 0.2 -p udp -j DNAT --to-destination 10.1.0.1:53\n\
-A SVC -m statistic --mode random --probability 0.9 -p udp -j DNAT --to-destination 10.1.0.2:53\n\
-A SVC -p udp -j DNAT --to-destination 10.1.0.3:53\n",
        ),
        (
            "nth mode",
            "-A SVC -m statistic --mode nth --every 3 --packet 0 -p udp -j DNAT --to-destination 10.1.0.1:53\n\
-A SVC -m statistic --mode nth --every 2 --packet 0 -p udp -j DNAT --to-destination 10.1.0.2:53\n\
-A SVC -p udp -j DNAT --to-destination 10.1.0.3:53\n",
        ),
        (
            "mark with mask, negation, masquerade",
            "-A SVC ! -s 10.0.0.0/8 -j MASQ\n-A SVC -s 10.0.0.0/24 -j MASQ\n-A SVC -m mark --mark 0x4000/0x4000 -p udp -j DNAT --to-destination 10.1.0.1:53\n-A SVC -p udp -j DNAT --to-destination 10.1.0.2:53\n",
        ),
        (
            "exact mark test without mask fails on other bits",
            "-A SVC -j MARK --set-xmark 0x1/0x1\n-A SVC -j MASQ\n-A SVC -m mark --mark 0x4000 -p udp -j DNAT --to-destination 10.1.0.1:53\n-A SVC -p udp -j DNAT --to-destination 10.1.0.2:53\n",
        ),
        (
            "non-contiguous masks and an abbreviated option",
            "-A SVC -s 10.0.0.11/255.0.255.255 -p udp -j DNAT --to-destination 10.1.0.3:53\n\
-A SVC -s 10.7.0.10/255.0.255.255 -p udp -j DNAT --to 10.1.0.1:53\n\
-A SVC -p udp -j DNAT --to-destination 10.1.0.2:53\n",
        ),
        (
            "goto then RETURN resumes in the caller's caller",
            "-A SVC -j MASQ\n-A SVC -m statistic --mode random --probability 0.5 -g MASQ\n-A SVC -p udp -j DNAT --to-destination 10.1.0.1:53\n",
        ),
    ];
    for (name, ladder) in cases {
        let mut dump = hand_written(ladder);
        if name.starts_with("goto") {
            // PREROUTING continues after SVC returns: a second DNAT decides there.
            dump = dump.replace(
                "-A POSTROUTING",
                "-A PREROUTING -d 10.96.0.50/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.1.0.2:53\n-A POSTROUTING",
            );
        }
        check(&Case {
            name,
            dump,
            src: client,
            dst,
            dport: 53,
            from_node: false,
        });
    }
}

#[test]
fn session_affinity_sticks_to_one_endpoint_in_the_kernel() {
    if !can_run() {
        return;
    }
    let (cluster, dump) = generated();
    let svc = cluster
        .services
        .iter()
        .find(|s| {
            s.affinity && s.ports[0].endpoints.len() > 1 && s.ports[0].proto == synth::Proto::Udp
        })
        .or_else(|| {
            cluster
                .services
                .iter()
                .find(|s| s.affinity && s.ports[0].endpoints.len() > 1)
        });
    let Some(svc) = svc else {
        panic!("no affinity Service with several endpoints")
    };
    if svc.ports[0].proto != synth::Proto::Udp {
        eprintln!("affinity Service is TCP only; sending UDP would not match it");
        return;
    }
    let eps: Vec<Ipv4Addr> = svc.ports[0].endpoints.iter().map(|e| e.ip).collect();
    let src = Ipv4Addr::new(10, 0, 0, 10);
    let lab = Lab::new(&dump, &eps, &[src]);
    // New source port each time, same client address: affinity is by source address.
    let seen = lab.send(false, src, svc.cluster_ip, svc.ports[0].port, false);
    let dests: std::collections::BTreeSet<_> = seen.iter().map(|(d, _)| d.clone()).collect();
    assert_eq!(seen.len(), N);
    assert_eq!(
        dests.len(),
        1,
        "a returning client must stick to its first endpoint: {dests:?}"
    );
    // kptrace reports the affinity and its timeout.
    let rs = kptrace::parse::read("g", dump.into_bytes(), None).unwrap();
    let (reports, _) = kptrace::app::svc::analyse(&rs, &svc.key(), &[IpAddr::V4(NODE_IP)]);
    assert_eq!(
        reports[0].port.affinity_seconds,
        Some(synth::AFFINITY_SECONDS)
    );
}

#[test]
fn iptables_restore_accepts_generated_dumps_in_both_orders() {
    if !can_run() {
        return;
    }
    for order in [Order::Kernel, Order::KubeProxy] {
        let (_, dump) = synth::generate(&Options {
            services: 1000,
            order,
            counters: order == Order::Kernel,
            seed: 3,
        });
        let ns = format!(
            "kpt-restore-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        sh(&["ip", "netns", "add", &ns]).unwrap();
        let path = std::env::temp_dir().join(format!("{ns}.rules"));
        std::fs::write(&path, &dump).unwrap();
        let r = sh(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "iptables-restore",
            "--test",
            path.to_str().unwrap(),
        ]);
        let _ = std::fs::remove_file(&path);
        let _ = sh(&["ip", "netns", "del", &ns]);
        r.unwrap_or_else(|e| panic!("{order:?}: {e}"));
    }
}

#[test]
fn conformance_flows_agree_with_the_kernel() {
    if !can_run() {
        return;
    }
    let mut ran = 0;
    let mut skipped = Vec::new();
    for dump_path in common::conformance_dumps() {
        let flows_path = dump_path.with_file_name("flows.json");
        let Ok(text) = std::fs::read_to_string(&flows_path) else {
            continue;
        };
        let flows: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        let payload = std::fs::read_to_string(&dump_path).unwrap();
        let case_dir = dump_path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        // The two trace-packet fixtures carry their own hooks, and comments with blanks left
        // unquoted (they are test fixtures, not iptables-save output), which iptables-restore
        // refuses: the kernel gets the rules as kptrace read them, printed back in save form.
        let dump = if payload.contains("-A PREROUTING") {
            let rs = kptrace::parse::read("fixture", payload.clone().into_bytes(), None).unwrap();
            kptrace::model::print::ruleset(&rs)
        } else {
            common::with_standard_hooks(&payload)
        };
        for f in flows {
            let name = format!("{case_dir}: {}", f["name"].as_str().unwrap());
            let proto = match f["protocol"].as_str().unwrap() {
                "tcp" => "tcp",
                "udp" => "udp",
                _ => {
                    skipped.push(format!("{name} (protocol)"));
                    continue;
                }
            };
            let src: Ipv4Addr = match f["source_ip"].as_str().unwrap().parse() {
                Ok(a) => a,
                Err(_) => {
                    skipped.push(format!("{name} (IPv6)"));
                    continue;
                }
            };
            let dst: Ipv4Addr = f["dest_ip"].as_str().unwrap().parse().unwrap();
            let node_ips: Vec<Ipv4Addr> = f["node_ip"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|a| a.as_str()?.parse::<Ipv4Addr>().ok())
                .filter(|a| !a.is_loopback())
                .collect();
            let node_ip = node_ips[0];
            // Loopback sources and destinations need route_localnet and a client on the node's
            // loopback; the namespace set-up does not model them.
            if src.is_loopback() || dst.is_loopback() {
                skipped.push(format!("{name} (loopback)"));
                continue;
            }
            // A client cannot send to its own address over the wire.
            if src == dst {
                skipped.push(format!("{name} (source is the destination)"));
                continue;
            }
            let case = Case {
                name: &name,
                dump: dump.clone(),
                src,
                dst,
                dport: f["dest_port"].as_u64().unwrap() as u16,
                from_node: node_ips.contains(&src),
            };
            check_with(
                &case,
                &Setup {
                    proto,
                    node_ip,
                    extra: node_ips[1..].to_vec(),
                },
            );
            ran += 1;
        }
    }
    eprintln!(
        "conformance flows checked against the kernel: {ran}; not expressible here: {}",
        skipped.len()
    );
    for s in &skipped {
        eprintln!("  skipped {s}");
    }
    assert!(ran >= 60, "only {ran} flows ran");
}

/// kube-proxy's nftables flows, each ruleset loaded with `nft -f` as `nft list ruleset` printed
/// it: where the real kernel sends each connection (and whether it masquerades it) is where
/// kptrace says, with numgen shares within 5 σ.
/// [`can_run`], and `nft` too (as root it must be there: .ci/run installs it).
fn can_run_nft() -> bool {
    if can_run() && common::has("nft") {
        return true;
    }
    assert!(
        !common::is_root() || common::has("nft"),
        "running as root, but `nft` is not installed (.ci/run installs nftables)"
    );
    eprintln!("\n*** SKIPPED: nftables kernel cases need root and `nft` ***\n");
    false
}

#[test]
fn nftables_conformance_flows_agree_with_the_kernel() {
    if !can_run_nft() {
        return;
    }
    let dir = common::fixture("conformance/kube-proxy-nftables");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    let (mut ran, mut skipped) = (0, Vec::new());
    for case_dir in cases {
        let flows: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(case_dir.join("flows.json")).unwrap())
                .unwrap();
        if flows.is_empty() {
            continue;
        }
        let dump = std::fs::read_to_string(case_dir.join("ruleset.list.nft")).unwrap();
        let case_name = case_dir.file_name().unwrap().to_string_lossy().to_string();
        for f in flows {
            let name = format!("{case_name}: {}", f["name"].as_str().unwrap());
            let proto = match f["protocol"].as_str().unwrap() {
                "tcp" => "tcp",
                "udp" => "udp",
                _ => {
                    skipped.push(format!("{name} (protocol)"));
                    continue;
                }
            };
            let (Ok(src), Ok(dst)) = (
                f["source_ip"].as_str().unwrap().parse::<Ipv4Addr>(),
                f["dest_ip"].as_str().unwrap().parse::<Ipv4Addr>(),
            ) else {
                skipped.push(format!("{name} (IPv6)"));
                continue;
            };
            let node_ips: Vec<Ipv4Addr> = f["node_ip"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|a| a.as_str()?.parse::<Ipv4Addr>().ok())
                .collect();
            if src.is_loopback() || dst.is_loopback() || src == dst {
                skipped.push(format!("{name} (loopback or to itself)"));
                continue;
            }
            let case = Case {
                name: &name,
                dump: dump.clone(),
                src,
                dst,
                dport: f["dest_port"].as_u64().unwrap() as u16,
                from_node: node_ips.contains(&src),
            };
            check_with(
                &case,
                &Setup {
                    proto,
                    node_ip: node_ips[0],
                    extra: node_ips[1..].to_vec(),
                },
            );
            ran += 1;
        }
    }
    eprintln!(
        "nftables flows checked against the kernel: {ran}; not expressible here: {}",
        skipped.len()
    );
    for s in &skipped {
        eprintln!("  skipped {s}");
    }
    assert!(ran >= 80, "only {ran} flows ran");
}

/// A grep'd fragment as the kernel needs it: the rules kptrace read, printed back in save form,
/// with kube-proxy's standard hooks and helper chains that kptrace assumed for the missing parts.
fn fragment_for_kernel(rs: &kptrace::model::Ruleset) -> String {
    let mut text = kptrace::model::print::ruleset(rs);
    let nat = rs.table("nat").unwrap();
    let mut extra = String::new();
    for name in ["KUBE-MARK-MASQ", "KUBE-MARK-DROP", "KUBE-POSTROUTING"] {
        let missing = nat.chain(name).is_none_or(|c| c.is_opaque());
        if !missing {
            continue;
        }
        if nat.chain(name).is_none() {
            text = text.replacen("*nat\n", &format!("*nat\n:{name} - [0:0]\n"), 1);
        }
        for r in kptrace::engine::assumed::standard_chain(name).unwrap() {
            extra += &format!("-A {name} {}\n", kptrace::model::print::rule_spec(&r));
        }
    }
    let text = text.replacen("COMMIT\n", &format!("{extra}COMMIT\n"), 1);
    common::with_standard_hooks(&text)
}

#[test]
fn seed_001_agrees_with_the_kernel() {
    if !can_run() {
        return;
    }
    let path = common::fixture("seeds/001-nginx-svc.rules");
    let rs = common::load(&path);
    let dump = fragment_for_kernel(&rs);
    let (reports, _) = kptrace::app::svc::analyse(&rs, "default/nginx-svc", &[IpAddr::V4(NODE_IP)]);
    let mut ran = 0;
    for r in &reports {
        for (p, _) in &r.probes {
            let (IpAddr::V4(src), IpAddr::V4(dst)) = (p.source, p.address) else {
                continue;
            };
            let name = format!("seed 001 {:?} from {:?}", p.kind, p.from);
            check_with(
                &Case {
                    name: &name,
                    dump: dump.clone(),
                    src,
                    dst,
                    dport: p.port,
                    from_node: p.hook == Entry::Output,
                },
                &Setup {
                    proto: "tcp",
                    node_ip: NODE_IP,
                    extra: Vec::new(),
                },
            );
            ran += 1;
        }
    }
    assert!(ran >= 7, "{ran} probes");
}

/// kube-proxy ≥ 1.36 chooses endpoints in the Service chain itself (`dnat ip to numgen random mod
/// 3 map { … }`) and marks traffic from outside the pod network in `services`: the kernel's shares
/// and masquerading from a pod, from outside and from the node agree with kptrace's.
#[test]
fn nftables_1_36_layout_agrees_with_the_kernel() {
    if !can_run_nft() {
        return;
    }
    let dump =
        std::fs::read_to_string(common::fixture("valid/kube-proxy-1.36-layout.nft")).unwrap();
    let node_ip: Ipv4Addr = "192.168.0.231".parse().unwrap();
    let cluster_ip: Ipv4Addr = "10.96.0.10".parse().unwrap();
    for (name, src, from_node) in [
        ("1.36 layout: from a pod", "10.244.0.11", false),
        (
            "1.36 layout: from outside the pod network",
            "192.168.0.50",
            false,
        ),
        ("1.36 layout: from the node", "192.168.0.231", true),
    ] {
        let case = Case {
            name,
            dump: dump.clone(),
            src: src.parse().unwrap(),
            dst: cluster_ip,
            dport: 80,
            from_node,
        };
        check_with(
            &case,
            &Setup {
                proto: "tcp",
                node_ip,
                extra: Vec::new(),
            },
        );
    }
}
