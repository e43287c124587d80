//! `kill -9` of berthd: running containers keep running, and the restarted
//! berthd recovers every pod and container, including exits and logs of
//! containers that ended while it was down; pods half-made when it died are
//! cleaned up.

use std::time::Duration;

use berth_proto::v1 as cri;
use berth_tests::daemon::{pod_config, sh_container, Berthd};
use berth_tests::need_root;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_recovers_pods_containers_exits_and_logs() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let sandbox = pod_config("survivor");
    let pod = d.run_pod(&sandbox).await;
    let long = d
        .start_container(
            &pod,
            &sandbox,
            sh_container("long", "echo started; exec sleep 1000"),
        )
        .await;
    // Exits while berthd is down: it waits for a file the test creates then.
    let late = d
        .start_container(
            &pod,
            &sandbox,
            sh_container(
                "late",
                "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo bye; exit 5",
            ),
        )
        .await;
    let created = d
        .create(&pod, &sandbox, sh_container("created", "exit 0"))
        .await;
    let before = d.status(&long).await;
    let pid = d.container_pid(&long).await;

    d.kill9();
    // While berthd is down the container runs on, and `late` exits.
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let go = d
        .root()
        .join("containers")
        .join(&late)
        .join("rootfs/tmp/go");
    std::fs::write(&go, b"").expect("signal file");
    tokio::time::sleep(Duration::from_millis(500)).await;
    d.restart().await;

    let ps = d.pod_status(&pod).await;
    assert_eq!(ps.state, cri::PodSandboxState::SandboxReady as i32);
    let s = d.status(&long).await;
    assert_eq!(s.state, cri::ContainerState::ContainerRunning as i32);
    assert_eq!(s.started_at, before.started_at);
    assert_eq!(d.container_pid(&long).await, pid);
    let (code, out, _) = d.sh(&long, "echo alive").await;
    assert_eq!((code, out.as_str()), (0, "alive\n"));

    let s = d.wait_exited(&late).await;
    assert_eq!(s.exit_code, 5);
    assert_eq!(s.reason, "Error");
    let log = std::fs::read_to_string(&s.log_path).expect("log");
    assert!(log.contains(" stdout F bye"), "{log}");

    let s = d.status(&created).await;
    assert_eq!(s.state, cri::ContainerState::ContainerCreated as i32);
    d.cri
        .runtime
        .start_container(cri::StartContainerRequest {
            container_id: created.clone(),
        })
        .await
        .expect("start after restart");
    assert_eq!(d.wait_exited(&created).await.exit_code, 0);

    // The name is still reserved after the restart.
    let err = d
        .cri
        .runtime
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(sandbox.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_run_pod_sandbox_leaves_nothing_behind() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let mut calls = Vec::new();
    for i in 0..4 {
        let mut cri = d.cri.clone();
        calls.push(tokio::spawn(async move {
            cri.runtime
                .run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(pod_config(&format!("racer{i}"))),
                    runtime_handler: String::new(),
                })
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(40)).await;
    d.kill9();
    for c in calls {
        let _ = c.await;
    }
    d.restart().await;
    // Whatever finished is a pod; whatever did not is gone.
    let pods = d.pods().await;
    for p in &pods {
        assert_eq!(p.state, cri::PodSandboxState::SandboxReady as i32, "{p:?}");
    }
    d.remove_all().await;
    let netns = std::fs::read_dir(d.state().join("netns"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(netns, 0, "netns left behind");
    let pods_left = std::fs::read_dir(d.root().join("pods"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(pods_left, 0, "pod dirs left behind");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = d.root().display().to_string();
    assert!(
        !mounts.lines().any(|l| l.contains(&root)),
        "mounts left under {root}"
    );
    d.shutdown().await;
}
