//! Applying the spec's `linux.resources.blockIO`: weights where the host's
//! I/O scheduler offers them (v1 `blkio.weight`, v2 `io.bfq.weight` or
//! `io.weight`), per-device weights, and bps/iops throttles (v2 `io.max`).

use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::Controller;
use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use super::{files, CgroupError, CgroupManager};

/// The range of v1 `blkio.weight` (and of the spec's weights).
const BLKIO_WEIGHT_MIN: u64 = 10;
const BLKIO_WEIGHT_MAX: u64 = 1000;
/// The top of v2 `io.weight`'s range.
const IO_WEIGHT_MAX: u64 = 10_000;

/// The v2 `io.weight` for a blkio weight: [10, 1000] mapped onto [1, 10000].
pub(crate) fn blkio_weight_to_io_weight(weight: u64) -> u64 {
    let weight = weight.clamp(BLKIO_WEIGHT_MIN, BLKIO_WEIGHT_MAX);
    1 + (weight - BLKIO_WEIGHT_MIN) * (IO_WEIGHT_MAX - 1) / (BLKIO_WEIGHT_MAX - BLKIO_WEIGHT_MIN)
}

/// Which file takes weights on this host.
enum WeightFile {
    /// `blkio.weight` (v1) or `io.bfq.weight` (v2): the crate writes it.
    Scheduler,
    /// v2 `io.weight`, with the converted range: written raw (the crate only
    /// knows `io.bfq.weight`).
    IoWeight,
    /// Neither: the scheduler has no weights.
    None,
}

impl CgroupManager {
    pub(super) fn apply_blkio(&self, block_io: &LinuxBlockIo) -> Result<(), CgroupError> {
        let throttles: [(&[LinuxThrottleDevice], Throttle); 4] = [
            (
                block_io
                    .throttle_read_bps_device()
                    .as_deref()
                    .unwrap_or(&[]),
                BlkIoController::throttle_read_bps_for_device,
            ),
            (
                block_io
                    .throttle_write_bps_device()
                    .as_deref()
                    .unwrap_or(&[]),
                BlkIoController::throttle_write_bps_for_device,
            ),
            (
                block_io
                    .throttle_read_iops_device()
                    .as_deref()
                    .unwrap_or(&[]),
                BlkIoController::throttle_read_iops_for_device,
            ),
            (
                block_io
                    .throttle_write_iops_device()
                    .as_deref()
                    .unwrap_or(&[]),
                BlkIoController::throttle_write_iops_for_device,
            ),
        ];
        let weight_devices = block_io.weight_device().as_deref().unwrap_or(&[]);
        let wanted = block_io.weight().is_some()
            || !weight_devices.is_empty()
            || throttles.iter().any(|(devs, _)| !devs.is_empty());
        if !wanted {
            return Ok(());
        }
        let ctl = self.require::<BlkIoController>("block io", "blkio/io")?;
        let weight_file = self.weight_file(ctl);
        if let Some(weight) = block_io.weight() {
            self.set_weight(ctl, &weight_file, None, u64::from(weight))?;
        }
        for dev in weight_devices {
            if let Some(weight) = dev.weight() {
                let device = (dev.major() as u64, dev.minor() as u64);
                self.set_weight(ctl, &weight_file, Some(device), u64::from(weight))?;
            }
        }
        for (devices, throttle) in throttles {
            for dev in devices {
                throttle(ctl, dev.major() as u64, dev.minor() as u64, dev.rate())
                    .map_err(self.crate_err("block io throttle"))?;
            }
        }
        Ok(())
    }

    fn weight_file(&self, ctl: &BlkIoController) -> WeightFile {
        let has = |file: &str| ctl.path().join(file).exists();
        if has(if self.is_v2() {
            "io.bfq.weight"
        } else {
            "blkio.weight"
        }) {
            WeightFile::Scheduler
        } else if self.is_v2() && has("io.weight") {
            WeightFile::IoWeight
        } else {
            WeightFile::None
        }
    }

    /// Sets the cgroup's weight, or one device's when `device` is given.
    fn set_weight(
        &self,
        ctl: &BlkIoController,
        file: &WeightFile,
        device: Option<(u64, u64)>,
        weight: u64,
    ) -> Result<(), CgroupError> {
        let resource = "block io weight";
        match (file, device) {
            (WeightFile::Scheduler, None) => {
                ctl.set_weight(weight).map_err(self.crate_err(resource))
            }
            (WeightFile::Scheduler, Some((major, minor))) => ctl
                .set_weight_for_device(major, minor, weight)
                .map_err(self.crate_err(resource)),
            (WeightFile::IoWeight, device) => {
                let weight = blkio_weight_to_io_weight(weight);
                let value = match device {
                    Some((major, minor)) => format!("{major}:{minor} {weight}"),
                    None => format!("default {weight}"),
                };
                files::write(&self.path, resource, ctl.path(), "io.weight", &value)
            }
            (WeightFile::None, _) => {
                tracing::warn!(cgroup = %self.path, "the i/o scheduler has no weights; block io weight ignored");
                Ok(())
            }
        }
    }
}

/// One of the crate's per-device throttle setters.
type Throttle = fn(&BlkIoController, u64, u64, u64) -> cgroups_rs::fs::error::Result<()>;

#[cfg(test)]
mod tests {
    use super::blkio_weight_to_io_weight;

    #[test]
    fn blkio_weight_maps_onto_io_weight() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(5), 1);
    }
}
