//! CRI stats: ContainerStats, ListContainerStats, PodSandboxStats and
//! ListPodSandboxStats. CPU and memory come from the container's (or pod's)
//! cgroup, the writable layer from the overlay's upper dir, network
//! counters from the pod's interface. `usage_nano_cores` is the rate since
//! the previous sample of the same cgroup, as kubelet expects.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_proto::v1::{
    self as cri, ContainerAttributes, CpuUsage, FilesystemIdentifier, FilesystemUsage,
    LinuxPodSandboxStats, MemoryUsage, NetworkInterfaceUsage, NetworkUsage, PodSandboxAttributes,
    ProcessUsage, UInt64Value,
};
use berth_runtime::cgroups::{CgroupManager, CgroupStats};

use super::convert;
use super::error::{DaemonError, Result};
use super::records::SandboxPhase;
use super::store::{lock, Container, Pod};
use super::time::now_ns;
use super::Daemon;
use crate::images::disk_usage;

fn u64v(value: u64) -> Option<UInt64Value> {
    Some(UInt64Value { value })
}

/// The previous cpu sample of each cgroup: (time ns, usage ns).
#[derive(Debug, Default)]
pub struct CpuSamples(Mutex<HashMap<String, (i64, u64)>>);

impl CpuSamples {
    /// Records a sample; the usage rate since the previous one, in
    /// nanocores.
    fn rate(&self, key: &str, now: i64, usage: u64) -> Option<u64> {
        let prev = lock(&self.0).insert(key.to_string(), (now, usage));
        let (t0, u0) = prev?;
        let dt = now.checked_sub(t0).filter(|dt| *dt > 0)? as u128;
        let du = usage.checked_sub(u0)? as u128;
        Some((du * 1_000_000_000 / dt) as u64)
    }

    /// Forgets a cgroup's samples.
    pub fn forget(&self, key: &str) {
        lock(&self.0).remove(key);
    }
}

fn cpu_memory(
    samples: &CpuSamples,
    key: &str,
    s: &CgroupStats,
    now: i64,
) -> (CpuUsage, MemoryUsage) {
    let cpu = CpuUsage {
        timestamp: now,
        usage_core_nano_seconds: u64v(s.cpu_usage_ns),
        usage_nano_cores: samples.rate(key, now, s.cpu_usage_ns).and_then(u64v),
    };
    let memory = MemoryUsage {
        timestamp: now,
        working_set_bytes: u64v(s.memory_working_set_bytes),
        available_bytes: s
            .memory_limit_bytes
            .map(|l| l.saturating_sub(s.memory_working_set_bytes))
            .and_then(u64v),
        usage_bytes: u64v(s.memory_usage_bytes),
        rss_bytes: None,
        page_faults: None,
        major_page_faults: None,
    };
    (cpu, memory)
}

fn cgroup_stats(cg: &CgroupManager) -> CgroupStats {
    // A cgroup already removed (exited container) reads as zeros.
    cg.stats().unwrap_or_default()
}

impl Daemon {
    fn one_container_stats(&self, c: &Container) -> Result<cri::ContainerStats> {
        let rec = c.snapshot();
        let now = now_ns();
        let cg = self.cgroup_of(c)?;
        let (cpu, memory) = cpu_memory(&self.cpu_samples, &c.id, &cgroup_stats(&cg), now);
        let upper = c.dir.join("upper");
        let (bytes, inodes) = disk_usage(&upper).unwrap_or((0, 0));
        Ok(cri::ContainerStats {
            attributes: Some(ContainerAttributes {
                id: rec.id.clone(),
                metadata: rec.config.metadata.clone(),
                labels: rec.config.labels.clone(),
                annotations: rec.config.annotations.clone(),
            }),
            cpu: Some(cpu),
            memory: Some(memory),
            writable_layer: Some(FilesystemUsage {
                timestamp: now,
                fs_id: Some(FilesystemIdentifier {
                    mountpoint: self.cfg.root.display().to_string(),
                }),
                used_bytes: u64v(bytes),
                inodes_used: u64v(inodes),
            }),
            swap: None,
        })
    }

    /// ContainerStats.
    pub fn container_stats(&self, id: &str) -> Result<cri::ContainerStats> {
        let c = self.store.container_or_err(id)?;
        self.one_container_stats(&c)
    }

    /// ListContainerStats (running and created containers, as containerd).
    pub fn list_container_stats(
        &self,
        f: Option<&cri::ContainerStatsFilter>,
    ) -> Vec<cri::ContainerStats> {
        self.store
            .containers()
            .iter()
            .filter(|c| {
                let r = c.snapshot();
                f.is_none_or(|f| {
                    convert::id_matches(&r.id, &f.id)
                        && convert::id_matches(&r.pod_id, &f.pod_sandbox_id)
                        && convert::labels_match(&r.config.labels, &f.label_selector)
                })
            })
            .filter_map(|c| self.one_container_stats(c).ok())
            .collect()
    }

    fn one_pod_stats(&self, pod: &Pod) -> Result<cri::PodSandboxStats> {
        let rec = pod.snapshot();
        let now = now_ns();
        let cg = CgroupManager::new(Some(&rec.pod_cgroup), &pod.id)
            .map_err(|e| DaemonError::Internal(format!("cgroup of pod {}: {e}", pod.id)))?;
        let s = cgroup_stats(&cg);
        let (cpu, memory) = cpu_memory(&self.cpu_samples, &pod.id, &s, now);
        let network = if rec.netns.is_some() && rec.phase == SandboxPhase::Ready {
            self.network.stats(&pod.id).ok().map(|n| {
                let iface = NetworkInterfaceUsage {
                    name: n.interface.to_string(),
                    rx_bytes: u64v(n.rx_bytes),
                    rx_errors: u64v(n.rx_errors),
                    tx_bytes: u64v(n.tx_bytes),
                    tx_errors: u64v(n.tx_errors),
                };
                NetworkUsage {
                    timestamp: now,
                    default_interface: Some(iface.clone()),
                    interfaces: vec![iface],
                }
            })
        } else {
            None
        };
        let containers = self
            .store
            .containers_of(&pod.id)
            .iter()
            .filter_map(|c| self.one_container_stats(c).ok())
            .collect();
        Ok(cri::PodSandboxStats {
            attributes: Some(PodSandboxAttributes {
                id: pod.id.clone(),
                metadata: rec.config.metadata.clone(),
                labels: rec.config.labels.clone(),
                annotations: rec.config.annotations.clone(),
            }),
            linux: Some(LinuxPodSandboxStats {
                cpu: Some(cpu),
                memory: Some(memory),
                network,
                process: Some(ProcessUsage {
                    timestamp: now,
                    process_count: u64v(s.pids_current),
                }),
                containers,
            }),
            windows: None,
        })
    }

    /// PodSandboxStats.
    pub fn pod_sandbox_stats(&self, id: &str) -> Result<cri::PodSandboxStats> {
        let pod = self.store.pod_or_err(id)?;
        self.one_pod_stats(&pod)
    }

    /// ListPodSandboxStats.
    pub fn list_pod_sandbox_stats(
        &self,
        f: Option<&cri::PodSandboxStatsFilter>,
    ) -> Vec<cri::PodSandboxStats> {
        self.store
            .pods()
            .iter()
            .filter(|p| {
                let r = p.snapshot();
                f.is_none_or(|f| {
                    convert::id_matches(&r.id, &f.id)
                        && convert::labels_match(&r.config.labels, &f.label_selector)
                })
            })
            .filter_map(|p| self.one_pod_stats(p).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nano_cores_are_the_rate_between_samples() {
        let s = CpuSamples::default();
        assert_eq!(s.rate("c", 1_000_000_000, 0), None);
        // Half a core for one second.
        assert_eq!(s.rate("c", 2_000_000_000, 500_000_000), Some(500_000_000));
        // A counter that went backwards (new cgroup) gives no rate.
        assert_eq!(s.rate("c", 3_000_000_000, 10), None);
        s.forget("c");
        assert_eq!(s.rate("c", 4_000_000_000, 20), None);
    }
}
