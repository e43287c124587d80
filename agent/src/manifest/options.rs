//! What the translation needs to know about the node: the values kubelet
//! takes from its flags and the machine (node name, capacity, the host's
//! resolv.conf, cluster DNS, seccomp root, where pod directories and logs go).

use std::path::PathBuf;

/// Node facts and kubelet settings that shape a pod's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// `spec.nodeName` when the pod names none (kubelet's node name).
    pub node_name: String,
    /// Node allocatable CPU in millicores: the value of `limits.cpu` in a
    /// resourceFieldRef of a container without a CPU limit.
    pub cpu_capacity_millis: i64,
    /// Node memory in bytes: the Burstable oom_score_adj formula's
    /// denominator, and the default of `limits.memory` and of a memory
    /// emptyDir's size.
    pub memory_capacity_bytes: i64,
    /// Node allocatable ephemeral storage in bytes (`limits.ephemeral-storage`
    /// default).
    pub ephemeral_storage_bytes: i64,
    /// The text of the host's resolv.conf (kubelet's `--resolv-conf`), the
    /// base of `dnsPolicy: Default` and of ClusterFirst without cluster DNS.
    /// `None` is kubelet's `--resolv-conf=""`: nameserver 127.0.0.1, search ".".
    pub host_resolv_conf: Option<String>,
    /// Cluster DNS servers (kubelet's `clusterDNS`); empty on a machine
    /// without a cluster, so ClusterFirst falls back to Default.
    pub cluster_dns: Vec<String>,
    /// Cluster domain (kubelet's `clusterDomain`) for search paths and a
    /// subdomain pod's FQDN.
    pub cluster_domain: String,
    /// kubelet's `seccompDefault`: RuntimeDefault for containers that ask
    /// for no profile (kubelet's default: false, i.e. Unconfined).
    pub seccomp_default: bool,
    /// Directory of `Localhost` seccomp profiles (kubelet's
    /// `<root-dir>/seccomp`).
    pub seccomp_root: PathBuf,
    /// Parent of per-pod directories (`<pods_dir>/<uid>/volumes/...`).
    pub pods_dir: PathBuf,
    /// Parent of pod log directories (`<log_dir>/<ns>_<name>_<uid>`).
    pub log_dir: PathBuf,
}

impl Default for PlanOptions {
    /// A node with no cluster: 1 CPU, 1 GiB, no resolv.conf text, the
    /// `cluster.local` domain, berth's default directories.
    fn default() -> Self {
        Self {
            node_name: "localhost".into(),
            cpu_capacity_millis: 1000,
            memory_capacity_bytes: 1 << 30,
            ephemeral_storage_bytes: 10 << 30,
            host_resolv_conf: None,
            cluster_dns: Vec::new(),
            cluster_domain: "cluster.local".into(),
            seccomp_default: false,
            seccomp_root: "/var/lib/berth/seccomp".into(),
            pods_dir: "/var/lib/berth/kubelet/pods".into(),
            log_dir: "/var/log/pods".into(),
        }
    }
}

impl PlanOptions {
    /// The defaults with this machine's hostname, CPU count, memory and
    /// `/etc/resolv.conf`; a fact that cannot be read keeps its default.
    pub fn for_host() -> Self {
        let mut o = Self::default();
        if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            let name = name.trim();
            if !name.is_empty() {
                o.node_name = name.to_lowercase();
            }
        }
        if let Ok(n) = std::thread::available_parallelism() {
            o.cpu_capacity_millis = i64::try_from(n.get()).unwrap_or(1) * 1000;
        }
        if let Some(bytes) = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| mem_total(&m))
        {
            o.memory_capacity_bytes = bytes;
        }
        o.host_resolv_conf = std::fs::read_to_string("/etc/resolv.conf").ok();
        o
    }
}

/// `MemTotal` of a /proc/meminfo text, in bytes.
fn mem_total(meminfo: &str) -> Option<i64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo() {
        assert_eq!(
            mem_total("MemFree: 1 kB\nMemTotal:        2048 kB\n"),
            Some(2 << 20)
        );
        assert_eq!(mem_total("nothing"), None);
    }

    #[test]
    fn host_facts_are_positive() {
        let o = PlanOptions::for_host();
        assert!(o.cpu_capacity_millis >= 1000);
        assert!(o.memory_capacity_bytes > 0);
        assert!(!o.node_name.is_empty());
    }
}
