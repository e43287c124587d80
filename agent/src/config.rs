//! berthd's configuration: the TOML file (default `/etc/berth/config.toml`),
//! its defaults, the command-line flags that override every key, and the
//! directory layout derived from `root` and `state`.
//!
//! ```toml
//! root = "/var/lib/berth"            # persistent state: images, pods, network
//! state = "/run/berth"               # runtime state: sockets, netns, monitors
//! listen = "/run/berth/berth.sock"   # the CRI socket (mode 0660)
//! log_level = "info"
//! cgroup_driver = "cgroupfs"
//! pod_manifest_dir = "/run/berth/manifests"  # static pods (default <state>/manifests)
//!
//! [registry]
//! insecure = ["registry.local:5000"]
//! [registry.mirrors]
//! "docker.io" = ["http://127.0.0.1:5000"]
//!
//! [network]
//! mode = "builtin"                   # or "cni"
//! bridge = "berth0"
//! subnet = "10.88.0.0/16"
//! ipv6 = false                       # dual stack with subnet_v6 or a ULA default
//!
//! [streaming]
//! address = "127.0.0.1"
//! port = 0                           # 0: any free port
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_cni::{Ipv4Net, Ipv6Net, NetworkConfig, NetworkMode};
use serde::Deserialize;
use thiserror::Error;

use crate::images::RegistryConfig;

/// Where berthd looks for its config file when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/berth/config.toml";

/// A config that cannot be read or used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("read config {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("parse config {path}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A key has a value berth cannot use.
    #[error("config key `{key}`: {reason}")]
    Invalid {
        /// The key, dotted (`network.subnet`).
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// How pod and container cgroups are named and created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    /// Plain cgroupfs paths (`/kubepods/pod<uid>`), created by berth.
    #[default]
    Cgroupfs,
    /// systemd slices (`kubepods-pod<uid>.slice`); not supported yet.
    Systemd,
}

impl CgroupDriver {
    /// The name kubelet expects in `RuntimeConfig`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cgroupfs => "cgroupfs",
            Self::Systemd => "systemd",
        }
    }
}

/// Which network implementation wires pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkModeName {
    /// berth's built-in bridge, veth, IPAM and nftables.
    #[default]
    Builtin,
    /// Standard CNI plugins from a conflist.
    Cni,
}

/// The `[network]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSection {
    /// `builtin` or `cni`.
    pub mode: NetworkModeName,
    /// Host bridge name (built-in mode).
    pub bridge: String,
    /// IPv4 pod subnet.
    pub subnet: Ipv4Net,
    /// Dual stack: also give pods an IPv6 address.
    pub ipv6: bool,
    /// IPv6 pod subnet (a ULA default when `ipv6` is on and this is unset).
    pub subnet_v6: Option<Ipv6Net>,
    /// MTU of the bridge and pod interfaces.
    pub mtu: u32,
    /// Masquerade traffic leaving the pod subnet.
    pub masquerade: bool,
    /// The nftables table berth owns.
    pub nft_table: String,
    /// CNI mode: where conflists are.
    pub cni_conf_dir: PathBuf,
    /// CNI mode: where plugin binaries are, searched in order.
    pub cni_bin_dirs: Vec<PathBuf>,
    /// CNI mode: how long a plugin may run.
    pub plugin_timeout_secs: u64,
}

impl Default for NetworkSection {
    fn default() -> Self {
        let net = NetworkConfig::default();
        let (conf_dir, bin_dirs) = match NetworkMode::default_cni() {
            NetworkMode::Cni { conf_dir, bin_dirs } => (conf_dir, bin_dirs),
            NetworkMode::Builtin => (PathBuf::from("/etc/cni/net.d"), Vec::new()),
        };
        NetworkSection {
            mode: NetworkModeName::Builtin,
            bridge: net.bridge,
            subnet: net.subnet_v4,
            ipv6: false,
            subnet_v6: None,
            mtu: net.mtu,
            masquerade: net.masquerade,
            nft_table: net.nft_table,
            cni_conf_dir: conf_dir,
            cni_bin_dirs: bin_dirs,
            plugin_timeout_secs: net.plugin_timeout.as_secs(),
        }
    }
}

/// The `[streaming]` table: the exec/attach/port-forward server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamingSection {
    /// Address the streaming server binds.
    pub address: IpAddr,
    /// Port; 0 picks a free one.
    pub port: u16,
}

impl Default for StreamingSection {
    fn default() -> Self {
        StreamingSection {
            address: IpAddr::from([127, 0, 0, 1]),
            port: 0,
        }
    }
}

/// berthd's whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Persistent state: `images/`, `pods/`, `network/`.
    pub root: PathBuf,
    /// Runtime state (tmpfs): `pods/`, `netns/`, `runtime/`, the socket.
    pub state: PathBuf,
    /// The CRI socket.
    pub listen: PathBuf,
    /// `error`, `warn`, `info`, `debug` or `trace`, or a tracing filter.
    pub log_level: String,
    /// cgroupfs or systemd.
    pub cgroup_driver: CgroupDriver,
    /// Parent cgroup of pods whose `cgroup_parent` is empty.
    pub cgroup_parent: String,
    /// The `berth-monitor` binary; default: next to the running berthd.
    pub monitor_binary: Option<PathBuf>,
    /// `[registry]`: mirrors and plain-HTTP hosts.
    pub registry: RegistryConfig,
    /// `[network]`.
    pub network: NetworkSection,
    /// `[streaming]`.
    pub streaming: StreamingSection,
    /// Directory of pod manifests berthd keeps running (static pods);
    /// default `<state>/manifests`.
    pub pod_manifest_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            root: PathBuf::from("/var/lib/berth"),
            state: PathBuf::from("/run/berth"),
            listen: PathBuf::from("/run/berth/berth.sock"),
            log_level: "info".to_string(),
            cgroup_driver: CgroupDriver::Cgroupfs,
            cgroup_parent: "/berth-pods".to_string(),
            monitor_binary: None,
            registry: RegistryConfig::default(),
            network: NetworkSection::default(),
            streaming: StreamingSection::default(),
            pod_manifest_dir: None,
        }
    }
}

/// Command-line flags; each overrides the config key of the same name.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigFlags {
    /// Config file (TOML). Default: /etc/berth/config.toml if it exists.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Persistent state directory (`root`).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Runtime state directory (`state`).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// CRI socket path (`listen`).
    #[arg(long, value_name = "PATH")]
    pub listen: Option<PathBuf>,
    /// Log level or tracing filter (`log_level`).
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Parent cgroup of pods without one (`cgroup_parent`).
    #[arg(long, value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// The berth-monitor binary (`monitor_binary`).
    #[arg(long, value_name = "PATH")]
    pub monitor_binary: Option<PathBuf>,
    /// `builtin` or `cni` (`network.mode`).
    #[arg(long, value_name = "MODE")]
    pub network_mode: Option<String>,
    /// Host bridge name (`network.bridge`).
    #[arg(long, value_name = "NAME")]
    pub network_bridge: Option<String>,
    /// IPv4 pod subnet (`network.subnet`).
    #[arg(long, value_name = "CIDR")]
    pub network_subnet: Option<Ipv4Net>,
    /// Dual stack (`network.ipv6`).
    #[arg(long)]
    pub network_ipv6: bool,
    /// IPv6 pod subnet (`network.subnet_v6`).
    #[arg(long, value_name = "CIDR")]
    pub network_subnet_v6: Option<Ipv6Net>,
    /// nftables table (`network.nft_table`).
    #[arg(long, value_name = "NAME")]
    pub network_nft_table: Option<String>,
    /// CNI config directory (`network.cni_conf_dir`).
    #[arg(long, value_name = "DIR")]
    pub cni_conf_dir: Option<PathBuf>,
    /// CNI plugin directory, repeatable (`network.cni_bin_dirs`).
    #[arg(long, value_name = "DIR")]
    pub cni_bin_dir: Vec<PathBuf>,
    /// Streaming server address (`streaming.address`).
    #[arg(long, value_name = "IP")]
    pub streaming_address: Option<IpAddr>,
    /// Streaming server port (`streaming.port`).
    #[arg(long, value_name = "PORT")]
    pub streaming_port: Option<u16>,
    /// Directory of pod manifests to keep running (`pod_manifest_dir`).
    #[arg(long, value_name = "DIR")]
    pub pod_manifest_dir: Option<PathBuf>,
}

impl Config {
    /// Parses a config from TOML text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Reads the config file named by `flags.config` (an error if missing),
    /// else the default path (defaults if missing), then applies the flags.
    pub fn load(flags: &ConfigFlags) -> Result<Self, ConfigError> {
        let (path, required) = match &flags.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        let mut cfg = match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path)?,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        cfg.apply(flags)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Overrides keys with the flags that were given.
    pub fn apply(&mut self, f: &ConfigFlags) -> Result<(), ConfigError> {
        fn set<T: Clone>(dst: &mut T, src: &Option<T>) {
            if let Some(v) = src {
                *dst = v.clone();
            }
        }
        set(&mut self.root, &f.root);
        set(&mut self.state, &f.state);
        set(&mut self.listen, &f.listen);
        set(&mut self.log_level, &f.log_level);
        set(&mut self.cgroup_parent, &f.cgroup_parent);
        if f.monitor_binary.is_some() {
            self.monitor_binary = f.monitor_binary.clone();
        }
        if let Some(mode) = &f.network_mode {
            self.network.mode = match mode.as_str() {
                "builtin" => NetworkModeName::Builtin,
                "cni" => NetworkModeName::Cni,
                other => {
                    return Err(ConfigError::Invalid {
                        key: "network.mode",
                        reason: format!("{other:?} is not `builtin` or `cni`"),
                    })
                }
            };
        }
        set(&mut self.network.bridge, &f.network_bridge);
        set(&mut self.network.subnet, &f.network_subnet);
        self.network.ipv6 |= f.network_ipv6;
        if f.network_subnet_v6.is_some() {
            self.network.subnet_v6 = f.network_subnet_v6;
        }
        set(&mut self.network.nft_table, &f.network_nft_table);
        set(&mut self.network.cni_conf_dir, &f.cni_conf_dir);
        if !f.cni_bin_dir.is_empty() {
            self.network.cni_bin_dirs = f.cni_bin_dir.clone();
        }
        set(&mut self.streaming.address, &f.streaming_address);
        set(&mut self.streaming.port, &f.streaming_port);
        if f.pod_manifest_dir.is_some() {
            self.pod_manifest_dir = f.pod_manifest_dir.clone();
        }
        Ok(())
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.to_string(),
            })
        };
        if !self.root.is_absolute() {
            return invalid("root", "must be an absolute path");
        }
        if !self.state.is_absolute() {
            return invalid("state", "must be an absolute path");
        }
        if !self.listen.is_absolute() {
            return invalid("listen", "must be an absolute path");
        }
        if self.cgroup_driver == CgroupDriver::Systemd {
            return invalid(
                "cgroup_driver",
                "systemd is not supported yet; use cgroupfs",
            );
        }
        if self
            .pod_manifest_dir
            .as_ref()
            .is_some_and(|d| !d.is_absolute())
        {
            return invalid("pod_manifest_dir", "must be an absolute path");
        }
        if !self.cgroup_parent.starts_with('/') {
            return invalid("cgroup_parent", "must start with '/'");
        }
        self.network_config()
            .validate()
            .map_err(|e| ConfigError::Invalid {
                key: "network",
                reason: e.to_string(),
            })
    }

    /// The image store's directory.
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Persistent per-pod state: `<root>/pods/<pod-id>`.
    pub fn pods_dir(&self) -> PathBuf {
        self.root.join("pods")
    }

    /// Per-pod runtime state (monitor socket): `<state>/pods/<pod-id>`.
    pub fn pods_run_dir(&self) -> PathBuf {
        self.state.join("pods")
    }

    /// The OCI runtime's state root.
    pub fn runtime_root(&self) -> PathBuf {
        self.state.join("runtime")
    }

    /// Default pod log directory root when the CRI request gives none.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// The static pod manifest directory: configured, or `<state>/manifests`.
    pub fn pod_manifest_dir(&self) -> PathBuf {
        self.pod_manifest_dir
            .clone()
            .unwrap_or_else(|| self.state.join("manifests"))
    }

    /// The `berth-monitor` binary: configured, or next to the current exe.
    pub fn monitor_binary(&self) -> PathBuf {
        if let Some(p) = &self.monitor_binary {
            return p.clone();
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("berth-monitor")))
            .unwrap_or_else(|| PathBuf::from("/usr/local/bin/berth-monitor"))
    }

    /// The network library's config derived from `[network]`, `root` and `state`.
    pub fn network_config(&self) -> NetworkConfig {
        let n = &self.network;
        let subnet_v6 = match (n.ipv6, n.subnet_v6) {
            (_, Some(v6)) => Some(v6),
            (true, None) => Some(berth_cni::default_ula_subnet()),
            (false, None) => None,
        };
        NetworkConfig {
            mode: match n.mode {
                NetworkModeName::Builtin => NetworkMode::Builtin,
                NetworkModeName::Cni => NetworkMode::Cni {
                    conf_dir: n.cni_conf_dir.clone(),
                    bin_dirs: n.cni_bin_dirs.clone(),
                },
            },
            bridge: n.bridge.clone(),
            subnet_v4: n.subnet,
            subnet_v6,
            mtu: n.mtu,
            state_dir: self.root.join("network"),
            netns_dir: self.state.join("netns"),
            masquerade: n.masquerade,
            nft_table: n.nft_table.clone(),
            plugin_timeout: Duration::from_secs(n.plugin_timeout_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_layout() {
        let c = Config::default();
        assert_eq!(c.listen, PathBuf::from("/run/berth/berth.sock"));
        assert_eq!(c.images_dir(), PathBuf::from("/var/lib/berth/images"));
        assert_eq!(
            c.network_config().netns_dir,
            PathBuf::from("/run/berth/netns")
        );
        c.validate().unwrap();
    }

    #[test]
    fn mirrors_parse_from_the_documented_form() {
        let text = "[registry.mirrors]\n\"docker.io\" = [\"http://127.0.0.1:5000\"]\n";
        let c = Config::parse(text, Path::new("t.toml")).unwrap();
        assert_eq!(
            c.registry.mirrors["docker.io"],
            vec!["http://127.0.0.1:5000".to_string()]
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse("[network]\nbridgee = \"x\"\n", Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("bridgee"), "{err}");
    }

    #[test]
    fn flags_override_the_file() {
        let mut c = Config::parse(
            "root = \"/a\"\n[network]\nbridge = \"b1\"\n",
            Path::new("t"),
        )
        .unwrap();
        let flags = ConfigFlags {
            root: Some(PathBuf::from("/b")),
            network_bridge: Some("b2".into()),
            network_mode: Some("cni".into()),
            ..Default::default()
        };
        c.apply(&flags).unwrap();
        assert_eq!(c.root, PathBuf::from("/b"));
        assert_eq!(c.network.bridge, "b2");
        assert!(matches!(c.network_config().mode, NetworkMode::Cni { .. }));
        assert_eq!(c.network_config().state_dir, PathBuf::from("/b/network"));
    }

    #[test]
    fn bad_values_name_the_key() {
        let c = Config {
            cgroup_parent: "relative".into(),
            ..Default::default()
        };
        let err = c.validate().unwrap_err();
        assert!(err.to_string().contains("cgroup_parent"), "{err}");
        let flags = ConfigFlags {
            network_mode: Some("magic".into()),
            ..Default::default()
        };
        let err = Config::default().apply(&flags).unwrap_err();
        assert!(err.to_string().contains("network.mode"), "{err}");
    }

    #[test]
    fn pod_manifest_dir_defaults_under_state() {
        let mut c = Config::default();
        assert_eq!(c.pod_manifest_dir(), PathBuf::from("/run/berth/manifests"));
        let c2 = Config::parse("pod_manifest_dir = \"/etc/berth/pods\"\n", Path::new("t")).unwrap();
        assert_eq!(c2.pod_manifest_dir(), PathBuf::from("/etc/berth/pods"));
        let flags = ConfigFlags {
            pod_manifest_dir: Some(PathBuf::from("relative")),
            ..Default::default()
        };
        c.apply(&flags).unwrap();
        let err = c.validate().unwrap_err();
        assert!(err.to_string().contains("pod_manifest_dir"), "{err}");
    }
}
