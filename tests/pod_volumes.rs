//! Volumes of manifest pods seen from inside the container: configMap
//! (items, mode, read-only), secret, downwardAPI, projected, a memory
//! emptyDir with its size limit, hostPath (DirectoryOrCreate); a configMap
//! change rewritten in place in the running container; and everything
//! unmounted and removed with the pod.

#[path = "pod_support.rs"]
mod support;

use std::time::{Duration, Instant};

use berth_tests::need_root;
use support::Kubelet;

fn mounts_below(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(dir.to_str().unwrap_or("?")))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_volume_type_is_set_up_and_removed() {
    if need_root() {
        return;
    }
    let mut k = Kubelet::start().await;
    let host = tempfile::tempdir().expect("host dir");
    let host_dir = host.path().join("made/by/kubelet");
    k.apply_with(
        "volumes-all.yaml",
        "HOST_DIR",
        host_dir.to_str().expect("utf-8"),
    );
    k.wait_for("volumes", "Ready", |s| s.ready()).await;
    let check = [
        ("cat /etc/conf/greeting.txt", "one"),
        ("ls /etc/conf", "greeting.txt\n"),
        ("stat -L -c %a /etc/conf/greeting.txt", "600\n"),
        (
            "touch /etc/conf/x 2>/dev/null || echo read-only",
            "read-only\n",
        ),
        ("cat /etc/creds/password", "hunter2"),
        ("cat /etc/info/labels", "app=\"volumes\""),
        ("cat /etc/all/g /etc/all/password", "onehunter2"),
        (
            "grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4 | tr , '\\n' | grep -E '^tmpfs|size'",
            "tmpfs rw\nsize=8192k\n",
        ),
        ("echo from-pod > /host/file && cat /host/file", "from-pod\n"),
    ];
    for (script, want) in check {
        let (code, out) = k.sh("volumes", "app", script).await;
        assert_eq!((code, out.as_str()), (0, want), "{script}");
    }
    assert_eq!(
        std::fs::read_to_string(host_dir.join("file")).expect("host file"),
        "from-pod\n"
    );
    let pods_dir = k.d().root().join("kubelet/pods");
    assert!(!mounts_below(&pods_dir).is_empty(), "tmpfs volumes mounted");
    k.delete("volumes-all.yaml", "volumes").await;
    assert!(mounts_below(&pods_dir).is_empty(), "volumes unmounted");
    let left: Vec<_> = std::fs::read_dir(&pods_dir)
        .expect("pods dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "pod directories removed: {left:?}");
    assert!(host_dir.join("file").exists(), "hostPath content stays");
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn config_map_update_is_seen_inside_the_container() {
    if need_root() {
        return;
    }
    let mut k = Kubelet::start().await;
    k.apply_with("configmap-update.yaml", "GREETING", "one");
    let s = k.wait_for("configmap-update", "Ready", |s| s.ready()).await;
    let id = s.container("app").and_then(|c| c.container_id.clone());
    let (_, out) = k
        .sh("configmap-update", "app", "cat /etc/live/greeting")
        .await;
    assert_eq!(out, "one");
    k.apply_with("configmap-update.yaml", "GREETING", "two");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out) = k
            .sh("configmap-update", "app", "cat /etc/live/greeting")
            .await;
        if out == "two" {
            break;
        }
        assert!(Instant::now() < deadline, "still {out:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let s = k.status("configmap-update").expect("status");
    let c = s.container("app").expect("app");
    assert_eq!(c.container_id, id, "the container kept running");
    assert_eq!(c.restart_count, 0);
    assert!(s.events.iter().any(|e| e.reason == "VolumeUpdated"));
    k.shutdown().await;
}
