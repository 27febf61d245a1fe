//! The caller's address, for the per-address login throttle: the TCP peer, or the client
//! that a trusted proxy names in `X-Forwarded-For`.
use std::net::IpAddr;

use ipnet::IpNet;
use tonic::Request;

/// The address a call comes from. `X-Forwarded-For` is believed only from a peer in
/// `trusted`: walking it from the right, the first address that is not a trusted proxy is
/// the client (entries to its left were written by the client itself and prove nothing).
pub(crate) fn client_ip<T>(request: &Request<T>, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = request.remote_addr()?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut hops = Vec::new();
    for value in request.metadata().get_all("x-forwarded-for").iter() {
        let Ok(v) = value.to_str() else {
            return Some(peer);
        };
        for hop in v.split(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => hops.push(ip),
                // A header we cannot read names nobody we can trust.
                Err(_) => return Some(peer),
            }
        }
    }
    Some(
        hops.into_iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .unwrap_or(peer),
    )
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tonic::transport::server::TcpConnectInfo;

    use super::*;

    fn request(peer: &str, xff: &[&str]) -> Request<()> {
        let mut r = Request::new(());
        r.extensions_mut().insert(TcpConnectInfo {
            local_addr: None,
            remote_addr: Some(peer.parse::<SocketAddr>().unwrap()),
        });
        for v in xff {
            r.metadata_mut()
                .append("x-forwarded-for", v.parse().unwrap());
        }
        r
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_header_is_ignored_from_untrusted_peers() {
        let r = request("198.51.100.9:5000", &["203.0.113.5"]);
        assert_eq!(client_ip(&r, &[]), ip("198.51.100.9"));
        assert_eq!(client_ip(&r, &nets(&["10.0.0.0/8"])), ip("198.51.100.9"));
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_spoofed_entries_are_skipped() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client wrote "1.2.3.4" itself; the proxy appended the real address.
        let r = request("10.0.0.2:5000", &["1.2.3.4, 203.0.113.5"]);
        assert_eq!(client_ip(&r, &trusted), ip("203.0.113.5"));
        // Two trusted hops.
        let r = request("10.0.0.2:5000", &["203.0.113.5, 10.0.0.7"]);
        assert_eq!(client_ip(&r, &trusted), ip("203.0.113.5"));
        // Repeated headers are one list.
        let r = request("10.0.0.2:5000", &["1.2.3.4", "203.0.113.6"]);
        assert_eq!(client_ip(&r, &trusted), ip("203.0.113.6"));
    }

    #[test]
    fn garbage_or_no_header_from_a_proxy_means_the_proxy() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(&request("10.0.0.2:1", &[]), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip(&request("10.0.0.2:1", &["unknown, 203.0.113.5"]), &trusted),
            ip("10.0.0.2")
        );
    }
}
