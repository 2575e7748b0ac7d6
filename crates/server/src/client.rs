//! Who sent a request: the client address that login throttling counts
//! and whether the browser reached us over HTTPS (cookies are then
//! `Secure`, answers carry HSTS).
//!
//! Behind a load balancer or TLS proxy every request comes from the
//! proxy's address, and every clinician would share one throttle count.
//! The proxy tells us the real client in `X-Forwarded-For` and the scheme
//! in `X-Forwarded-Proto`; but anyone can send those headers, so they are
//! read only from a peer inside a `--trusted-proxy` range, and the client
//! is the last address in `X-Forwarded-For` that is not itself a trusted
//! proxy (each proxy appends the address it saw; what lies further left
//! came from the client and proves nothing). Without a trusted proxy the
//! headers are ignored.

use std::net::{IpAddr, SocketAddr};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use infusion_store::throttle::canonical;
use ipnet::IpNet;

use crate::error::ApiError;

/// The client of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The client's address (the TCP peer unless a trusted proxy said
    /// otherwise).
    pub ip: IpAddr,
    /// Reached over HTTPS: ours, or a trusted proxy's.
    pub https: bool,
}

/// The address ranges whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    /// True when `ip` lies in a trusted range.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request from `peer` with `headers`; `https` is
    /// whether this server itself serves HTTPS.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap, https: bool) -> Client {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return Client { ip: peer, https };
        }
        let mut ip = peer;
        for hop in forwarded(headers).into_iter().rev() {
            let Some(hop) = parse_hop(hop) else { break };
            ip = hop;
            if !self.trusts(hop) {
                break;
            }
        }
        let forwarded_https = headers
            .get_all("x-forwarded-proto")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        Client {
            ip,
            https: https || forwarded_https,
        }
    }
}

/// Every `X-Forwarded-For` entry, in order, over all its header lines.
fn forwarded(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .collect()
}

/// An `X-Forwarded-For` entry: an address, maybe with a port (IPv6 then
/// in brackets). Anything else ends the walk, at the last address known.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(canonical)
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = ApiError;

    /// The client the connection layer found for this request (see
    /// [`crate::app::Application::run_until`]).
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Client>()
            .copied()
            .ok_or_else(|| ApiError::internal("no client address on the request"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[
            ("x-forwarded-for", "192.0.2.9"),
            ("x-forwarded-proto", "https"),
        ]);
        let c = TrustedProxies::default().client(ip("198.51.100.1"), &h, false);
        assert_eq!(
            c,
            Client {
                ip: ip("198.51.100.1"),
                https: false
            }
        );
        let c = trusted(&["10.0.0.0/8"]).client(ip("198.51.100.1"), &h, false);
        assert_eq!(
            c,
            Client {
                ip: ip("198.51.100.1"),
                https: false
            }
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_the_scheme() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "192.0.2.9"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            t.client(ip("10.1.2.3"), &h, false),
            Client {
                ip: ip("192.0.2.9"),
                https: true
            }
        );
        let h = headers(&[
            ("x-forwarded-for", "192.0.2.9"),
            ("x-forwarded-proto", "http"),
        ]);
        assert!(!t.client(ip("10.1.2.3"), &h, false).https);
        // No header: the proxy itself.
        assert_eq!(
            t.client(ip("10.1.2.3"), &HeaderMap::new(), false).ip,
            ip("10.1.2.3")
        );
    }

    #[test]
    fn the_client_is_the_last_untrusted_hop_whatever_it_claims_further_left() {
        let t = trusted(&["10.0.0.0/8", "2001:db8:f::/48"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.66, 192.0.2.9, 10.0.0.2")]);
        assert_eq!(t.client(ip("10.0.0.1"), &h, false).ip, ip("192.0.2.9"));
        // Over several header lines, the last line is the nearest hop.
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.66"),
            ("x-forwarded-for", "192.0.2.9"),
        ]);
        assert_eq!(t.client(ip("10.0.0.1"), &h, false).ip, ip("192.0.2.9"));
        // Garbage ends the walk at the last address known.
        let h = headers(&[("x-forwarded-for", "203.0.113.66, junk, 10.0.0.2")]);
        assert_eq!(t.client(ip("10.0.0.1"), &h, false).ip, ip("10.0.0.2"));
        // Ports, brackets and mapped addresses.
        let h = headers(&[("x-forwarded-for", "[2001:db8::7]:4711")]);
        assert_eq!(
            t.client(ip("::ffff:10.0.0.1"), &h, false).ip,
            ip("2001:db8::7")
        );
        let h = headers(&[("x-forwarded-for", "::ffff:192.0.2.9")]);
        assert_eq!(t.client(ip("2001:db8:f::1"), &h, false).ip, ip("192.0.2.9"));
    }

    #[test]
    fn serving_https_ourselves_is_https_whatever_the_headers() {
        let h = headers(&[("x-forwarded-proto", "http")]);
        assert!(
            TrustedProxies::default()
                .client(ip("192.0.2.1"), &h, true)
                .https
        );
    }
}
