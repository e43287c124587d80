//! Applying the spec's `linux.resources.memory` (limit, reservation, swap,
//! swappiness, OOM killer; kernel memory is ignored) and hugepage limits.
//! On v2 the OCI memory+swap total becomes `memory.swap.max` (swap alone).

use cgroups_rs::fs::hugetlb::HugeTlbController;
use cgroups_rs::fs::memory::{MemController, SetMemory};
use cgroups_rs::fs::Controller;
use cgroups_rs::fs::MaxValue;
use oci_spec::runtime::{LinuxHugepageLimit, LinuxMemory};

use super::{files, CgroupError, CgroupManager};

/// The v2 `memory.swap.max` for the OCI `limit` and `swap` (memory+swap):
/// `None` leaves it alone, `-1` is unlimited.
pub(crate) fn swap_v2(limit: Option<i64>, swap: Option<i64>) -> Result<Option<i64>, String> {
    match swap {
        None | Some(0) => Ok(None),
        Some(-1) => Ok(Some(-1)),
        Some(swap) if swap < 0 => Err(format!("memory+swap limit {swap} is negative")),
        Some(swap) => match limit {
            None | Some(0) | Some(-1) => Err(format!(
                "memory+swap limit {swap} needs a memory limit as well"
            )),
            Some(limit) if swap < limit => Err(format!(
                "memory+swap limit {swap} is below the memory limit {limit}"
            )),
            Some(limit) => Ok(Some(swap - limit)),
        },
    }
}

impl CgroupManager {
    pub(super) fn apply_memory(&self, memory: &LinuxMemory) -> Result<(), CgroupError> {
        if memory.kernel().is_some() || memory.kernel_tcp().is_some() {
            tracing::debug!(cgroup = %self.path, "kernel memory limits are ignored");
        }
        let wanted = memory.limit().is_some()
            || memory.reservation().is_some()
            || memory.swap().is_some()
            || memory.swappiness().is_some()
            || memory.disable_oom_killer() == Some(true);
        if !wanted {
            return Ok(());
        }
        let ctl = self.require::<MemController>("memory", "memory")?;
        if self.is_v2() {
            self.apply_memory_v2(ctl, memory)
        } else {
            self.apply_memory_v1(ctl, memory)
        }
    }

    fn apply_memory_v1(
        &self,
        ctl: &MemController,
        memory: &LinuxMemory,
    ) -> Result<(), CgroupError> {
        let swap = memory.swap().filter(|_| {
            let present = ctl.path().join("memory.memsw.limit_in_bytes").exists();
            if !present {
                tracing::warn!(cgroup = %self.path, "no swap accounting (memory.memsw.*); swap limit ignored");
            }
            present
        });
        let set_limit = || match memory.limit() {
            Some(limit) => ctl.set_limit(limit).map_err(self.crate_err("memory limit")),
            None => Ok(()),
        };
        let set_swap = || match swap {
            Some(swap) => ctl
                .set_memswap_limit(swap)
                .map_err(self.crate_err("memory+swap limit")),
            None => Ok(()),
        };
        // memory.limit_in_bytes must stay <= memory.memsw.limit_in_bytes at
        // every step: raise memsw first, lower it last.
        let raising_swap = match swap {
            Some(-1) => true,
            Some(swap) => {
                let current =
                    files::read_u64(&self.path, ctl.path(), "memory.memsw.limit_in_bytes")?;
                u64::try_from(swap).is_ok_and(|s| s > current)
            }
            None => false,
        };
        if raising_swap {
            set_swap()?;
            set_limit()?;
        } else {
            set_limit()?;
            set_swap()?;
        }
        if let Some(reservation) = memory.reservation() {
            ctl.set_soft_limit(reservation)
                .map_err(self.crate_err("memory reservation"))?;
        }
        if let Some(swappiness) = memory.swappiness() {
            ctl.set_swappiness(swappiness)
                .map_err(self.crate_err("memory swappiness"))?;
        }
        if memory.disable_oom_killer() == Some(true) {
            ctl.disable_oom_killer()
                .map_err(self.crate_err("disabling the oom killer"))?;
        }
        Ok(())
    }

    fn apply_memory_v2(
        &self,
        ctl: &MemController,
        memory: &LinuxMemory,
    ) -> Result<(), CgroupError> {
        let swap =
            swap_v2(memory.limit(), memory.swap()).map_err(|reason| CgroupError::InvalidValue {
                cgroup: self.path.clone(),
                resource: "memory+swap limit",
                reason,
            })?;
        let as_max = |v: i64| {
            if v < 0 {
                MaxValue::Max
            } else {
                MaxValue::Value(v)
            }
        };
        let only = |max, low| SetMemory {
            max,
            low,
            high: None,
            min: None,
        };
        ctl.set_mem(only(memory.limit().map(as_max), None))
            .map_err(self.crate_err("memory limit"))?;
        ctl.set_mem(only(None, memory.reservation().map(as_max)))
            .map_err(self.crate_err("memory reservation"))?;
        if let Some(swap) = swap {
            if ctl.path().join("memory.swap.max").exists() {
                ctl.set_memswap_limit(swap)
                    .map_err(self.crate_err("memory+swap limit"))?;
            } else {
                tracing::warn!(cgroup = %self.path, "no memory.swap.max; swap limit ignored");
            }
        }
        if memory.swappiness().is_some() || memory.disable_oom_killer() == Some(true) {
            tracing::debug!(cgroup = %self.path, "swappiness and oom-killer switches do not exist on cgroup v2; ignored");
        }
        Ok(())
    }

    pub(super) fn apply_hugepages(&self, limits: &[LinuxHugepageLimit]) -> Result<(), CgroupError> {
        if limits.is_empty() {
            return Ok(());
        }
        let ctl = self.require::<HugeTlbController>("hugepage limit", "hugetlb")?;
        for limit in limits {
            let size = limit.page_size();
            if !ctl.size_supported(size) {
                return Err(self.unsupported(
                    "hugepage limit",
                    format!("page size {size:?} is not one of {:?}", ctl.get_sizes()),
                ));
            }
            let bytes = u64::try_from(limit.limit()).map_err(|_| CgroupError::InvalidValue {
                cgroup: self.path.clone(),
                resource: "hugepage limit",
                reason: format!("negative limit {} for {size}", limit.limit()),
            })?;
            ctl.set_limit_in_bytes(size, bytes)
                .map_err(self.crate_err("hugepage limit"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::swap_v2;

    #[test]
    fn oci_swap_becomes_v2_swap_alone() {
        assert_eq!(swap_v2(Some(100), Some(300)), Ok(Some(200)));
        assert_eq!(swap_v2(Some(100), Some(100)), Ok(Some(0)));
        assert_eq!(swap_v2(Some(100), Some(-1)), Ok(Some(-1)));
        assert_eq!(swap_v2(Some(100), None), Ok(None));
        assert_eq!(swap_v2(None, Some(0)), Ok(None));
        assert!(swap_v2(Some(300), Some(100)).is_err());
        assert!(swap_v2(None, Some(100)).is_err());
        assert!(swap_v2(Some(-1), Some(100)).is_err());
    }
}
