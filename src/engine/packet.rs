//! The packet the engine follows, and where it enters.

use crate::model::Protocol;
use std::net::IpAddr;

/// Where a packet enters netfilter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Entry {
    /// From the network: PREROUTING, then INPUT or FORWARD.
    Prerouting,
    /// From a process on the node: OUTPUT, then POSTROUTING.
    Output,
}

/// The first packet of a new connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Protocol,
    pub sport: u16,
    pub dport: u16,
    pub in_iface: Option<String>,
    pub out_iface: Option<String>,
    pub mark: u32,
}

impl Packet {
    pub fn new(src: IpAddr, dst: IpAddr, proto: Protocol, dport: u16) -> Packet {
        Packet {
            src,
            dst,
            proto,
            sport: 40000,
            dport,
            in_iface: None,
            out_iface: None,
            mark: 0,
        }
    }
}
