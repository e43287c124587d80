//! Applying the spec's `linux.resources.cpu`: shares (v2: `cpu.weight`),
//! CFS quota and period (v2: `cpu.max`), realtime budget (v1), and the
//! cpuset's cpus and mems.

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use oci_spec::runtime::LinuxCpu;

use super::{CgroupError, CgroupManager};

/// The smallest and largest v1 `cpu.shares` the kernel takes.
const SHARES_MIN: u64 = 2;
const SHARES_MAX: u64 = 262_144;
/// The range of v2 `cpu.weight`.
const WEIGHT_MAX: u64 = 10_000;

/// The v2 `cpu.weight` for v1 `cpu.shares`: the standard linear map of
/// [2, 262144] onto [1, 10000].
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(SHARES_MIN, SHARES_MAX);
    1 + ((shares - SHARES_MIN) * (WEIGHT_MAX - 1)) / (SHARES_MAX - SHARES_MIN)
}

impl CgroupManager {
    pub(super) fn apply_cpu(&self, cpu: &LinuxCpu) -> Result<(), CgroupError> {
        self.apply_cpu_bandwidth(cpu)?;
        self.apply_cpuset(cpu)
    }

    fn apply_cpu_bandwidth(&self, cpu: &LinuxCpu) -> Result<(), CgroupError> {
        let wanted = cpu.shares().filter(|s| *s > 0).is_some()
            || cpu.quota().is_some()
            || cpu.period().is_some()
            || cpu.realtime_runtime().is_some()
            || cpu.realtime_period().is_some();
        if !wanted {
            return Ok(());
        }
        let ctl = self.require::<CpuController>("cpu", "cpu")?;
        if let Some(shares) = cpu.shares().filter(|s| *s > 0) {
            let value = if self.is_v2() {
                shares_to_weight(shares)
            } else {
                shares
            };
            ctl.set_shares(value)
                .map_err(self.crate_err("cpu shares"))?;
        }
        if self.is_v2() {
            if cpu.quota().is_some() || cpu.period().is_some() {
                ctl.set_cfs_quota_and_period(cpu.quota(), cpu.period())
                    .map_err(self.crate_err("cpu quota and period"))?;
            }
            if cpu.realtime_runtime().is_some() || cpu.realtime_period().is_some() {
                tracing::warn!(cgroup = %self.path, "cgroup v2 has no realtime cpu budget; ignored");
            }
            return Ok(());
        }
        if let Some(period) = cpu.period() {
            ctl.set_cfs_period(period)
                .map_err(self.crate_err("cpu period"))?;
        }
        if let Some(quota) = cpu.quota() {
            ctl.set_cfs_quota(if quota > 0 { quota } else { -1 })
                .map_err(self.crate_err("cpu quota"))?;
        }
        if let Some(period) = cpu.realtime_period() {
            ctl.set_rt_period_us(period)
                .map_err(self.crate_err("cpu realtime period"))?;
        }
        if let Some(runtime) = cpu.realtime_runtime() {
            ctl.set_rt_runtime(runtime)
                .map_err(self.crate_err("cpu realtime runtime"))?;
        }
        Ok(())
    }

    fn apply_cpuset(&self, cpu: &LinuxCpu) -> Result<(), CgroupError> {
        let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
        let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
        if cpus.is_none() && mems.is_none() {
            return Ok(());
        }
        let ctl = self.require::<CpuSetController>("cpuset", "cpuset")?;
        if let Some(cpus) = cpus {
            ctl.set_cpus(cpus).map_err(self.crate_err("cpuset cpus"))?;
        }
        if let Some(mems) = mems {
            ctl.set_mems(mems).map_err(self.crate_err("cpuset mems"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::shares_to_weight;

    #[test]
    fn shares_map_onto_weight_range() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(1_000_000), 10_000);
    }
}
