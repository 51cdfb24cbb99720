//! Reads the comments kube-proxy writes: `"ns/name:port cluster IP"`, `"ns/name:port -> 10.1.2.3:80"`,
//! `"ns/name:port has no endpoints"`, `"masquerade traffic for ns/name:port external destinations"`…

/// A Service port named in a comment: `ns/name` and the port name (empty for an unnamed port).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRef {
    pub service: String,
    pub port: Option<String>,
}

/// What a comment says about the rule it is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeComment {
    pub port: PortRef,
    /// The words after the Service reference (`cluster IP`, `has no endpoints`, `-> 10.0.0.1:80`, …).
    pub tail: String,
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Recognises `ns/name`, `ns/name:`, `ns/name:port`.
pub fn port_ref(word: &str) -> Option<PortRef> {
    let (ns, rest) = word.split_once('/')?;
    let (name, port) = match rest.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (rest, None),
    };
    if !is_name(ns) || !is_name(name) || port.is_some_and(|p| !p.is_empty() && !is_name(p)) {
        return None;
    }
    Some(PortRef {
        service: format!("{ns}/{name}"),
        port: port.filter(|p| !p.is_empty()).map(str::to_string),
    })
}

pub fn parse(comment: &str) -> Option<KubeComment> {
    let mut words = comment.split_whitespace();
    let mut before = Vec::new();
    for w in words.by_ref() {
        if let Some(port) = port_ref(w) {
            let after: Vec<&str> = words.collect();
            let tail = if before.is_empty() {
                after.join(" ")
            } else {
                // "masquerade traffic for ns/a:p external destinations": keep the whole sentence.
                comment.to_string()
            };
            return Some(KubeComment { port, tail });
        }
        before.push(w);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_proxy_comments() {
        let c = parse("ns1/svc1:p80 cluster IP").unwrap();
        assert_eq!(c.port.service, "ns1/svc1");
        assert_eq!(c.port.port.as_deref(), Some("p80"));
        assert_eq!(c.tail, "cluster IP");
        let c = parse("default/testsvc: loadbalancer IP").unwrap();
        assert_eq!(c.port.port, None);
        assert_eq!(c.tail, "loadbalancer IP");
        let c = parse("ns4/svc4:p80 -> 10.180.0.4:80").unwrap();
        assert_eq!(c.tail, "-> 10.180.0.4:80");
        assert!(parse("kubernetes service portals").is_none());
        assert!(parse("masquerade traffic for ns4/svc4:p80 external destinations").is_some());
        assert_eq!(
            parse("default/nginx-svc:80").unwrap().port.port.as_deref(),
            Some("80")
        );
    }
}
