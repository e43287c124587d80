//! Per-pod serialisation: setup and teardown of one pod never overlap, so
//! racing or repeated Stop/Remove calls tear a pod down exactly once, while
//! different pods proceed in parallel. Entries are dropped when unused, so
//! memory stays flat over any number of pods.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Slot = Arc<tokio::sync::Mutex<()>>;

#[derive(Debug, Default)]
pub(crate) struct PodLocks {
    slots: Mutex<HashMap<String, Slot>>,
}

/// Held while a pod is being changed.
pub(crate) struct PodGuard<'a> {
    locks: &'a PodLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl PodLocks {
    pub async fn lock(&self, pod_id: &str) -> PodGuard<'_> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(pod_id.to_string()).or_default().clone()
        };
        PodGuard {
            locks: self,
            key: pod_id.to_string(),
            guard: Some(slot.lock_owned().await),
        }
    }
}

impl Drop for PodGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut slots = self.locks.slots.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map still refers to the slot: nobody holds or waits on it.
        if slots
            .get(&self.key)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            slots.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_are_dropped_when_unused() {
        let locks = PodLocks::default();
        {
            let _a = locks.lock("a").await;
            assert_eq!(locks.slots.lock().unwrap().len(), 1);
        }
        assert!(locks.slots.lock().unwrap().is_empty());
    }
}
