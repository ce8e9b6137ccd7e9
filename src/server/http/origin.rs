//! DNS-rebinding protection: the `Host` and `Origin` checks the MCP spec requires of HTTP
//! servers, applied to every MCP route of both transports.
//!
//! A web page the user visits can make the browser send requests to a server on the user's
//! machine; the browser then names the page in `Origin`, and a rebound DNS name in `Host`.
//! Requests without `Origin` come from non-browser clients and are not affected.
//!
//! Ambiguity is refused rather than resolved: a request with two `Host` or two `Origin` headers
//! is refused, and a request whose target is in absolute form (`POST http://host/mcp`) has the
//! host of its target checked as well as its `Host` header, since servers and proxies differ
//! on which of the two counts.

use std::net::SocketAddr;

use axum::http::{HeaderMap, Uri, header};

/// Which `Host` and `Origin` values are accepted.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    hosts: Option<Vec<String>>,
    origins: Vec<AllowedOrigin>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The `Host` header names a host not on the list.
    Host(String),
    /// The `Origin` header names an origin not on the list.
    Origin(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Host(host) => write!(
                f,
                "Host '{host}' is not allowed; add it to [server] allowed_hosts if this server is meant to be reached by that name"
            ),
            Refusal::Origin(origin) => write!(
                f,
                "Origin '{origin}' is not allowed; add it to [server] allowed_origins if web pages from that origin may call this server"
            ),
        }
    }
}

#[derive(Debug, Clone)]
struct AllowedOrigin {
    scheme: String,
    host: String,
    /// `None` matches any port.
    port: Option<u16>,
    null: bool,
}

const LOOPBACK_HOSTS: [&str; 4] = ["localhost", "127.0.0.1", "[::1]", "::1"];

impl OriginPolicy {
    /// The policy for a server bound to `bound`: configured lists, or the defaults (loopback
    /// origins; loopback hosts when bound to loopback, any host otherwise).
    pub fn new(
        bound: SocketAddr,
        allowed_hosts: Option<&[String]>,
        allowed_origins: Option<&[String]>,
    ) -> Self {
        let hosts = match allowed_hosts {
            Some(list) => Some(list.iter().map(|h| h.to_ascii_lowercase()).collect()),
            None if bound.ip().is_loopback() => {
                Some(LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()).collect())
            }
            None => None,
        };
        let origins = match allowed_origins {
            Some(list) => list.iter().filter_map(|o| parse_allowed(o)).collect(),
            None => ["http", "https"]
                .iter()
                .flat_map(|scheme| {
                    ["localhost", "127.0.0.1", "[::1]"].map(|host| AllowedOrigin {
                        scheme: (*scheme).to_owned(),
                        host: host.to_owned(),
                        port: None,
                        null: false,
                    })
                })
                .collect(),
        };
        OriginPolicy { hosts, origins }
    }

    /// Checks a request's target, `Host` and `Origin` headers.
    pub fn check(&self, target: &Uri, headers: &HeaderMap) -> Result<(), Refusal> {
        if headers.get_all(header::HOST).iter().nth(1).is_some() {
            return Err(Refusal::Host("(more than one Host header)".to_owned()));
        }
        if headers.get_all(header::ORIGIN).iter().nth(1).is_some() {
            return Err(Refusal::Origin("(more than one Origin header)".to_owned()));
        }
        if let Some(hosts) = &self.hosts {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            self.check_host(hosts, host)?;
            if let Some(authority) = target.authority() {
                self.check_host(hosts, authority.as_str())?;
            }
        } else if let Some(authority) = target.authority()
            && authority.as_str().contains('@')
        {
            // Credentials in the target have no business here, whatever the host list.
            return Err(Refusal::Host(authority.host().to_owned()));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("(not text)");
            if !self.origins.iter().any(|allowed| allowed.matches(origin)) {
                return Err(Refusal::Origin(origin.to_owned()));
            }
        }
        Ok(())
    }
}

impl OriginPolicy {
    fn check_host(&self, hosts: &[String], host: &str) -> Result<(), Refusal> {
        let host = host.to_ascii_lowercase();
        // `user@host` in an absolute-form target names `host`; any `@` is refused outright.
        let name = host_name(&host);
        if host.contains('@')
            || !hosts
                .iter()
                .any(|allowed| *allowed == host || allowed == name)
        {
            return Err(Refusal::Host(host));
        }
        Ok(())
    }
}

/// The host part of a `Host` value (or of an allow-list entry, whose port may be `*`), without
/// the port.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port == "*" || port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn parse_allowed(text: &str) -> Option<AllowedOrigin> {
    if text == "null" {
        return Some(AllowedOrigin {
            scheme: String::new(),
            host: String::new(),
            port: None,
            null: true,
        });
    }
    let (scheme, rest) = text.split_once("://")?;
    let rest = rest.trim_end_matches('/').to_ascii_lowercase();
    let scheme = scheme.to_ascii_lowercase();
    let name = host_name(&rest).to_owned();
    let port = match rest[name.len()..].strip_prefix(':') {
        Some("*") => None,
        Some(port) => Some(port.parse().ok()?),
        None => Some(default_port(&scheme)),
    };
    Some(AllowedOrigin {
        scheme,
        host: name,
        port,
        null: false,
    })
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

impl AllowedOrigin {
    fn matches(&self, origin: &str) -> bool {
        if origin == "null" {
            return self.null;
        }
        let Some((scheme, rest)) = origin.split_once("://") else {
            return false;
        };
        let rest = rest.to_ascii_lowercase();
        let name = host_name(&rest);
        let port = match rest[name.len()..].strip_prefix(':') {
            Some(port) => match port.parse::<u16>() {
                Ok(port) => port,
                Err(_) => return false,
            },
            None => default_port(&scheme.to_ascii_lowercase()),
        };
        !self.null
            && scheme.eq_ignore_ascii_case(&self.scheme)
            && name == self.host
            && self.port.is_none_or(|p| p == port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn request(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        if let Some(origin) = origin {
            headers.insert(
                header::ORIGIN,
                HeaderValue::from_str(origin).expect("origin"),
            );
        }
        headers
    }

    fn check(policy: &OriginPolicy, headers: &HeaderMap) -> Result<(), Refusal> {
        policy.check(&Uri::from_static("/mcp"), headers)
    }

    fn loopback() -> SocketAddr {
        "127.0.0.1:8080".parse().expect("addr")
    }

    #[test]
    fn loopback_servers_accept_loopback_names_and_origins_only() {
        let policy = OriginPolicy::new(loopback(), None, None);
        assert_eq!(check(&policy, &request("127.0.0.1:8080", None)), Ok(()));
        assert_eq!(
            check(
                &policy,
                &request("localhost:8080", Some("http://localhost:3000"))
            ),
            Ok(())
        );
        assert_eq!(check(&policy, &request("[::1]:8080", None)), Ok(()));
        assert!(matches!(
            check(&policy, &request("evil.example:8080", None)),
            Err(Refusal::Host(_))
        ));
        assert!(matches!(
            check(
                &policy,
                &request("127.0.0.1:8080", Some("https://evil.example"))
            ),
            Err(Refusal::Origin(_))
        ));
        assert!(matches!(
            check(&policy, &request("127.0.0.1:8080", Some("null"))),
            Err(Refusal::Origin(_))
        ));
    }

    #[test]
    fn configured_origins_match_scheme_host_and_port() {
        let origins = vec![
            "https://app.example.com".to_owned(),
            "http://dev.example.com:*".to_owned(),
        ];
        let policy = OriginPolicy::new("0.0.0.0:80".parse().expect("addr"), None, Some(&origins));
        let ok = |origin: &str| check(&policy, &request("mcp.example.com", Some(origin))).is_ok();
        assert!(ok("https://app.example.com"));
        assert!(ok("https://APP.example.com:443"));
        assert!(!ok("http://app.example.com"));
        assert!(!ok("https://app.example.com:8443"));
        assert!(!ok("https://app.example.com.evil.example"));
        assert!(ok("http://dev.example.com:5173"));
        assert!(!ok("http://localhost:3000"));
    }

    #[test]
    fn configured_hosts_may_name_a_port() {
        let hosts = vec!["mcp.example.com".to_owned(), "10.0.0.5:8080".to_owned()];
        let policy = OriginPolicy::new("0.0.0.0:8080".parse().expect("addr"), Some(&hosts), None);
        assert!(check(&policy, &request("mcp.example.com:443", None)).is_ok());
        assert!(check(&policy, &request("10.0.0.5:8080", None)).is_ok());
        assert!(check(&policy, &request("10.0.0.5:9090", None)).is_err());
    }
}
