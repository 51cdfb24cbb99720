//! The kernel is the judge on real nodes' mixtures: kube-proxy's rules beside Docker's, libvirt's,
//! flannel's, Calico-style mark accepts, firewalld's zones, CONNMARK users and Istio-style
//! REDIRECTs, each a whole `iptables-save` dump loaded into a namespace whose interfaces carry the
//! names those tools test (`eth0`, `cni0`, `cali0`).
//!
//! Topology per case (namespaces made here, deleted afterwards):
//! `outside` (192.168.0.2, 203.0.113.77) —`eth0`— `node` (192.168.0.10, 10.244.0.1) —pod iface—
//! `pods` (10.244.0.2, endpoints 10.244.0.5–7, a pod client 10.244.0.10).
//! kptrace is given the same interfaces (`--pod-iface`/`--uplink` in `svc`) and node addresses; every
//! answer must be decided (no condition left) unless the case says which world the namespace is,
//! and then the outcomes of that world must agree with the kernel: shares within 5σ, drops and
//! masquerading exact.

mod common;

use common::sh;
use kptrace::engine::state::Verdict;
use kptrace::engine::{Engine, Entry, Packet};
use kptrace::model::Protocol;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

const N: usize = 2000;
const NODE: &str = "192.168.0.10";
const NODE_POD: &str = "10.244.0.1";
const OUTSIDE: &str = "203.0.113.77";
const POD: &str = "10.244.0.10";
const ENDPOINTS: [&str; 3] = ["10.244.0.5", "10.244.0.6", "10.244.0.7"];
const CLUSTER_IP: &str = "10.96.0.10";

#[derive(Clone, Copy, Debug, PartialEq)]
enum From {
    Pod,
    Outside,
    Node,
}

struct Lab {
    node: common::Netns,
    outside: common::Netns,
    pods: common::Netns,
}

fn ok(r: Result<String, String>) -> String {
    r.unwrap_or_else(|e| panic!("{e}"))
}

impl Lab {
    fn new(dump: &str, pod_if: &str, uplink: &str, setup: &[&str]) -> Option<Lab> {
        let lab = Lab {
            node: common::Netns::new("mix-node")?,
            outside: common::Netns::new("mix-out")?,
            pods: common::Netns::new("mix-pods")?,
        };
        let (n, o, p) = (&lab.node.0, &lab.outside.0, &lab.pods.0);
        ok(sh(&[
            "ip", "link", "add", "c0", "netns", o, "type", "veth", "peer", "name", uplink, "netns",
            n,
        ]));
        ok(sh(&[
            "ip", "link", "add", "p0", "netns", p, "type", "veth", "peer", "name", pod_if, "netns",
            n,
        ]));
        let cmds: Vec<(&common::Netns, Vec<String>)> = vec![
            (&lab.node, vec!["ip link set lo up".into()]),
            (&lab.node, vec![format!("ip link set {uplink} up")]),
            (&lab.node, vec![format!("ip link set {pod_if} up")]),
            (
                &lab.node,
                vec![format!("ip addr add {NODE}/24 dev {uplink}")],
            ),
            (
                &lab.node,
                vec![format!("ip addr add {NODE_POD}/24 dev {pod_if}")],
            ),
            (
                &lab.node,
                vec![format!("ip route add {OUTSIDE}/32 via 192.168.0.2")],
            ),
            (
                &lab.node,
                vec!["ip route add default via 192.168.0.2".into()],
            ),
            (&lab.node, vec!["sysctl -qw net.ipv4.ip_forward=1".into()]),
            (
                &lab.node,
                vec!["sysctl -qw net.ipv4.conf.all.rp_filter=0".into()],
            ),
            (&lab.outside, vec!["ip link set lo up".into()]),
            (&lab.outside, vec!["ip link set c0 up".into()]),
            (
                &lab.outside,
                vec!["ip addr add 192.168.0.2/24 dev c0".into()],
            ),
            (
                &lab.outside,
                vec![format!("ip addr add {OUTSIDE}/32 dev c0")],
            ),
            (
                &lab.outside,
                vec![format!("ip route add default via {NODE}")],
            ),
            (&lab.pods, vec!["ip link set lo up".into()]),
            (&lab.pods, vec!["ip link set p0 up".into()]),
            (&lab.pods, vec!["ip addr add 10.244.0.2/24 dev p0".into()]),
            (
                &lab.pods,
                vec![format!("ip route add default via {NODE_POD}")],
            ),
        ];
        for (ns, c) in cmds {
            let words: Vec<&str> = c[0].split_whitespace().collect();
            ok(ns.run(&words, ""));
        }
        for a in ENDPOINTS.iter().chain([&POD]) {
            ok(lab
                .pods
                .run(&["ip", "addr", "add", &format!("{a}/32"), "dev", "p0"], ""));
        }
        for c in setup {
            let words: Vec<&str> = c.split_whitespace().collect();
            ok(lab.node.run(&words, ""));
        }
        lab.node
            .run(&["iptables-restore"], dump)
            .unwrap_or_else(|e| panic!("iptables-restore refused the dump: {e}\n{dump}"));
        Some(lab)
    }

    /// Sends `n` UDP datagrams from `src` (each a new connection) and reads the node's conntrack:
    /// (DNAT destination, masqueraded) for each that was not dropped.
    fn send(
        &self,
        from: From,
        src: &str,
        dst: &str,
        dport: u16,
        n: usize,
    ) -> Vec<(Option<String>, bool)> {
        let ns = match from {
            From::Pod => &self.pods,
            From::Outside => &self.outside,
            From::Node => &self.node,
        };
        let script = format!(
            "import socket\nfor i in range({n}):\n    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n    s.bind(('{src}', 20000+i))\n    s.sendto(b'x',('{dst}',{dport}))\n    s.close()\n"
        );
        let mut watch = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.node.0,
                "conntrack",
                "-E",
                "-e",
                "NEW",
                "-p",
                "udp",
                "-b",
                "33554432",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        ok(ns.run(&["python3", "-c", &script], ""));
        std::thread::sleep(std::time::Duration::from_millis(500));
        let listed = self
            .node
            .run(&["conntrack", "-L", "-p", "udp"], "")
            .unwrap_or_default();
        let _ = watch.kill();
        let events = String::from_utf8_lossy(&watch.wait_with_output().unwrap().stdout).to_string();
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for line in events.lines().chain(listed.lines()) {
            let kv: Vec<(&str, &str)> = line
                .split_whitespace()
                .filter_map(|w| w.split_once('='))
                .collect();
            let get =
                |k: &str, i: usize| kv.iter().filter(|(a, _)| *a == k).nth(i).map(|(_, v)| *v);
            if get("src", 0) != Some(src) || get("dst", 0) != Some(dst) {
                continue;
            }
            let Some(sport) = get("sport", 0) else {
                continue;
            };
            if !seen.insert(sport.to_string()) {
                continue;
            }
            let (rsrc, rsport, rdst) = (
                get("src", 1).unwrap(),
                get("sport", 1).unwrap(),
                get("dst", 1).unwrap(),
            );
            let dnat =
                (rsrc != dst || rsport != dport.to_string()).then(|| format!("{rsrc}:{rsport}"));
            out.push((dnat, rdst != src));
        }
        out
    }
}

struct Case {
    name: &'static str,
    dump: String,
    pod_if: &'static str,
    uplink: &'static str,
    from: From,
    dst: &'static str,
    dport: u16,
    /// The world the namespace is, for conditions the dump cannot decide: (fact key part, holds).
    world: &'static [(&'static str, bool)],
    /// Commands run in the node namespace before the rules are loaded (ipsets the rules name).
    setup: &'static [&'static str],
}

fn can_run() -> bool {
    let tools = ["iptables-restore", "conntrack", "python3"]
        .iter()
        .all(|t| common::has(t));
    let probe = common::Netns::new("mix-probe");
    if common::is_root() {
        assert!(
            tools && probe.is_some(),
            "running as root, but the kernel tools are not usable"
        );
    }
    if !(tools && probe.is_some()) {
        eprintln!("\n*** SKIPPED: node-mixture kernel tests need root, `ip netns`, iptables-restore, conntrack and python3 ***\n");
        return false;
    }
    true
}

fn check(case: &Case) {
    let rs = kptrace::parse::read(case.name, case.dump.clone().into_bytes(), None).unwrap();
    let node_ips: Vec<IpAddr> = vec![NODE.parse().unwrap(), NODE_POD.parse().unwrap()];
    let mut eng = Engine::new(&rs, &node_ips);
    eng.set_routes(
        vec![("10.244.0.0/16".parse().unwrap(), case.pod_if.to_string())],
        Some(case.uplink.to_string()),
    );
    eng.set_iface_addr(case.uplink, NODE.parse().unwrap());
    eng.set_iface_addr(case.pod_if, NODE_POD.parse().unwrap());
    let (src, entry, in_iface) = match case.from {
        From::Pod => (POD, Entry::Prerouting, Some(case.pod_if)),
        From::Outside => (OUTSIDE, Entry::Prerouting, Some(case.uplink)),
        From::Node => (NODE, Entry::Output, None),
    };
    let mut pkt = Packet::new(
        src.parse().unwrap(),
        case.dst.parse().unwrap(),
        Protocol::Udp,
        case.dport,
    );
    pkt.in_iface = in_iface.map(str::to_string);
    let t = eng.trace(&pkt, entry);
    // The outcomes of the namespace's world; every condition must be one the case names.
    let outcomes: Vec<_> = t
        .outcomes
        .iter()
        .filter(|o| {
            o.conditions.iter().all(|c| {
                let w = case.world.iter().find(|(k, _)| c.fact.contains(k));
                let w = w.unwrap_or_else(|| panic!("{}: undecided condition {:?}", case.name, c));
                w.1 == c.holds
            })
        })
        .collect();
    for o in &outcomes {
        assert!(!o.approximate, "{}: approximate outcome {o:#?}", case.name);
    }
    let total: f64 = outcomes.iter().map(|o| o.probability).sum();
    assert!(
        (total - 1.0).abs() < 1e-9,
        "{}: the world's shares sum to {total}",
        case.name
    );
    let Some(lab) = Lab::new(&case.dump, case.pod_if, case.uplink, case.setup) else {
        return;
    };
    let n = if outcomes.len() == 1 { 100 } else { N };
    let seen = lab.send(case.from, src, case.dst, case.dport, n);
    eprintln!(
        "kernel node case `{}`: {n} datagrams, {} seen",
        case.name,
        seen.len()
    );
    let mut want: BTreeMap<Option<String>, (f64, bool)> = BTreeMap::new();
    let mut dropped = 0.0;
    for o in &outcomes {
        if matches!(o.verdict, Verdict::Drop | Verdict::Reject) {
            dropped += o.probability;
        } else {
            let e = want.entry(o.dnat.clone()).or_insert((0.0, o.masquerade));
            e.0 += o.probability;
            assert_eq!(
                e.1, o.masquerade,
                "{}: mixed masquerade in kptrace",
                case.name
            );
        }
    }
    let mut got: BTreeMap<Option<String>, (usize, usize)> = BTreeMap::new();
    for (d, m) in &seen {
        let e = got.entry(d.clone()).or_default();
        e.0 += 1;
        e.1 += *m as usize;
    }
    let bound = |p: f64| 5.0 * (n as f64 * p * (1.0 - p)).sqrt() + 1.0;
    let kernel_dropped = n - seen.len();
    assert!(
        (kernel_dropped as f64 - dropped * n as f64).abs() <= bound(dropped),
        "{}: kernel dropped {kernel_dropped} of {n}, kptrace says {dropped}; kernel {got:?}",
        case.name
    );
    for (d, (p, masq)) in &want {
        let (k, m) = got.get(d).copied().unwrap_or((0, 0));
        assert!(
            (k as f64 - p * n as f64).abs() <= bound(*p),
            "{}: {d:?} got {k} of {n}, kptrace says {p}; kernel {got:?}",
            case.name
        );
        if k > 0 {
            assert_eq!(
                m == k,
                *masq,
                "{}: {d:?} masqueraded {m} of {k}, kptrace says {masq}",
                case.name
            );
        }
    }
    for d in got.keys() {
        assert!(
            want.contains_key(d),
            "{}: kernel sent to {d:?}, kptrace never says so ({want:?})",
            case.name
        );
    }
}

/// kube-proxy's rules for one UDP Service (3 endpoints, NodePort 30080), a whole node's tables, with
/// `extra` lines placed in each table: (table, declarations and rules to put first, rules to put
/// last), and the filter FORWARD policy.
fn node_dump(forward_policy: &str, extra: &[(&str, &str, &str)], postrouting_hook: bool) -> String {
    let x = |table: &str, first: bool| -> String {
        extra
            .iter()
            .filter(|(t, _, _)| *t == table)
            .map(|(_, a, b)| if first { *a } else { *b })
            .collect::<Vec<_>>()
            .join("")
    };
    let svc = "KUBE-SVC-WEBAAAAAAAAAAAAA";
    let ext = "KUBE-EXT-WEBAAAAAAAAAAAAA";
    let seps = [
        "KUBE-SEP-WEBAAAAAAAAAAAA1",
        "KUBE-SEP-WEBAAAAAAAAAAAA2",
        "KUBE-SEP-WEBAAAAAAAAAAAA3",
    ];
    let mut nat = format!(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n:{svc} - [0:0]\n:{ext} - [0:0]\n"
    );
    for s in seps {
        nat += &format!(":{s} - [0:0]\n");
    }
    nat += &x("nat", true);
    nat += "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n";
    nat += "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n";
    if postrouting_hook {
        nat += "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n";
    }
    nat += "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n";
    nat += "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n";
    nat += "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n";
    nat += "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n";
    nat += &format!("-A KUBE-SERVICES -d {CLUSTER_IP}/32 -p udp -m comment --comment \"default/web:dns cluster IP\" -m udp --dport 53 -j {svc}\n");
    nat += "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n";
    nat += &format!("-A KUBE-NODEPORTS -p udp -m comment --comment \"default/web:dns\" -m udp --dport 30080 -j {ext}\n");
    nat += &format!("-A {ext} -m comment --comment \"masquerade traffic for default/web:dns external destinations\" -j KUBE-MARK-MASQ\n-A {ext} -j {svc}\n");
    nat += &format!("-A {svc} ! -s 10.244.0.0/16 -d {CLUSTER_IP}/32 -p udp -m comment --comment \"default/web:dns cluster IP\" -m udp --dport 53 -j KUBE-MARK-MASQ\n");
    let probs = ["0.33333333349", "0.50000000000"];
    for (i, (s, ep)) in seps.iter().zip(ENDPOINTS).enumerate() {
        let stat = probs
            .get(i)
            .map(|p| format!(" -m statistic --mode random --probability {p}"))
            .unwrap_or_default();
        nat += &format!(
            "-A {svc} -m comment --comment \"default/web:dns -> {ep}:5353\"{stat} -j {s}\n"
        );
    }
    for (s, ep) in seps.iter().zip(ENDPOINTS) {
        nat += &format!(
            "-A {s} -s {ep}/32 -m comment --comment \"default/web:dns\" -j KUBE-MARK-MASQ\n"
        );
        nat += &format!("-A {s} -p udp -m comment --comment \"default/web:dns\" -m udp -j DNAT --to-destination {ep}:5353\n");
    }
    nat += &x("nat", false);
    nat += "COMMIT\n";
    let mut filter = format!(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD {forward_policy} [0:0]\n:OUTPUT ACCEPT [0:0]\n:KUBE-FORWARD - [0:0]\n"
    );
    filter += &x("filter", true);
    filter += "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n";
    filter += "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n";
    filter += "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT\n";
    filter += "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n";
    filter += &x("filter", false);
    filter += "COMMIT\n";
    let mut out = String::new();
    for t in ["raw", "mangle", "security"] {
        let (a, b) = (x(t, true), x(t, false));
        if !a.is_empty() || !b.is_empty() {
            out += &format!("*{t}\n{a}{b}COMMIT\n");
        }
    }
    out + &filter + &nat
}

const DOCKER_FLANNEL: &[(&str, &str, &str)] = &[
    (
        "filter",
        ":DOCKER - [0:0]\n:DOCKER-USER - [0:0]\n:DOCKER-ISOLATION-STAGE-1 - [0:0]\n:DOCKER-ISOLATION-STAGE-2 - [0:0]\n:FLANNEL-FWD - [0:0]\n\
-A FORWARD -j DOCKER-USER\n-A FORWARD -j DOCKER-ISOLATION-STAGE-1\n\
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -o docker0 -j DOCKER\n\
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT\n-A FORWARD -i docker0 -o docker0 -j ACCEPT\n",
        "-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD\n\
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2\n-A DOCKER-ISOLATION-STAGE-1 -j RETURN\n\
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP\n-A DOCKER-ISOLATION-STAGE-2 -j RETURN\n-A DOCKER-USER -j RETURN\n\
-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT\n\
-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT\n",
    ),
    (
        "nat",
        ":DOCKER - [0:0]\n:FLANNEL-POSTRTG - [0:0]\n\
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER\n\
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n-A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG\n",
        "-A DOCKER -i docker0 -j RETURN\n\
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment \"flanneld masq\" -j RETURN\n\
-A FLANNEL-POSTRTG -s 10.244.0.0/24 -d 10.244.0.0/16 -m comment --comment \"flanneld masq\" -j RETURN\n\
-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.0.0/24 -m comment --comment \"flanneld masq\" -j RETURN\n\
-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/24 -m comment --comment \"flanneld masq\" -j RETURN\n\
-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully\n\
-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully\n",
    ),
];

const LIBVIRT: &[(&str, &str, &str)] = &[
    (
        "filter",
        ":LIBVIRT_FWI - [0:0]\n:LIBVIRT_FWO - [0:0]\n:LIBVIRT_FWX - [0:0]\n\
-A FORWARD -j LIBVIRT_FWX\n-A FORWARD -j LIBVIRT_FWI\n-A FORWARD -j LIBVIRT_FWO\n",
        "-A LIBVIRT_FWI -d 192.168.122.0/24 -o virbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
-A LIBVIRT_FWI -o virbr0 -j REJECT --reject-with icmp-port-unreachable\n\
-A LIBVIRT_FWO -s 192.168.122.0/24 -i virbr0 -j ACCEPT\n-A LIBVIRT_FWO -i virbr0 -j REJECT --reject-with icmp-port-unreachable\n\
-A LIBVIRT_FWX -i virbr0 -o virbr0 -j ACCEPT\n",
    ),
    (
        "nat",
        ":LIBVIRT_PRT - [0:0]\n-A POSTROUTING -j LIBVIRT_PRT\n",
        "-A LIBVIRT_PRT -s 192.168.122.0/24 -d 224.0.0.0/24 -j RETURN\n\
-A LIBVIRT_PRT -s 192.168.122.0/24 -d 255.255.255.255/32 -j RETURN\n\
-A LIBVIRT_PRT -s 192.168.122.0/24 ! -d 192.168.122.0/24 -p udp -j MASQUERADE --to-ports 1024-65535\n\
-A LIBVIRT_PRT -s 192.168.122.0/24 ! -d 192.168.122.0/24 -j MASQUERADE\n",
    ),
];

const CALICO_MARKS: &[(&str, &str, &str)] = &[(
    "filter",
    ":cali-FORWARD - [0:0]\n-A FORWARD -m comment --comment \"cali:wUHhoiAYhphO9Mso\" -j cali-FORWARD\n",
    "-A cali-FORWARD -m comment --comment \"cali:vjrMJCRpqwy5oRoX\" -j MARK --set-xmark 0x0/0xe0000\n\
-A cali-FORWARD -i cali+ -m comment --comment \"cali:from-wl\" -j MARK --set-xmark 0x10000/0x10000\n\
-A cali-FORWARD -o cali+ -m comment --comment \"cali:to-wl\" -j MARK --set-xmark 0x20000/0x20000\n\
-A cali-FORWARD -m mark --mark 0x10000/0x10000 -m comment --comment \"cali:accept-from\" -j ACCEPT\n\
-A cali-FORWARD -m mark --mark 0x20000/0x20000 -m comment --comment \"cali:accept-to\" -j ACCEPT\n",
)];

const FIREWALLD: &[(&str, &str, &str)] = &[(
    "filter",
    ":FORWARD_direct - [0:0]\n:FORWARD_IN_ZONES - [0:0]\n:FWDI_public - [0:0]\n:FWDI_public_allow - [0:0]\n",
    "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -i lo -j ACCEPT\n\
-A FORWARD -j FORWARD_direct\n-A FORWARD -j FORWARD_IN_ZONES\n\
-A FORWARD -m conntrack --ctstate INVALID -j DROP\n-A FORWARD -j REJECT --reject-with icmp-host-prohibited\n\
-A FORWARD_IN_ZONES -i eth0 -g FWDI_public\n-A FORWARD_IN_ZONES -g FWDI_public\n\
-A FWDI_public -j FWDI_public_allow\n-A FWDI_public -p icmp -j ACCEPT\n",
)];

const CONNMARK: &[(&str, &str, &str)] = &[
    (
        "mangle",
        ":PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
        "-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xff00 --ctmask 0xff00\n\
-A PREROUTING -i cni0 -j MARK --set-xmark 0x200/0xff00\n\
-A PREROUTING -j CONNMARK --save-mark --nfmask 0xff00 --ctmask 0xff00\n",
    ),
    (
        "nat",
        "-A POSTROUTING -m connmark --mark 0x200/0xff00 -j MASQUERADE\n",
        "",
    ),
];

const ISTIO_REDIRECT: &[(&str, &str, &str)] = &[(
    "nat",
    ":ISTIO_INBOUND - [0:0]\n:ISTIO_IN_REDIRECT - [0:0]\n-A PREROUTING -p udp -j ISTIO_INBOUND\n",
    "-A ISTIO_INBOUND -p udp -m udp --dport 15090 -j RETURN\n\
-A ISTIO_INBOUND -p udp -m udp --dport 5300 -j ISTIO_IN_REDIRECT\n\
-A ISTIO_IN_REDIRECT -p udp -j REDIRECT --to-ports 15053\n",
)];

const SEMANTICS: &[(&str, &str, &str)] = &[
    (
        "raw",
        ":PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n",
        "-A PREROUTING -m conntrack --ctstate NEW -j DROP\n",
    ),
    (
        "mangle",
        ":PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
        "-A PREROUTING -p udp -m udp --dport 7200 -j NFQUEUE --queue-num 3 --queue-bypass\n\
-A PREROUTING -p udp -m udp --dport 7300 -j FLIP\n",
    ),
    (
        "security",
        ":INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n",
        "-A FORWARD -d 10.244.0.6/32 -j DROP\n",
    ),
    (
        "nat",
        ":SPECIAL - [0:0]\n:CNT - [0:0]\n-A PREROUTING -j SPECIAL\n\
-A OUTPUT -d 10.96.0.60/32 -p udp -m udp --dport 53 -j KUBE-MARK-MASQ\n\
-A OUTPUT -d 10.96.0.60/32 -p udp -m udp --dport 53 -j DNAT --to-destination 192.168.0.2:5353\n",
        "-A SPECIAL -d 192.168.0.10/32 -p udp -m udp --dport 7000 -j DNAT --to-destination :7001\n\
-A SPECIAL -d 10.96.0.30/32 -p udp -m udp --dport 7002 -j DNAT --to-destination 10.244.0.5:8000-8010\n\
-A SPECIAL -d 10.96.0.30/32 -p udp -m udp --dport 8005 -j DNAT --to-destination 10.244.0.5:8000-8010\n\
-A SPECIAL -d 10.96.0.31/32 -p udp -m udp --dport 80 -j DNAT --to-destination 10.96.0.31:80\n\
-A SPECIAL -p udp -m udp --dport 7100 -m recent --set --name seen --mask 255.255.255.255 --rsource\n\
-A SPECIAL -p udp -m udp --dport 7100 -m recent --rcheck --name seen --mask 255.255.255.255 --rsource -j DNAT --to-destination 10.244.0.7:7100\n\
-A SPECIAL -p udp -m udp --dport 7200 -j DNAT --to-destination 10.244.0.7:7200\n\
-A SPECIAL -d 198.18.0.0/24 -j NETMAP --to 10.244.0.0/24\n\
-A SPECIAL -p udp -m udp --dport 7300 -j DNAT --to-destination 10.244.0.7:7300\n\
-A SPECIAL -p udp -m udp --dport 7400 -j CNT\n\
-A SPECIAL -p udp -m udp --dport 7400 -j CNT\n\
-A SPECIAL -p udp -m udp --dport 7400 -m mark --mark 0x1/0x1 -j DNAT --to-destination 10.244.0.5:7400\n\
-A SPECIAL -p udp -m udp --dport 7400 -j DNAT --to-destination 10.244.0.7:7400\n\
-A CNT -m statistic --mode nth --every 3 --packet 0 -j MARK --set-xmark 0x1/0x1\n",
    ),
];

/// 40 coin flips in mangle, each setting a mark bit that no rule tests.
fn flips() -> String {
    let mut s = String::from(":FLIP - [0:0]\n");
    for i in 0..40u32 {
        let bit = 0x10000u32 << (i % 12);
        s += &format!(
            "-A FLIP -m statistic --mode random --probability 0.50000000000 -j MARK --set-xmark {bit:#x}/{bit:#x}\n"
        );
    }
    s
}

fn case(
    name: &'static str,
    dump: &str,
    pod_if: &'static str,
    from: From,
    dst: &'static str,
    dport: u16,
) -> Case {
    Case {
        name,
        dump: dump.to_string(),
        pod_if,
        uplink: "eth0",
        from,
        dst,
        dport,
        world: &[],
        setup: &[],
    }
}

#[test]
fn real_node_mixtures_agree_with_the_kernel() {
    if !can_run() {
        return;
    }
    let docker = node_dump("DROP", DOCKER_FLANNEL, true);
    let libvirt = node_dump("ACCEPT", LIBVIRT, true);
    let calico = node_dump("DROP", CALICO_MARKS, true);
    let firewalld = node_dump("ACCEPT", FIREWALLD, true);
    let connmark = node_dump("ACCEPT", CONNMARK, true);
    let istio = node_dump("ACCEPT", ISTIO_REDIRECT, true);
    let mut cases = Vec::new();
    for from in [From::Pod, From::Outside, From::Node] {
        cases.push(case(
            "docker+flannel: cluster IP",
            &docker,
            "cni0",
            from,
            CLUSTER_IP,
            53,
        ));
        cases.push(case(
            "libvirt: cluster IP",
            &libvirt,
            "cni0",
            from,
            CLUSTER_IP,
            53,
        ));
        cases.push(case(
            "calico marks: cluster IP",
            &calico,
            "cali0",
            from,
            CLUSTER_IP,
            53,
        ));
        cases.push(case(
            "firewalld: cluster IP",
            &firewalld,
            "cni0",
            from,
            CLUSTER_IP,
            53,
        ));
        cases.push(case(
            "connmark: cluster IP",
            &connmark,
            "cni0",
            from,
            CLUSTER_IP,
            53,
        ));
    }
    cases.push(case(
        "docker+flannel: NodePort",
        &docker,
        "cni0",
        From::Outside,
        NODE,
        30080,
    ));
    cases.push(case(
        "calico marks: NodePort",
        &calico,
        "cali0",
        From::Outside,
        NODE,
        30080,
    ));
    cases.push(case(
        "firewalld: NodePort",
        &firewalld,
        "cni0",
        From::Outside,
        NODE,
        30080,
    ));
    cases.push(case(
        "istio: REDIRECT",
        &istio,
        "cni0",
        From::Outside,
        NODE,
        5300,
    ));
    cases.push(case(
        "istio: cluster IP beside",
        &istio,
        "cni0",
        From::Pod,
        CLUSTER_IP,
        53,
    ));
    // REDIRECT goes to the address of the interface the packet arrived on: cni0's for a pod.
    cases.push(case(
        "istio: REDIRECT from a pod",
        &istio,
        "cni0",
        From::Pod,
        CLUSTER_IP,
        5300,
    ));
    for c in &cases {
        check(c);
    }
}

#[test]
fn netfilter_semantics_agree_with_the_kernel() {
    if !can_run() {
        return;
    }
    let dump = node_dump("ACCEPT", SEMANTICS, true)
        .replace(":FLIP_DECL\n", "")
        .replacen("*mangle\n", &format!("*mangle\n{}", flips()), 1);
    let nfq: &'static [(&'static str, bool)] = &[("nfqueue reader 3", false)];
    let mut cases = vec![
        // raw sees no conntrack entry yet: `--ctstate NEW` never matches there.
        case(
            "raw: NEW is not seen",
            &dump,
            "cni0",
            From::Pod,
            CLUSTER_IP,
            53,
        ),
        // the security table's FORWARD drop takes one endpoint's share.
        case(
            "security: FORWARD drop",
            &dump,
            "cni0",
            From::Outside,
            CLUSTER_IP,
            53,
        ),
        case(
            "DNAT :port keeps the address",
            &dump,
            "cni0",
            From::Outside,
            NODE,
            7000,
        ),
        case(
            "DNAT port range: outside it, the lowest",
            &dump,
            "cni0",
            From::Outside,
            "10.96.0.30",
            7002,
        ),
        case(
            "DNAT port range: inside it, kept",
            &dump,
            "cni0",
            From::Outside,
            "10.96.0.30",
            8005,
        ),
        case(
            "DNAT to itself: no NAT",
            &dump,
            "cni0",
            From::Outside,
            "10.96.0.31",
            80,
        ),
        case(
            "recent --set then --rcheck",
            &dump,
            "cni0",
            From::Outside,
            "10.96.0.40",
            7100,
        ),
        // (to .7: the security table drops .6)
        case("NETMAP", &dump, "cni0", From::Outside, "198.18.0.7", 9000),
        // 2^40 mark states that nothing reads: one exact answer.
        case(
            "unread mark bits",
            &dump,
            "cni0",
            From::Outside,
            "10.96.0.70",
            7300,
        ),
        // One nth counter met twice per packet: 2 of every 3 packets are marked, not 5/9.
        case(
            "nth rule met twice",
            &dump,
            "cni0",
            From::Outside,
            "10.96.0.80",
            7400,
        ),
        // MASQUERADE out of eth0 for a packet already from eth0's address rewrites nothing.
        case(
            "MASQUERADE that changes nothing",
            &dump,
            "cni0",
            From::Node,
            "10.96.0.60",
            53,
        ),
    ];
    let mut q = case(
        "NFQUEUE --queue-bypass, no reader",
        &dump,
        "cni0",
        From::Outside,
        "10.96.0.50",
        7200,
    );
    q.world = nfq;
    cases.push(q);
    for c in &cases {
        check(c);
    }
}

#[test]
fn whole_dumps_are_taken_as_they_are() {
    if !can_run() {
        return;
    }
    // No POSTROUTING → KUBE-POSTROUTING hook: nothing is masqueraded, however marked.
    let unhooked = node_dump("ACCEPT", &[], false);
    // PREROUTING reaches KUBE-SERVICES through a wrapper that returns first for some clients.
    let wrapped = node_dump(
        "ACCEPT",
        &[(
            "nat",
            ":WRAP - [0:0]\n-I PREROUTING 1 -j WRAP\n",
            "-A WRAP -s 203.0.113.0/24 -j RETURN\n-A WRAP -j KUBE-SERVICES\n",
        )],
        true,
    )
    .replace(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
        "",
    );
    // A filter KUBE-SERVICES with a REJECT that no built-in chain jumps to.
    let unhooked_reject = node_dump("ACCEPT", &[(
        "filter",
        ":KUBE-SERVICES - [0:0]\n",
        "-A KUBE-SERVICES -d 10.96.0.20/32 -p udp -m comment --comment \"default/empty:dns has no endpoints\" -m udp --dport 53 -j REJECT --reject-with icmp-port-unreachable\n",
    )], true);
    let cases = [
        case(
            "no postrouting hook: node",
            &unhooked,
            "cni0",
            From::Node,
            CLUSTER_IP,
            53,
        ),
        case(
            "no postrouting hook: outside",
            &unhooked,
            "cni0",
            From::Outside,
            CLUSTER_IP,
            53,
        ),
        case(
            "wrapper returns first",
            &wrapped,
            "cni0",
            From::Outside,
            CLUSTER_IP,
            53,
        ),
        case(
            "wrapper then services",
            &wrapped,
            "cni0",
            From::Pod,
            CLUSTER_IP,
            53,
        ),
        case(
            "unhooked filter reject",
            &unhooked_reject,
            "cni0",
            From::Pod,
            "10.96.0.20",
            53,
        ),
    ];
    for c in &cases {
        check(c);
    }
}

#[test]
fn without_interfaces_docker_rules_are_conditions_not_shares() {
    // The same Docker + flannel node, traced without knowing the interfaces: no outcome may carry
    // a share that came from an interface; each world is whole.
    let dump = node_dump("DROP", DOCKER_FLANNEL, true);
    let rs = kptrace::parse::read("docker", dump.into_bytes(), None).unwrap();
    let eng = Engine::new(&rs, &[NODE.parse().unwrap()]);
    let pkt = Packet::new(
        POD.parse().unwrap(),
        CLUSTER_IP.parse().unwrap(),
        Protocol::Udp,
        53,
    );
    let t = eng.trace(&pkt, Entry::Prerouting);
    for total in t.world_totals(12).expect("few questions") {
        assert!(
            (total - 1.0).abs() < 1e-9,
            "a world's shares sum to {total}"
        );
    }
    // Shares are the endpoints' thirds, never halves of them.
    for o in &t.outcomes {
        let p = o.probability;
        let thirds = [1.0, 1.0 / 3.0, 2.0 / 3.0];
        assert!(
            thirds.iter().any(|x| (p - x).abs() < 1e-6),
            "share {p} of {:?} is not a third of the traffic",
            o.dnat
        );
    }
    let drops: Vec<_> = t
        .outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Drop)
        .collect();
    assert!(drops
        .iter()
        .all(|o| o.conditions.iter().any(|c| c.fact.contains("docker0"))));
    let _ = Ipv4Addr::LOCALHOST;
}

#[test]
fn each_answer_to_an_ipset_question_agrees_with_the_kernel() {
    // `-m set` members are not in a dump: kptrace gives both worlds, each whole. The kernel is
    // asked in both: once with the client in the set, once without.
    if !can_run() || !common::has("ipset") {
        assert!(
            !common::is_root() || common::has("ipset"),
            "root without ipset"
        );
        return;
    }
    let dump = node_dump(
        "ACCEPT",
        &[(
            "filter",
            ":BLOCKLIST - [0:0]\n-I FORWARD 1 -j BLOCKLIST\n",
            "-A BLOCKLIST -m set --match-set kpt-blocked src -j DROP\n",
        )],
        true,
    );
    let mut member = case(
        "ipset holds the client",
        &dump,
        "cni0",
        From::Outside,
        CLUSTER_IP,
        53,
    );
    member.world = &[("set kpt-blocked", true)];
    member.setup = &[
        "ipset create kpt-blocked hash:ip",
        "ipset add kpt-blocked 203.0.113.77",
    ];
    let mut other = case(
        "ipset lacks the client",
        &dump,
        "cni0",
        From::Outside,
        CLUSTER_IP,
        53,
    );
    other.world = &[("set kpt-blocked", false)];
    other.setup = &[
        "ipset create kpt-blocked hash:ip",
        "ipset add kpt-blocked 198.51.100.1",
    ];
    check(&member);
    check(&other);
}

#[test]
fn an_nth_counter_met_twice_per_packet_gives_its_cycle_not_a_product() {
    // Evaluations advance one counter: with --every 3, two per packet, every third evaluation
    // matches, so 2 of every 3 packets are marked (not 1 − (2/3)² = 5/9).
    let dump = "*nat\n:PREROUTING ACCEPT [0:0]\n:CNT - [0:0]\n\
        -A PREROUTING -p udp -j CNT\n-A PREROUTING -p udp -j CNT\n\
        -A PREROUTING -p udp -m mark --mark 0x1/0x1 -j DNAT --to-destination 10.244.0.6:7400\n\
        -A PREROUTING -p udp -j DNAT --to-destination 10.244.0.5:7400\n\
        -A CNT -m statistic --mode nth --every 3 --packet 0 -j MARK --set-xmark 0x1/0x1\nCOMMIT\n";
    let rs = kptrace::parse::read("nth", dump.as_bytes().to_vec(), None).unwrap();
    let eng = Engine::new(&rs, &[]);
    let pkt = Packet::new(
        OUTSIDE.parse().unwrap(),
        "10.96.0.80".parse().unwrap(),
        Protocol::Udp,
        7400,
    );
    let t = eng.trace(&pkt, Entry::Prerouting);
    let share = |d: &str| -> f64 {
        t.outcomes
            .iter()
            .filter(|o| o.dnat.as_deref() == Some(d))
            .map(|o| o.probability)
            .sum()
    };
    assert!(
        (share("10.244.0.6:7400") - 2.0 / 3.0).abs() < 1e-12,
        "{:#?}",
        t.outcomes
    );
    assert!((share("10.244.0.5:7400") - 1.0 / 3.0).abs() < 1e-12);
    assert!(!t.approximate());
}

/// The breakages `lint` reports, run in the kernel: what the finding says breaks does break, and
/// its near miss does not.
#[test]
fn lint_breakages_agree_with_the_kernel() {
    if !can_run() {
        return;
    }
    let lint_names = |dump: &str| -> Vec<&'static str> {
        let rs = kptrace::parse::read("node", dump.as_bytes().to_vec(), None).unwrap();
        kptrace::lint::run(&rs, &kptrace::lint::Options::default())
            .into_iter()
            .filter(|f| f.severity >= kptrace::lint::Severity::Warning)
            .map(|f| f.rule.name)
            .collect()
    };
    let mark_accept = "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT\n";
    // Docker's FORWARD policy DROP with kube-proxy's mark accept, and without it.
    let policy_drop = node_dump("DROP", &[], true);
    assert!(policy_drop.contains(mark_accept));
    let no_accept = policy_drop.replace(mark_accept, "");
    assert!(!lint_names(&policy_drop).contains(&"forward-policy-drop"));
    assert!(lint_names(&no_accept).contains(&"forward-policy-drop"));
    // A mangle POSTROUTING rule that sets the whole mark, and one that keeps to its own bit.
    let mangle = |rule: &str| {
        node_dump(
            "ACCEPT",
            &[(
                "mangle",
                ":PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
                rule,
            )],
            true,
        )
    };
    let clobbers = mangle("-A POSTROUTING -j MARK --set-xmark 0x100/0xffffffff\n");
    let own_bit = mangle("-A POSTROUTING -j MARK --set-xmark 0x100/0x100\n");
    let found = lint_names(&clobbers);
    assert!(
        found.contains(&"mark-collision") && found.contains(&"missing-masquerade"),
        "{found:?}"
    );
    assert!(
        lint_names(&own_bit).is_empty(),
        "{:?}",
        lint_names(&own_bit)
    );
    let cases = [
        case(
            "FORWARD policy DROP, mark accepted: NodePort",
            &policy_drop,
            "cni0",
            From::Outside,
            NODE,
            30080,
        ),
        case(
            "FORWARD policy DROP, nothing accepts: NodePort",
            &no_accept,
            "cni0",
            From::Outside,
            NODE,
            30080,
        ),
        case(
            "mangle clears the masquerade bit: NodePort",
            &clobbers,
            "cni0",
            From::Outside,
            NODE,
            30080,
        ),
        case(
            "mangle sets its own bit: NodePort",
            &own_bit,
            "cni0",
            From::Outside,
            NODE,
            30080,
        ),
    ];
    for c in &cases {
        check(c);
    }
}
