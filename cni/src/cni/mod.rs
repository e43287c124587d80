//! Pod networking through standard CNI plugins (spec 1.0.0).
//!
//! The network config list is re-read from the config directory for every
//! ADD, so a config installed after berthd started is picked up. ADD runs
//! the plugins in order, each getting the previous one's result as
//! `prevResult`; if one fails, DEL runs for it and every plugin before it
//! (reverse order) so nothing is left half-done. The list, the call
//! parameters and the final result are recorded with the pod, so DEL and
//! CHECK later use exactly what ADD used, also after a restart or a config
//! change. hostPorts reach plugins that declare the `portMappings`
//! capability through `runtimeConfig`.

mod conf;
mod exec;
mod result;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub use conf::ConfList;
pub use result::{CniDns, CniInterface, CniIp, CniResult, CniRoute};

use crate::error::NetError;
use crate::record::{PodRecord, Records};
use crate::types::{PodNetworkRequest, PodNetworkStatus, PortMapping, POD_IFNAME};
use exec::Invocation;

/// What DEL and CHECK need to undo or verify an ADD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CniAttachment {
    /// The network's name.
    pub network: String,
    /// The `cniVersion` the plugins were called with.
    pub cni_version: String,
    /// Whether the network disables CHECK.
    pub disable_check: bool,
    /// The plugin configs ADD used, in order.
    pub plugins: Vec<Map<String, Value>>,
    /// `CNI_NETNS`.
    pub netns: String,
    /// `CNI_ARGS`.
    pub args: String,
    /// Capability arguments offered to plugins (`portMappings`).
    pub runtime_config: Map<String, Value>,
    /// The chain's final ADD result, once ADD completed.
    pub result: Option<Value>,
}

/// The CNI backend.
#[derive(Debug)]
pub(crate) struct CniNetwork {
    conf_dir: PathBuf,
    bin_dirs: Vec<PathBuf>,
    timeout: Duration,
}

impl CniNetwork {
    pub fn new(conf_dir: PathBuf, bin_dirs: Vec<PathBuf>, timeout: Duration) -> Self {
        CniNetwork {
            conf_dir,
            bin_dirs,
            timeout,
        }
    }

    /// `Ok` while a usable config list exists, else the reason.
    pub fn status(&self) -> Result<(), String> {
        ConfList::load(&self.conf_dir, &self.bin_dirs)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The config list ADD would use now.
    pub fn conf_list(&self) -> Result<ConfList, NetError> {
        ConfList::load(&self.conf_dir, &self.bin_dirs)
    }

    fn invocation<'a>(&'a self, pod_id: &'a str, att: &'a CniAttachment) -> Invocation<'a> {
        Invocation {
            container_id: pod_id,
            netns: &att.netns,
            ifname: POD_IFNAME,
            args: &att.args,
            bin_dirs: &self.bin_dirs,
            timeout: self.timeout,
        }
    }

    /// Runs ADD through the whole chain.
    pub async fn setup(
        &self,
        records: &Records,
        req: &PodNetworkRequest,
    ) -> Result<PodNetworkStatus, NetError> {
        let list = self.conf_list()?;
        let att = CniAttachment {
            network: list.name.clone(),
            cni_version: list.cni_version.clone(),
            disable_check: list.disable_check,
            plugins: list.plugins.clone(),
            netns: req.netns.display().to_string(),
            args: cni_args(req),
            runtime_config: runtime_config(&req.port_mappings),
            result: None,
        };
        let mut record = PodRecord {
            pod_id: req.id.clone(),
            netns: req.netns.clone(),
            cni: Some(att.clone()),
            ..PodRecord::default()
        };
        // Recorded before the first plugin runs: a crash mid-ADD still
        // leaves enough for a later teardown to run DEL.
        records.save(&record)?;
        let inv = self.invocation(&req.id, &att);
        let mut prev: Option<Value> = None;
        for (i, plugin) in att.plugins.iter().enumerate() {
            let config = plugin_config(&att, plugin, prev.as_ref());
            let ran = exec::run(ConfList::plugin_type(plugin), "ADD", &inv, &config).await;
            match ran {
                Ok(Some(out)) => prev = Some(out),
                Ok(None) => {}
                Err(err) => {
                    self.run_del(&req.id, &att, &att.plugins[..=i], prev.as_ref())
                        .await
                        .unwrap_or_else(|undo| {
                            tracing::warn!(pod = %req.id, error = %undo, "cni rollback after failed ADD");
                        });
                    records.remove(&req.id)?;
                    return Err(err);
                }
            }
        }
        let raw = prev.unwrap_or_else(|| json!({ "cniVersion": att.cni_version }));
        let parsed: CniResult =
            serde_json::from_value(raw.clone()).map_err(|e| NetError::CniPlugin {
                plugin: att
                    .plugins
                    .last()
                    .map(|p| ConfList::plugin_type(p).to_string())
                    .unwrap_or_default(),
                command: "ADD",
                reason: format!("unparsable result: {e}"),
            })?;
        for ip in parsed.pod_ips() {
            match ip {
                std::net::IpAddr::V4(v4) if record.ipv4.is_none() => record.ipv4 = Some(v4),
                std::net::IpAddr::V6(v6) if record.ipv6.is_none() => record.ipv6 = Some(v6),
                _ => {}
            }
        }
        if let Some(att) = record.cni.as_mut() {
            att.result = Some(raw);
        }
        records.save(&record)?;
        Ok(PodNetworkStatus {
            ipv4: record.ipv4,
            ipv6: record.ipv6,
            interface: POD_IFNAME.to_string(),
            cni_result: Some(parsed),
        })
    }

    /// Runs DEL through the whole chain in reverse; the record is removed
    /// only when every plugin succeeded, so a failed teardown can be retried.
    pub async fn teardown(&self, records: &Records, record: &PodRecord) -> Result<(), NetError> {
        if let Some(att) = &record.cni {
            self.run_del(&record.pod_id, att, &att.plugins, att.result.as_ref())
                .await?;
        }
        records.remove(&record.pod_id)
    }

    /// DEL for `plugins` in reverse order; every plugin runs even if an
    /// earlier one failed, and the first failure is returned.
    async fn run_del(
        &self,
        pod_id: &str,
        att: &CniAttachment,
        plugins: &[Map<String, Value>],
        prev: Option<&Value>,
    ) -> Result<(), NetError> {
        let inv = self.invocation(pod_id, att);
        let mut first_err = None;
        for plugin in plugins.iter().rev() {
            let config = plugin_config(att, plugin, prev);
            if let Err(err) = exec::run(ConfList::plugin_type(plugin), "DEL", &inv, &config).await {
                first_err.get_or_insert(err);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Runs CHECK through the chain (unless the network disables it).
    pub async fn check(&self, record: &PodRecord) -> Result<(), NetError> {
        let Some(att) = &record.cni else {
            return Err(NetError::NotConfigured(record.pod_id.clone()));
        };
        // CHECK exists since CNI 0.4.0; older networks cannot be checked.
        if att.disable_check || version_tuple(&att.cni_version) < (0, 4, 0) {
            return Ok(());
        }
        let inv = self.invocation(&record.pod_id, att);
        for plugin in &att.plugins {
            let config = plugin_config(att, plugin, att.result.as_ref());
            exec::run(ConfList::plugin_type(plugin), "CHECK", &inv, &config).await?;
        }
        Ok(())
    }

    /// Runs VERSION for every plugin of the current list; fails naming the
    /// first plugin that does not support the list's `cniVersion`.
    pub async fn versions(&self) -> Result<Vec<(String, Vec<String>)>, NetError> {
        let list = self.conf_list()?;
        let inv = Invocation {
            container_id: "",
            netns: "",
            ifname: "",
            args: "",
            bin_dirs: &self.bin_dirs,
            timeout: self.timeout,
        };
        let mut out = Vec::new();
        for plugin in &list.plugins {
            let name = ConfList::plugin_type(plugin);
            let reply = exec::run(
                name,
                "VERSION",
                &inv,
                &json!({"cniVersion": list.cni_version}),
            )
            .await?
            .unwrap_or(Value::Null);
            let supported: Vec<String> = reply
                .get("supportedVersions")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if !supported.contains(&list.cni_version) {
                return Err(NetError::CniPlugin {
                    plugin: name.to_string(),
                    command: "VERSION",
                    reason: format!(
                        "does not support cniVersion {} (supports {supported:?})",
                        list.cni_version
                    ),
                });
            }
            out.push((name.to_string(), supported));
        }
        Ok(out)
    }
}

/// The stdin config of one plugin call: the plugin's object with the
/// network's `name` and `cniVersion`, `prevResult` if any, and the
/// `runtimeConfig` entries for the capabilities it declares.
fn plugin_config(att: &CniAttachment, plugin: &Map<String, Value>, prev: Option<&Value>) -> Value {
    let mut config = plugin.clone();
    config.insert("name".into(), Value::String(att.network.clone()));
    config.insert("cniVersion".into(), Value::String(att.cni_version.clone()));
    if let Some(prev) = prev {
        config.insert("prevResult".into(), prev.clone());
    }
    let declared = plugin.get("capabilities").and_then(Value::as_object);
    let runtime: Map<String, Value> = att
        .runtime_config
        .iter()
        .filter(|(cap, _)| {
            declared
                .and_then(|d| d.get(cap.as_str()))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !runtime.is_empty() {
        config.insert("runtimeConfig".into(), Value::Object(runtime));
    }
    Value::Object(config)
}

/// `"1.0.0"` as `(1, 0, 0)`; missing or bad parts count as 0.
fn version_tuple(version: &str) -> (u32, u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

/// `CNI_ARGS` with the Kubernetes pod identity.
fn cni_args(req: &PodNetworkRequest) -> String {
    format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
        req.namespace, req.name, req.id, req.uid
    )
}

/// Capability arguments: `portMappings` in the CNI conventions' format.
fn runtime_config(mappings: &[PortMapping]) -> Map<String, Value> {
    let mut out = Map::new();
    if !mappings.is_empty() {
        let list = mappings
            .iter()
            .map(|m| {
                let mut entry = json!({
                    "hostPort": m.host_port,
                    "containerPort": m.container_port,
                    "protocol": m.protocol.as_str(),
                });
                if let (Some(ip), Some(obj)) = (m.host_ip, entry.as_object_mut()) {
                    obj.insert("hostIP".into(), Value::String(ip.to_string()));
                }
                entry
            })
            .collect();
        out.insert("portMappings".into(), Value::Array(list));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Protocol;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_tuple("0.3.1") < (0, 4, 0));
        assert!(version_tuple("0.10.0") > (0, 4, 0));
        assert_eq!(version_tuple("1.0.0"), (1, 0, 0));
        assert_eq!(version_tuple("junk"), (0, 0, 0));
    }

    #[test]
    fn plugin_config_injects_name_version_prev_and_declared_capabilities() {
        let att = CniAttachment {
            network: "net".into(),
            cni_version: "1.0.0".into(),
            disable_check: false,
            plugins: vec![],
            netns: "/x".into(),
            args: String::new(),
            runtime_config: runtime_config(&[PortMapping {
                protocol: Protocol::Udp,
                container_port: 53,
                host_port: 5353,
                host_ip: Some("127.0.0.1".parse().unwrap()),
            }]),
            result: None,
        };
        let with_cap = json!({"type": "portmap", "capabilities": {"portMappings": true}});
        let c = plugin_config(
            &att,
            with_cap.as_object().unwrap(),
            Some(&json!({"ips": []})),
        );
        assert_eq!(c["name"], "net");
        assert_eq!(c["cniVersion"], "1.0.0");
        assert_eq!(c["prevResult"], json!({"ips": []}));
        assert_eq!(
            c["runtimeConfig"]["portMappings"][0],
            json!({"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"})
        );
        let without = json!({"type": "bridge"});
        let c = plugin_config(&att, without.as_object().unwrap(), None);
        assert!(c.get("runtimeConfig").is_none() && c.get("prevResult").is_none());
    }
}
