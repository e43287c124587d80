//! Manifest pods run by berthd's kubelet: init containers in order, an
//! emptyDir shared by two containers, and each restart policy (Never,
//! OnFailure, Always with its crash-loop back-off), with reasons, exit
//! codes, restart counts and termination messages read from the pods'
//! status files.

#[path = "pod_support.rs"]
mod support;

use berth_agent::kubelet::status::State;
use berth_tests::need_root;
use support::{running, terminated, Kubelet};

#[tokio::test(flavor = "multi_thread")]
async fn init_containers_run_in_order_before_the_app() {
    let Some(mut k) = Kubelet::with("init-order.yaml").await else {
        return;
    };
    let s = k
        .wait_for("init-order", "Ready", |s| s.ready() && running(s, "app"))
        .await;
    assert_eq!(s.phase, "Running");
    assert_eq!(s.status, "Running");
    assert!(s.condition("Initialized"));
    for c in &s.init_containers {
        assert_eq!(terminated(&s, &c.name), Some(0), "{c:?}");
    }
    let first = &s.init_containers[0];
    let second = &s.init_containers[1];
    let (State::Terminated(a), State::Terminated(b)) = (&first.state, &second.state) else {
        panic!("{s:?}");
    };
    assert!(a.finished_at <= b.started_at, "second started after first");
    let (code, out) = k.sh("init-order", "app", "cat /work/order").await;
    assert_eq!((code, out.as_str()), (0, "first\nsecond\n"));
    k.delete("init-order.yaml", "init-order").await;
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_dir_is_shared_between_containers() {
    let Some(mut k) = Kubelet::with("emptydir-shared.yaml").await else {
        return;
    };
    k.wait_for("emptydir-shared", "Ready", |s| s.ready()).await;
    let (code, out) = k
        .sh(
            "emptydir-shared",
            "reader",
            "cat /data/msg; touch /data/x 2>&1",
        )
        .await;
    assert_eq!(code, 1, "the reader's mount is read-only: {out}");
    assert!(out.starts_with("hello-from-writer\n"), "{out}");
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_policy_never_keeps_the_failure() {
    let Some(k) = Kubelet::with("restart-never.yaml").await else {
        return;
    };
    let s = k
        .wait_for("restart-never", "Failed", |s| s.phase == "Failed")
        .await;
    let c = s.container("fail").expect("container");
    let State::Terminated(t) = &c.state else {
        panic!("{c:?}")
    };
    assert_eq!((t.exit_code, t.reason.as_str()), (3, "Error"));
    assert_eq!(t.message, "bad input\n");
    assert_eq!(c.restart_count, 0);
    assert_eq!(s.status, "Error");
    assert!(!s.ready());
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_policy_on_failure_restarts_until_success() {
    let Some(k) = Kubelet::with("restart-onfailure.yaml").await else {
        return;
    };
    let s = k
        .wait_for("restart-onfailure", "Succeeded", |s| s.phase == "Succeeded")
        .await;
    let c = s.container("flaky").expect("container");
    assert_eq!(c.restart_count, 1);
    assert_eq!(terminated(&s, "flaky"), Some(0));
    let last = c.last_state.as_ref().expect("last state");
    assert_eq!((last.exit_code, last.reason.as_str()), (1, "Error"));
    assert_eq!(s.status, "Completed");
    let logs = k.berth(&["logs", "restart-onfailure"]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "second run\n");
    let prev = k.berth(&["logs", "restart-onfailure", "--previous"]);
    assert_eq!(String::from_utf8_lossy(&prev.stdout), "first run\n");
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_policy_always_backs_off() {
    let Some(k) = Kubelet::with("restart-always.yaml").await else {
        return;
    };
    // The first restart is immediate; after the second exit the container
    // waits in CrashLoopBackOff (10 s).
    let s = k
        .wait_for("restart-always", "in CrashLoopBackOff", |s| {
            s.status == "CrashLoopBackOff"
        })
        .await;
    let c = s.container("crash").expect("container");
    assert_eq!(c.restart_count, 1);
    match &c.state {
        State::Waiting { reason, message } => {
            assert_eq!(reason, "CrashLoopBackOff");
            assert!(message.contains("back-off 10s"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.phase, "Running");
    assert!(s
        .events
        .iter()
        .any(|e| e.reason == "BackOff" && e.container.as_deref() == Some("crash")));
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_spec_restarts_the_pod_from_it() {
    if need_root() {
        return;
    }
    let mut k = Kubelet::start().await;
    k.apply_with("spec-update.yaml", "VERSION\"", "1\"");
    let old = k.wait_for("spec-update", "Ready", |s| s.ready()).await;
    let (_, out) = k.sh("spec-update", "app", "echo $VERSION").await;
    assert_eq!(out, "1\n");
    k.apply_with("spec-update.yaml", "VERSION\"", "2\"");
    let new = k
        .wait_for("spec-update", "re-created", |s| {
            s.uid != old.uid && s.ready()
        })
        .await;
    let (_, out) = k.sh("spec-update", "app", "echo $VERSION").await;
    assert_eq!(out, "2\n");
    assert_ne!(new.sandbox_id, old.sandbox_id);
    assert_eq!(new.container("app").map(|c| c.restart_count), Some(0));
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sidecar_init_container_keeps_running() {
    let Some(k) = Kubelet::with("sidecar-init.yaml").await else {
        return;
    };
    let s = k.wait_for("sidecar-init", "Ready", |s| s.ready()).await;
    assert!(running(&s, "proxy"), "the sidecar runs next to the app");
    assert_eq!(terminated(&s, "check"), Some(0));
    assert!(running(&s, "app"));
    assert!(s.condition("Initialized"));
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn active_deadline_fails_the_pod() {
    let Some(k) = Kubelet::with("active-deadline.yaml").await else {
        return;
    };
    let s = k
        .wait_for("deadline", "Failed", |s| s.phase == "Failed")
        .await;
    assert_eq!(s.status, "DeadlineExceeded");
    assert!(terminated(&s, "app").is_some(), "{s:?}");
    assert_eq!(s.container("app").map(|c| c.restart_count), Some(0));
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_back_while_stopping_starts_after_the_old_one() {
    if need_root() {
        return;
    }
    let mut k = Kubelet::start().await;
    let path = k.apply("slow-stop.yaml");
    let old = k.wait_for("slow-stop", "Ready", |s| s.ready()).await;
    std::fs::remove_file(&path).expect("remove");
    k.wait_for("slow-stop", "Terminating", |s| s.terminating)
        .await;
    k.apply("slow-stop.yaml");
    let new = k
        .wait_for("slow-stop", "back and Ready", |s| {
            s.ready() && s.sandbox_id != old.sandbox_id
        })
        .await;
    let sandboxes = k.d().pods().await;
    let ids: Vec<_> = sandboxes.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids, new.sandbox_id.into_iter().collect::<Vec<_>>());
    k.shutdown().await;
}
