//! Which containers a sync pass starts, as pure logic: init containers one
//! at a time in order (a plain one must have completed, a sidecar must be
//! started, before the next), and only then every app container that needs
//! a start.

use crate::manifest::ContainerKind;

/// One container as the sequencing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub kind: ContainerKind,
    /// Never started and not done, or a planned restart is due.
    pub needs_start: bool,
    /// An init container that lets the next one go: completed, or (a
    /// sidecar) started.
    pub through: bool,
}

/// The indices to start now, in order.
pub fn to_start(slots: &[Slot]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, s) in slots.iter().enumerate() {
        if s.kind == ContainerKind::App {
            continue;
        }
        if s.needs_start {
            out.push(i);
            return out;
        }
        if !s.through {
            return out;
        }
    }
    out.extend(
        slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == ContainerKind::App && s.needs_start)
            .map(|(i, _)| i),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContainerKind::*;

    fn slot(kind: ContainerKind, needs_start: bool, through: bool) -> Slot {
        Slot {
            kind,
            needs_start,
            through,
        }
    }

    #[test]
    fn init_containers_go_one_at_a_time() {
        let fresh = [
            slot(Init, true, false),
            slot(Init, true, false),
            slot(App, true, false),
        ];
        assert_eq!(to_start(&fresh), [0]);
        let first_running = [
            slot(Init, false, false),
            slot(Init, true, false),
            slot(App, true, false),
        ];
        assert_eq!(to_start(&first_running), Vec::<usize>::new());
        let first_done = [
            slot(Init, false, true),
            slot(Init, true, false),
            slot(App, true, false),
        ];
        assert_eq!(to_start(&first_done), [1]);
        let all_done = [
            slot(Init, false, true),
            slot(Init, false, true),
            slot(App, true, false),
            slot(App, false, false),
            slot(App, true, false),
        ];
        assert_eq!(to_start(&all_done), [2, 4]);
    }

    #[test]
    fn sidecars_must_be_started_before_the_next() {
        let side_starting = [slot(Sidecar, false, false), slot(App, true, false)];
        assert!(to_start(&side_starting).is_empty());
        let side_up = [slot(Sidecar, false, true), slot(App, true, false)];
        assert_eq!(to_start(&side_up), [1]);
        // A sidecar that crashed restarts; the apps keep running meanwhile.
        let side_restart = [slot(Sidecar, true, false), slot(App, false, false)];
        assert_eq!(to_start(&side_restart), [0]);
    }

    #[test]
    fn a_failed_init_container_in_back_off_holds_everything() {
        let waiting = [slot(Init, false, false), slot(App, true, false)];
        assert!(to_start(&waiting).is_empty());
    }
}
