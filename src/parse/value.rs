//! Values of options: addresses, ports, marks, probabilities, NAT ranges, counters.

use crate::error::ParseErrorKind;
use crate::model::criterion::{PortRange, Statistic};
use crate::model::target::NatRange;
use crate::model::Counters;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use nom::bytes::complete::tag;
use nom::character::complete::{char, digit1};
use nom::combinator::{all_consuming, map_res};
use nom::sequence::{delimited, separated_pair};
use nom::{IResult, Parser};
use std::net::{IpAddr, Ipv4Addr};

/// `10.0.0.1`, `10.0.0.0/8`, `10.0.0.0/255.0.0.0`, `fd00::/64`. The host bits are cleared, as the
/// kernel does (`-s 10.0.0.1/8` is saved as `10.0.0.0/8`).
pub fn address(s: &str) -> Result<IpNet, ParseErrorKind> {
    let bad = || ParseErrorKind::BadAddress(s.to_string());
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let len = match prefix {
        None => match ip {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        },
        Some(p) if p.contains('.') => {
            let mask: Ipv4Addr = p.parse().map_err(|_| bad())?;
            let m = u32::from(mask);
            if m.leading_ones() + m.trailing_zeros() != 32 {
                // Read by [`masked_address`]; the error is what a caller sees without it.
                return Err(ParseErrorKind::BadAddress(s.to_string()));
            }
            m.leading_ones() as u8
        }
        Some(p) => p.parse::<u8>().map_err(|_| bad())?,
    };
    let net = match ip {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, len).map_err(|_| bad())?),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, len).map_err(|_| bad())?),
    };
    Ok(net.trunc())
}

/// `198.51.0.7/255.255.0.255`: an address under a netmask whose ones are not contiguous, which
/// iptables takes and iptables-save prints as given. The address comes back with the bits outside
/// the mask cleared, as the kernel stores it.
pub fn masked_address(s: &str) -> Option<(IpAddr, IpAddr)> {
    let (a, m) = s.split_once('/')?;
    match (a.parse().ok()?, m.parse().ok()?) {
        (IpAddr::V4(a), IpAddr::V4(m)) => {
            Some((Ipv4Addr::from(u32::from(a) & u32::from(m)).into(), m.into()))
        }
        (IpAddr::V6(a), IpAddr::V6(m)) => Some((
            std::net::Ipv6Addr::from(u128::from(a) & u128::from(m)).into(),
            m.into(),
        )),
        _ => None,
    }
}

fn port_number(s: &str) -> Result<u16, ParseErrorKind> {
    if let Ok(n) = s.parse::<u32>() {
        return u16::try_from(n).map_err(|_| ParseErrorKind::BadPort(s.to_string()));
    }
    // Service names, as listings without `-n` and scripts write them; iptables-save prints numbers.
    super::services::port(s)
        .or_else(|| (s == "dns").then_some(53))
        .ok_or_else(|| ParseErrorKind::BadPort(s.to_string()))
}

/// `80`, `80:90`, `:90`, `80:` (iptables also takes `80-90` in some targets).
pub fn port_range(s: &str) -> Result<PortRange, ParseErrorKind> {
    // Nearly every port of a dump is one number.
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(PortRange::single(port_number(s)?));
    }
    // A service name may hold a dash (`http-alt`): a whole name is one port, and a range is split
    // where both sides read as ports.
    let sep = s.find(':').or_else(|| {
        s.match_indices('-')
            .map(|(i, _)| i)
            .find(|&i| port_number(&s[..i]).is_ok() && port_number(&s[i + 1..]).is_ok())
            .or_else(|| s.find('-'))
    });
    let r = match sep {
        _ if port_number(s).is_ok() => PortRange::single(port_number(s)?),
        None => PortRange::single(port_number(s)?),
        Some(i) => {
            let (lo, hi) = (&s[..i], &s[i + 1..]);
            let lo = if lo.is_empty() { 0 } else { port_number(lo)? };
            let hi = if hi.is_empty() {
                65535
            } else {
                port_number(hi)?
            };
            PortRange { lo, hi }
        }
    };
    if r.lo > r.hi {
        return Err(ParseErrorKind::BadPort(s.to_string()));
    }
    Ok(r)
}

/// `80,443,8000:8080` of `-m multiport`.
pub fn port_list(s: &str) -> Result<Vec<PortRange>, ParseErrorKind> {
    s.split(',').map(port_range).collect()
}

/// A 32-bit number in decimal or `0x` hex.
pub fn number(s: &str) -> Result<u32, ParseErrorKind> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse::<u32>(),
    };
    r.map_err(|_| ParseErrorKind::BadNumber(s.to_string()))
}

/// `value[/mask]`; the mask defaults to all ones.
pub fn mark(s: &str) -> Result<(u32, u32), ParseErrorKind> {
    match s.split_once('/') {
        Some((v, m)) => Ok((number(v)?, number(m)?)),
        None => Ok((number(s)?, u32::MAX)),
    }
}

/// A probability as the kernel will store it.
pub fn probability(s: &str) -> Result<u32, ParseErrorKind> {
    let p: f64 = s
        .parse()
        .map_err(|_| ParseErrorKind::BadProbability(s.to_string()))?;
    if !(0.0..=1.0).contains(&p) || p.is_nan() {
        return Err(ParseErrorKind::BadProbability(s.to_string()));
    }
    Ok(Statistic::threshold_of(p))
}

/// `[ip[-ip]][:port[-port]]`, with IPv6 addresses in brackets when a port follows.
pub fn nat_range(s: &str) -> Result<NatRange, ParseErrorKind> {
    let bad = || ParseErrorKind::BadValue {
        option: "--to-destination".into(),
        value: s.to_string(),
    };
    let (addrs, ports) = if let Some(rest) = s.strip_prefix('[') {
        let (a, after) = rest.split_once(']').ok_or_else(bad)?;
        (a, after.strip_prefix(':'))
    } else if s.matches(':').count() > 1 {
        (s, None) // a bare IPv6 address
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let addr = if addrs.is_empty() {
        None
    } else {
        // Nearly always one address: parsed once, not once for each end of the range.
        let (lo, hi) = match addrs.split_once('-') {
            Some((lo, hi)) => (lo, Some(hi)),
            None => (addrs, None),
        };
        let lo: IpAddr = lo.parse().map_err(|_| bad())?;
        let hi: IpAddr = match hi {
            Some(hi) => hi.parse().map_err(|_| bad())?,
            None => lo,
        };
        Some((lo, hi))
    };
    let ports = match ports {
        Some(p) => Some(port_range(p)?),
        None => None,
    };
    if addr.is_none() && ports.is_none() {
        return Err(bad());
    }
    Ok(NatRange { addr, ports })
}

fn u64_dec(i: &str) -> IResult<&str, u64> {
    map_res(digit1, str::parse::<u64>).parse(i)
}

/// `[packets:bytes]`.
pub fn counters(s: &str) -> Result<Counters, ParseErrorKind> {
    // What every declaration of a dump saved without `-c` carries.
    if s == "[0:0]" {
        return Ok(Counters::default());
    }
    all_consuming(delimited(
        tag("["),
        separated_pair(u64_dec, char(':'), u64_dec),
        tag("]"),
    ))
    .parse(s)
    .map(|(_, (packets, bytes))| Counters { packets, bytes })
    .map_err(|_| ParseErrorKind::BadCounters(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(address("10.0.0.1").unwrap().to_string(), "10.0.0.1/32");
        assert_eq!(address("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            address("10.0.0.0/255.255.0.0").unwrap().to_string(),
            "10.0.0.0/16"
        );
        assert_eq!(address("fd00::1").unwrap().to_string(), "fd00::1/128");
        assert!(address("10.0.0.0/33").is_err());
        assert!(address("10.0.0.256").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(port_range("80").unwrap(), PortRange::single(80));
        assert_eq!(port_range("80:90").unwrap(), PortRange { lo: 80, hi: 90 });
        assert_eq!(port_range(":90").unwrap(), PortRange { lo: 0, hi: 90 });
        assert!(port_range("70000").is_err());
        assert!(port_range("90:80").is_err());
    }

    #[test]
    fn probabilities_round_like_the_kernel() {
        assert_eq!(probability("0.33333333349").unwrap(), 715827883);
        assert_eq!(probability("0.3333333333").unwrap(), 715827883);
        assert_eq!(probability("0.5").unwrap(), 1 << 30);
        assert!(probability("1.5").is_err());
        assert!(probability("-0.1").is_err());
    }

    #[test]
    fn nat_ranges() {
        assert_eq!(nat_range("10.1.2.3:80").unwrap().to_string(), "10.1.2.3:80");
        assert_eq!(nat_range("10.1.2.3").unwrap().to_string(), "10.1.2.3");
        assert_eq!(
            nat_range("[fd00::1]:80").unwrap().to_string(),
            "[fd00::1]:80"
        );
        assert_eq!(nat_range("fd00::1").unwrap().to_string(), "fd00::1");
        assert_eq!(
            nat_range("10.0.0.1-10.0.0.3:80-90").unwrap().to_string(),
            "10.0.0.1-10.0.0.3:80-90"
        );
    }

    #[test]
    fn counter_pairs() {
        assert_eq!(
            counters("[12:3456]").unwrap(),
            Counters {
                packets: 12,
                bytes: 3456
            }
        );
        assert!(counters("[1:x]").is_err());
    }
}
