//! Manifest pods meeting the node: a hostPort reachable from the host,
//! postStart and preStop hooks with the graceful stop (hook, then the stop
//! signal, then the pod goes), and a container OOMKilled at its memory
//! limit.

#[path = "pod_support.rs"]
mod support;

use std::io::{Read, Write};

use berth_agent::kubelet::status::State;
use berth_tests::need_root;
use support::Kubelet;

fn fetch(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn host_port_is_reachable() {
    if need_root() {
        return;
    }
    let k = Kubelet::start().await;
    let port = 30000 + (std::process::id() % 20000) as u16;
    k.apply_with("hostport.yaml", "HOST_PORT", &port.to_string());
    k.wait_for("hostport", "Ready", |s| s.ready()).await;
    let body = fetch(&format!("127.0.0.1:{port}"));
    assert!(body.ends_with("hello-hostport\n"), "{body}");
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hooks_run_and_the_stop_is_graceful() {
    if need_root() {
        return;
    }
    let mut k = Kubelet::start().await;
    let host = tempfile::tempdir().expect("host dir");
    k.apply_with(
        "prestop-grace.yaml",
        "HOST_DIR",
        host.path().to_str().expect("utf-8"),
    );
    k.wait_for("prestop", "Ready", |s| s.ready()).await;
    let (code, out) = k.sh("prestop", "app", "cat /tmp/post-start").await;
    assert_eq!((code, out.as_str()), (0, "started\n"));
    k.delete("prestop-grace.yaml", "prestop").await;
    let log = std::fs::read_to_string(host.path().join("log")).expect("hook log");
    assert_eq!(
        log, "pre-stop\nterm\n",
        "preStop ran before the stop signal"
    );
    let left = k.d().pods().await;
    assert!(left.is_empty(), "the sandbox was removed: {left:?}");
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_oom_kills() {
    let Some(k) = Kubelet::with("oom.yaml").await else {
        return;
    };
    let s = k.wait_for("oom", "Failed", |s| s.phase == "Failed").await;
    let c = s.container("hog").expect("hog");
    let State::Terminated(t) = &c.state else {
        panic!("{c:?}")
    };
    assert_eq!(t.reason, "OOMKilled", "{t:?}");
    assert_eq!(s.status, "OOMKilled");
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_berthd_adopts_its_pods() {
    let Some(mut k) = Kubelet::with("probe-exec-readiness.yaml").await else {
        return;
    };
    let before = k.wait_for("probe-exec", "Ready", |s| s.ready()).await;
    k.d().restart().await;
    let after = k
        .wait_for("probe-exec", "adopted and Ready", |s| {
            s.ready() && s.events.iter().any(|e| e.reason == "Adopted")
        })
        .await;
    assert_eq!(after.sandbox_id, before.sandbox_id, "same sandbox");
    let id = |s: &berth_agent::kubelet::status::PodStatus| {
        s.container("app").and_then(|c| c.container_id.clone())
    };
    assert_eq!(id(&after), id(&before), "same container, not restarted");
    assert_eq!(after.container("app").map(|c| c.restart_count), Some(0));
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_sandbox_is_re_created() {
    let Some(mut k) = Kubelet::with("emptydir-shared.yaml").await else {
        return;
    };
    let before = k.wait_for("emptydir-shared", "Ready", |s| s.ready()).await;
    let id = before.sandbox_id.clone().expect("sandbox");
    k.d()
        .cri
        .runtime
        .stop_pod_sandbox(berth_proto::v1::StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .expect("stop sandbox");
    let after = k
        .wait_for("emptydir-shared", "re-created and Ready", |s| {
            s.ready() && s.sandbox_id.as_deref().is_some_and(|n| n != id)
        })
        .await;
    assert!(after.events.iter().any(|e| e.reason == "SandboxChanged"));
    for c in &after.containers {
        assert_eq!(c.restart_count, 1, "{c:?}");
    }
    let (code, out) = k.sh("emptydir-shared", "reader", "cat /data/msg").await;
    assert_eq!((code, out.as_str()), (0, "hello-from-writer\n"));
    k.shutdown().await;
}
