//! Stopping one container gracefully, as kubelet's killContainer: the
//! preStop hook within the grace period, then StopContainer with what is
//! left of it (at least 2 s), so the stop signal and finally SIGKILL come
//! from the runtime.

use std::time::{Duration, Instant};

use berth_proto::v1 as cri;

use crate::cri_client::CriClient;
use crate::manifest::lifecycle::Hook;

use super::actions::{self, Target};

/// kubelet's minimum grace period after a preStop hook.
pub const MIN_GRACE: Duration = Duration::from_secs(2);

/// What the kill did: the preStop hook's failure, if it failed.
#[derive(Debug, Default)]
pub struct KillReport {
    pub pre_stop_error: Option<String>,
    pub stop_error: Option<String>,
}

/// Stops the container at `target` within `grace`.
pub async fn kill(
    mut cri: CriClient,
    target: Target,
    pre_stop: Option<Hook>,
    grace: Duration,
) -> KillReport {
    let mut report = KillReport::default();
    let begin = Instant::now();
    if let Some(h) = &pre_stop {
        if let Err(e) = actions::hook(&mut cri, &target, h, grace).await {
            report.pre_stop_error = Some(e);
        }
    }
    let left = grace.saturating_sub(begin.elapsed()).max(MIN_GRACE);
    let timeout = i64::try_from(left.as_secs()).unwrap_or(i64::MAX);
    if let Err(e) = cri
        .runtime
        .stop_container(cri::StopContainerRequest {
            container_id: target.container_id.clone(),
            timeout,
        })
        .await
    {
        report.stop_error = Some(e.message().to_string());
    }
    report
}
