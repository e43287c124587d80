//! The `berth` CLI over manifest pods: an invalid manifest rejected with
//! its field path before anything is created; `berth run --detach` of the
//! examples with `pods`, `describe`, `logs`, `stop` and `rm` by name; a
//! foreground `berth run` of a pod that finishes; and Ctrl-C on a
//! foreground run stopping the pod gracefully.

#[path = "pod_support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{binary, need_root};
use support::{manifest, Kubelet, WAIT};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

fn text(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_manifest_is_rejected_before_anything_is_created() {
    if need_root() {
        return;
    }
    let mut k = Kubelet::start().await;
    let path = manifest("invalid.yaml");
    let o = k.berth(&["run", path.to_str().expect("utf-8"), "--detach"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains(&format!(
            "{}: spec.containers[0].livenessProbe.httpGet.port: no port named \"web\"",
            path.display()
        )),
        "{err}"
    );
    let files: Vec<_> = std::fs::read_dir(&k.manifests)
        .expect("dir")
        .flatten()
        .collect();
    assert!(files.is_empty(), "nothing handed over: {files:?}");
    // The same file dropped into the directory directly: berthd names the
    // field in its manager file and creates nothing.
    let dest = k.apply("invalid.yaml");
    let info_path = k.status_dir.join("manager.json");
    let deadline = Instant::now() + WAIT;
    let error = loop {
        let info = berth_agent::kubelet::status::read_manager(&info_path).expect("manager");
        if let Some(e) = info.errors.into_iter().find(|e| e.file == dest) {
            break e.error;
        }
        assert!(Instant::now() < deadline, "berthd did not report the file");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        error.contains("spec.containers[0].livenessProbe.httpGet.port: no port named \"web\""),
        "{error}"
    );
    assert!(k.d().pods().await.is_empty());
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn detached_job_then_pods_describe_logs_stop_rm() {
    if need_root() {
        return;
    }
    let mut k = Kubelet::start().await;
    let job = example("job.yaml");
    let o = k.berth(&["run", job.to_str().expect("utf-8"), "--detach"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("pod/sum-job handed over"), "{out}");
    k.wait_for("sum-job", "Succeeded", |s| s.phase == "Succeeded")
        .await;

    let (pods, _) = text(&k.berth(&["pods"]));
    let row = pods
        .lines()
        .find(|l| l.starts_with("sum-job"))
        .unwrap_or_else(|| panic!("{pods}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[1..5], ["default", "0/1", "Completed", "0"], "{pods}");
    assert!(pods.starts_with("NAME"), "{pods}");
    let (cri_pods, _) = text(&k.berth(&["pods", "--cri"]));
    assert!(cri_pods.contains("sum-job"), "{cri_pods}");

    let (logs, _) = text(&k.berth(&["logs", "sum-job"]));
    assert_eq!(logs, "sum=5050\n");
    let (init_logs, _) = text(&k.berth(&["logs", "sum-job", "-c", "prepare"]));
    assert_eq!(init_logs, "prepared\n");
    let bad = k.berth(&["logs", "sum-job", "-c", "nope"]);
    assert!(!bad.status.success());

    let (desc, _) = text(&k.berth(&["describe", "sum-job"]));
    for want in [
        "Name:         sum-job",
        "Status:       Succeeded (Completed)",
        "Init Containers:\n  prepare:",
        "Reason:       Completed",
        "Message:      sum=5050",
        "Initialized       True",
        "Started container sum",
    ] {
        assert!(desc.contains(want), "{want:?} in\n{desc}");
    }

    let o = k.berth(&["stop", "sum-job"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(k.status("sum-job").is_none());
    assert!(k.d().pods().await.is_empty());
    let (pods, _) = text(&k.berth(&["pods"]));
    assert!(
        pods.lines()
            .any(|l| l.starts_with("sum-job") && l.contains("Stopped")),
        "{pods}"
    );
    let o = k.berth(&["rm", "sum-job"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let files: Vec<_> = std::fs::read_dir(&k.manifests)
        .expect("dir")
        .flatten()
        .collect();
    assert!(files.is_empty(), "{files:?}");
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn foreground_run_streams_logs_until_the_pod_finishes() {
    if need_root() {
        return;
    }
    let k = Kubelet::start().await;
    let o = k.berth(&["run", example("oneshot.yaml").to_str().expect("utf-8")]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("oneshot in default on"), "{out}");
    assert!(err.contains("removed pod/oneshot"), "{err}");
    assert!(k.status("oneshot").is_none());
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_a_foreground_run() {
    if need_root() {
        return;
    }
    let k = Kubelet::start().await;
    let d_state = k.status_dir.parent().expect("state").to_path_buf();
    let mut child = Command::new(binary("berth"))
        .arg("--socket")
        .arg(d_state.parent().expect("dir").join("berth.sock"))
        .arg("--state")
        .arg(&d_state)
        .arg("run")
        .arg(example("sidecar.yaml"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth run");
    k.wait_for("app-with-sidecar", "Ready", |s| s.ready()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("berth run did not end");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let o = child.wait_with_output().expect("output");
    let (out, err) = text(&o);
    assert!(status.success(), "{out}\n{err}");
    assert!(
        out.contains("tick"),
        "the shipper's log was streamed: {out}"
    );
    assert!(err.contains("removed pod/app-with-sidecar"), "{err}");
    assert!(k.status("app-with-sidecar").is_none());
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_ends_with_the_container() {
    let Some(k) = Kubelet::with("logs-follow.yaml").await else {
        return;
    };
    k.wait_for("follow", "running", |s| support::running(s, "talk"))
        .await;
    let o = k.berth(&["logs", "-f", "follow"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out, "line 1\nline 2\nline 3\n");
    assert_eq!(err, "bye\n");
    let s = k.status("follow").expect("status");
    assert_eq!(support::terminated(&s, "talk"), Some(0));
    k.shutdown().await;
}
