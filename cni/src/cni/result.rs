//! The CNI result type (spec 1.0.0; older results with extra fields parse
//! too, unknown fields are ignored).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A plugin chain's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    /// The result's version.
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    /// Interfaces created or configured.
    #[serde(default)]
    pub interfaces: Vec<CniInterface>,
    /// Addresses assigned.
    #[serde(default)]
    pub ips: Vec<CniIp>,
    /// Routes installed in the pod.
    #[serde(default)]
    pub routes: Vec<CniRoute>,
    /// DNS settings for the pod.
    #[serde(default)]
    pub dns: CniDns,
}

/// An interface in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniInterface {
    /// Interface name.
    pub name: String,
    /// Hardware address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The namespace path for interfaces inside the pod; absent on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// An address in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniIp {
    /// Address with prefix length, e.g. `10.1.0.5/16`.
    pub address: IpNet,
    /// Default gateway for this address's subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// A route in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniRoute {
    /// Destination.
    pub dst: IpNet,
    /// Next hop; absent means the interface's gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

/// DNS settings in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniDns {
    /// Name server addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl CniResult {
    /// Addresses assigned inside the pod: those whose interface has a
    /// sandbox (or that name no interface), leaving out loopback addresses
    /// (the `loopback` plugin reports `lo`'s).
    pub fn pod_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.ips
            .iter()
            .filter(
                |ip| match ip.interface.and_then(|i| self.interfaces.get(i)) {
                    Some(iface) => iface.sandbox.as_deref().is_some_and(|s| !s.is_empty()),
                    None => true,
                },
            )
            .map(|ip| ip.address.addr())
            .filter(|addr| !addr.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_bridge_result() {
        let text = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"cni0","mac":"aa"},{"name":"veth1","mac":"bb"},{"name":"eth0","mac":"cc","sandbox":"/run/netns/x"}],
            "ips":[{"interface":2,"address":"10.22.0.5/16","gateway":"10.22.0.1"},{"interface":2,"address":"fd00::5/64"}],
            "routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.0.0.10"],"search":["svc"]}}"#;
        let r: CniResult = serde_json::from_str(text).unwrap();
        let ips: Vec<String> = r.pod_ips().map(|i| i.to_string()).collect();
        assert_eq!(ips, ["10.22.0.5", "fd00::5"]);
        assert_eq!(r.routes[0].dst.to_string(), "0.0.0.0/0");
        assert_eq!(r.dns.nameservers, ["10.0.0.10"]);
        let old: CniResult = serde_json::from_str(
            r#"{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.1.0.2/24"}]}"#,
        )
        .unwrap();
        assert_eq!(old.pod_ips().count(), 1);
        let lo: CniResult = serde_json::from_str(
            r#"{"interfaces":[{"name":"lo","sandbox":"/x"}],"ips":[{"interface":0,"address":"127.0.0.1/8"},{"interface":0,"address":"::1/128"}]}"#,
        )
        .unwrap();
        assert_eq!(lo.pod_ips().count(), 0);
    }
}
