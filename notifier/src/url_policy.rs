//! Which URLs the gateway will send webhooks to.
//!
//! In production only `https` URLs, and never to an address inside the
//! gateway's own networks (SSRF): a host name is resolved and **every**
//! address it resolves to must be public, both when the merchant registers
//! the URL (the API) and at every delivery (the notifier's resolver), since
//! DNS may change in between. Redirects are never followed.
//!
//! The development switch (`WEBHOOK_ALLOW_LOOPBACK_HTTP`) additionally
//! allows `http://` to loopback hosts (127.0.0.1, ::1, localhost) and
//! loopback addresses, for tests and the local run. Other private
//! addresses stay refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Development only: allow `http://` and loopback addresses.
    pub allow_loopback_http: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("the URL is not a valid absolute URL of at most 2048 characters")]
    Invalid,
    #[error("only https URLs are allowed")]
    SchemeNotAllowed,
    #[error("the URL must not hold a user name, password or fragment")]
    CredentialsNotAllowed,
    #[error("the URL's host resolves to an address that is not public ({0})")]
    AddressNotAllowed(IpAddr),
    #[error("the URL's host does not resolve")]
    Unresolvable,
}

impl UrlError {
    /// Stable API error code.
    pub fn code(&self) -> &'static str {
        match self {
            UrlError::Invalid => "invalid_url",
            UrlError::SchemeNotAllowed => "url_scheme_not_allowed",
            UrlError::CredentialsNotAllowed => "url_credentials_not_allowed",
            UrlError::AddressNotAllowed(_) => "url_address_not_allowed",
            UrlError::Unresolvable => "url_unresolvable",
        }
    }
}

impl UrlPolicy {
    /// Checks what can be checked without the network: syntax, scheme, no
    /// credentials, and an IP-literal host.
    pub fn check_syntax(&self, text: &str) -> Result<Url, UrlError> {
        if text.len() > MAX_URL_LEN {
            return Err(UrlError::Invalid);
        }
        let url = Url::parse(text).map_err(|_| UrlError::Invalid)?;
        let host = url.host().ok_or(UrlError::Invalid)?;
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(UrlError::CredentialsNotAllowed);
        }
        match url.scheme() {
            "https" => {}
            "http" if self.allow_loopback_http && is_loopback_host(&host) => {}
            _ => return Err(UrlError::SchemeNotAllowed),
        }
        match host {
            Host::Ipv4(ip) => self.check_ip(IpAddr::V4(ip))?,
            Host::Ipv6(ip) => self.check_ip(IpAddr::V6(ip))?,
            Host::Domain(_) => {}
        }
        Ok(url)
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), UrlError> {
        if is_public(ip) || (self.allow_loopback_http && canonical(ip).is_loopback()) {
            Ok(())
        } else {
            Err(UrlError::AddressNotAllowed(ip))
        }
    }

    /// Every address must be allowed; none at all is an error.
    pub fn check_addresses(&self, addrs: &[IpAddr]) -> Result<(), UrlError> {
        if addrs.is_empty() {
            return Err(UrlError::Unresolvable);
        }
        addrs.iter().try_for_each(|ip| self.check_ip(*ip))
    }

    /// [`check_syntax`](Self::check_syntax), then resolves the host and
    /// checks every address.
    pub async fn check(&self, text: &str) -> Result<Url, UrlError> {
        let url = self.check_syntax(text)?;
        let addrs = match url.host() {
            Some(Host::Domain(name)) => resolve(name).await?,
            // IP literals were checked above.
            _ => return Ok(url),
        };
        self.check_addresses(&addrs)?;
        Ok(url)
    }
}

/// Every address `name` resolves to.
pub async fn resolve(name: &str) -> Result<Vec<IpAddr>, UrlError> {
    let addrs = tokio::net::lookup_host((name, 0)).await.map_err(|_| UrlError::Unresolvable)?;
    Ok(addrs.map(|a: SocketAddr| a.ip()).collect())
}

fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => canonical(IpAddr::V6(*ip)).is_loopback(),
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Globally routable unicast: not loopback, private, link-local, shared
/// (CGNAT), documentation, benchmarking, multicast, reserved or unspecified,
/// nor an IPv6 form that embeds such an IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
        return false;
    }
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match s[0] {
        0xfc00..=0xfdff => false,                                          // unique local
        0xfe80..=0xfebf => false,                                          // link-local
        0xfec0..=0xfeff => false,                                          // site-local (deprecated)
        0x2001 if s[1] == 0x0db8 => false,                                 // documentation
        0x2001 if s[1] == 0 => false,                                      // Teredo
        0x2002 => is_public_v4(embedded_v4(s[1], s[2])),                   // 6to4
        0x0064 if s[1] == 0xff9b => is_public_v4(embedded_v4(s[6], s[7])), // NAT64
        // ::/96 (IPv4-compatible, deprecated) and the rest of ::/8.
        0 => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROD: UrlPolicy = UrlPolicy { allow_loopback_http: false };
    const DEV: UrlPolicy = UrlPolicy { allow_loopback_http: true };

    #[test]
    fn production_refuses_http_and_internal_address_literals() {
        for (url, error) in [
            ("http://example.com/hook", UrlError::SchemeNotAllowed),
            ("ftp://example.com/hook", UrlError::SchemeNotAllowed),
            ("http://127.0.0.1:9000/hook", UrlError::SchemeNotAllowed),
            ("https://user:pw@example.com/", UrlError::CredentialsNotAllowed),
            ("https://example.com/#x", UrlError::CredentialsNotAllowed),
            ("not a url", UrlError::Invalid),
            ("https://", UrlError::Invalid),
            ("mailto:ops@example.com", UrlError::Invalid),
        ] {
            assert_eq!(PROD.check_syntax(url).unwrap_err(), error, "{url}");
        }
        for url in [
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://0.0.0.0/",
            "https://100.64.0.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[64:ff9b::a00:1]/",
            "https://[2002:c0a8:101::1]/",
            "https://2130706433/", // 127.0.0.1 in decimal
            "https://0x7f.1/",
        ] {
            assert!(
                matches!(PROD.check_syntax(url), Err(UrlError::AddressNotAllowed(_))),
                "{url}: {:?}",
                PROD.check_syntax(url)
            );
        }
        PROD.check_syntax("https://93.184.215.14:8443/hook?x=1").unwrap();
        PROD.check_syntax("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/").unwrap();
    }

    #[test]
    fn every_resolved_address_must_be_public() {
        let public: IpAddr = "93.184.215.14".parse().unwrap();
        let private: IpAddr = "10.0.0.7".parse().unwrap();
        PROD.check_addresses(&[public]).unwrap();
        assert_eq!(PROD.check_addresses(&[public, private]), Err(UrlError::AddressNotAllowed(private)));
        assert_eq!(PROD.check_addresses(&[]), Err(UrlError::Unresolvable));
    }

    #[test]
    fn development_switch_allows_loopback_http_only() {
        DEV.check_syntax("http://127.0.0.1:9000/hook").unwrap();
        DEV.check_syntax("http://localhost:9000/hook").unwrap();
        DEV.check_syntax("http://[::1]:9000/hook").unwrap();
        assert_eq!(DEV.check_syntax("http://example.com/").unwrap_err(), UrlError::SchemeNotAllowed);
        assert!(matches!(DEV.check_syntax("https://10.0.0.1/"), Err(UrlError::AddressNotAllowed(_))));
        assert!(matches!(DEV.check_syntax("https://169.254.169.254/"), Err(UrlError::AddressNotAllowed(_))));
    }

    #[tokio::test]
    async fn localhost_is_resolved_and_refused_in_production() {
        assert!(matches!(PROD.check("https://localhost/hook").await, Err(UrlError::AddressNotAllowed(_))));
        DEV.check("http://localhost:1/hook").await.unwrap();
    }
}
