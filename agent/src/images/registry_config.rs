//! Registry settings from berth's config file: per-registry mirrors and hosts
//! reached over plain HTTP.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The `[registry]` table of berth's config:
///
/// ```toml
/// [registry]
/// insecure = ["registry.local:5000"]
/// [registry.mirrors]
/// "docker.io" = ["http://127.0.0.1:5000"]
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Registry host → mirror endpoints (`http://host:port` or
    /// `https://host`), tried in order before the registry itself.
    pub mirrors: HashMap<String, Vec<String>>,
    /// Registry hosts (`host:port`) spoken to over plain HTTP. Loopback hosts
    /// (`localhost`, `127.0.0.0/8`, `[::1]`) always are.
    pub insecure: Vec<String>,
}

/// One place to fetch an image from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]` to connect to.
    pub host: String,
    /// Whether to use plain HTTP.
    pub plain_http: bool,
    /// Whether this is a mirror rather than the image's own registry.
    pub is_mirror: bool,
}

impl RegistryConfig {
    /// The endpoints to try for `registry`, in order: its mirrors, then itself.
    pub fn endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let mirrors = self.mirrors.get(registry).into_iter().flatten().map(|url| {
            let (plain_http, rest) = match url.split_once("://") {
                Some((scheme, rest)) => (scheme.eq_ignore_ascii_case("http"), rest),
                None => (false, url.as_str()),
            };
            let host = rest.split('/').next().unwrap_or(rest).to_string();
            let plain_http = plain_http || self.is_plain_http(&host);
            Endpoint {
                host,
                plain_http,
                is_mirror: true,
            }
        });
        let own = Endpoint {
            host: registry.to_string(),
            plain_http: self.is_plain_http(registry),
            is_mirror: false,
        };
        mirrors.chain(std::iter::once(own)).collect()
    }

    /// Whether `host` (`host[:port]`) is reached over plain HTTP.
    pub fn is_plain_http(&self, host: &str) -> bool {
        self.insecure.iter().any(|h| h == host) || is_loopback(host)
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_toml() {
        #[derive(Deserialize)]
        struct File {
            registry: RegistryConfig,
        }
        let f: File = toml::from_str(
            "[registry]\ninsecure = [\"r.local:5000\"]\n[registry.mirrors]\n\"docker.io\" = [\"http://127.0.0.1:5000\", \"https://m.example\"]\n",
        )
        .unwrap();
        assert_eq!(f.registry.insecure, vec!["r.local:5000"]);
        let eps = f.registry.endpoints("docker.io");
        assert_eq!(
            eps,
            vec![
                Endpoint {
                    host: "127.0.0.1:5000".into(),
                    plain_http: true,
                    is_mirror: true
                },
                Endpoint {
                    host: "m.example".into(),
                    plain_http: false,
                    is_mirror: true
                },
                Endpoint {
                    host: "docker.io".into(),
                    plain_http: false,
                    is_mirror: false
                },
            ]
        );
        assert!(f.registry.is_plain_http("r.local:5000"));
    }

    #[test]
    fn loopback_hosts_are_plain_http() {
        let c = RegistryConfig::default();
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:80",
            "127.3.4.5",
            "[::1]:5000",
        ] {
            assert!(c.is_plain_http(h), "{h}");
        }
        for h in ["quay.io", "10.0.0.1:5000", "localhost.example"] {
            assert!(!c.is_plain_http(h), "{h}");
        }
    }
}
