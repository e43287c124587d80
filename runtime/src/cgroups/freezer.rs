//! Freezing and thawing the cgroup (pause/resume, and a still cgroup while
//! `destroy` kills it): v1 `freezer.state`, v2 `cgroup.freeze`, waiting
//! until the kernel reports the state reached.

use std::time::Duration;

use cgroups_rs::fs::freezer::FreezerController;
use cgroups_rs::FreezerState;

use super::{files, CgroupError, CgroupManager};

/// How many times, and how long apart, the freezer state is polled.
const POLL_TRIES: u32 = 2000;
const POLL_STEP: Duration = Duration::from_millis(5);

impl CgroupManager {
    /// Freezes every process of the cgroup; returns once all are frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        let ctl = self.require::<FreezerController>("freeze", "freezer")?;
        ctl.freeze().map_err(self.crate_err("freeze"))?;
        if self.wait_frozen(ctl, true)? {
            return Ok(());
        }
        // Leave the cgroup running rather than half-frozen.
        let _ = ctl.thaw();
        Err(self.freeze_timeout("FROZEN"))
    }

    /// Thaws the cgroup's processes.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        let ctl = self.require::<FreezerController>("thaw", "freezer")?;
        ctl.thaw().map_err(self.crate_err("thaw"))?;
        if self.wait_frozen(ctl, false)? {
            Ok(())
        } else {
            Err(self.freeze_timeout("THAWED"))
        }
    }

    /// Whether the cgroup is frozen now.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        let ctl = self.require::<FreezerController>("freezer state", "freezer")?;
        Ok(self.frozen_now(ctl)? == Some(true))
    }

    /// Polls until the frozen state is `want`; false when it never gets there.
    fn wait_frozen(&self, ctl: &FreezerController, want: bool) -> Result<bool, CgroupError> {
        for _ in 0..POLL_TRIES {
            if self.frozen_now(ctl)? == Some(want) {
                return Ok(true);
            }
            std::thread::sleep(POLL_STEP);
        }
        Ok(false)
    }

    /// `Some(frozen)` once settled, `None` while v1 is still FREEZING.
    fn frozen_now(&self, ctl: &FreezerController) -> Result<Option<bool>, CgroupError> {
        if self.is_v2() {
            // cgroup.freeze is only the request; cgroup.events tells whether
            // every process has stopped (the crate reads only the request).
            let frozen = files::read_keyed(&self.path, &self.v2_dir(), "cgroup.events", "frozen")?;
            return Ok(Some(frozen == 1));
        }
        match ctl.state().map_err(self.crate_err("freezer state"))? {
            FreezerState::Frozen => Ok(Some(true)),
            FreezerState::Thawed => Ok(Some(false)),
            // Half-way: neither state reached yet.
            FreezerState::Freezing => Ok(None),
        }
    }

    fn freeze_timeout(&self, state: &'static str) -> CgroupError {
        CgroupError::FreezeTimeout {
            cgroup: self.path.clone(),
            file: if self.is_v2() {
                "cgroup.events"
            } else {
                "freezer.state"
            },
            state,
        }
    }
}
