//! Bad requests get the gRPC code containerd gives and a message naming the
//! field, and leave nothing behind: no container directory, mount or
//! reserved name.

use berth_proto::v1 as cri;
use berth_tests::daemon::{pod_config, sh_container, Berthd};
use berth_tests::need_root;
use tonic::Code;

fn assert_status<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, needle: &str) {
    let e = r.expect_err("call should fail");
    assert_eq!(e.code(), code, "{e:?}");
    assert!(
        e.message().contains(needle),
        "{needle:?} not in {:?}",
        e.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_field_and_leave_nothing() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let rt = &mut d.cri.runtime.clone();

    let mut no_meta = pod_config("x");
    no_meta.metadata = None;
    assert_status(
        rt.run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(no_meta),
            runtime_handler: String::new(),
        })
        .await,
        Code::InvalidArgument,
        "config.metadata",
    );
    let mut no_name = pod_config("x");
    no_name.metadata.as_mut().unwrap().name.clear();
    assert_status(
        rt.run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(no_name),
            runtime_handler: String::new(),
        })
        .await,
        Code::InvalidArgument,
        "config.metadata.name",
    );

    let sandbox = pod_config("errs");
    let pod = d.run_pod(&sandbox).await;
    assert_status(
        rt.run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(sandbox.clone()),
            runtime_handler: String::new(),
        })
        .await,
        Code::AlreadyExists,
        "reserved",
    );

    let create = |c: cri::ContainerConfig, pod: &str| cri::CreateContainerRequest {
        pod_sandbox_id: pod.into(),
        config: Some(c),
        sandbox_config: Some(sandbox.clone()),
    };
    assert_status(
        rt.create_container(create(sh_container("a", "true"), "nosuchpod"))
            .await,
        Code::NotFound,
        "nosuchpod",
    );
    let mut no_image = sh_container("a", "true");
    no_image.image.as_mut().unwrap().image = "berth.local/missing:1".into();
    assert_status(
        rt.create_container(create(no_image, &pod)).await,
        Code::NotFound,
        "berth.local/missing:1",
    );
    let mut unnamed = sh_container("a", "true");
    unnamed.metadata.as_mut().unwrap().name.clear();
    assert_status(
        rt.create_container(create(unnamed, &pod)).await,
        Code::InvalidArgument,
        "config.metadata.name",
    );
    let mut traversal = sh_container("a", "true");
    traversal.log_path = "../../../etc/evil.log".into();
    assert_status(
        rt.create_container(create(traversal, &pod)).await,
        Code::InvalidArgument,
        "config.log_path",
    );
    let mut bad_mount = sh_container("a", "true");
    bad_mount.mounts.push(cri::Mount {
        container_path: "/data".into(),
        host_path: "relative/dir".into(),
        ..Default::default()
    });
    assert_status(
        rt.create_container(create(bad_mount, &pod)).await,
        Code::InvalidArgument,
        "config.mounts[0]",
    );
    let mut missing_src = sh_container("a", "true");
    missing_src.mounts.push(cri::Mount {
        container_path: "/data".into(),
        host_path: "/nonexistent/berth/source".into(),
        ..Default::default()
    });
    assert_status(
        rt.create_container(create(missing_src, &pod)).await,
        Code::InvalidArgument,
        "config.mounts[0]",
    );
    // None of the failed creates left a container directory or mount.
    let dirs = std::fs::read_dir(d.root().join("containers"))
        .unwrap()
        .count();
    assert_eq!(dirs, 0, "container dirs left by failed creates");
    let root = d.root().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts
        .lines()
        .any(|l| l.contains(&root) && l.contains("overlay")));

    // The name of a failed create is free again.
    let c = d.create(&pod, &sandbox, sh_container("a", "exit 0")).await;
    assert_status(
        rt.create_container(create(sh_container("a", "true"), &pod))
            .await,
        Code::AlreadyExists,
        "reserved",
    );
    rt.start_container(cri::StartContainerRequest {
        container_id: c.clone(),
    })
    .await
    .expect("start");
    assert_status(
        rt.start_container(cri::StartContainerRequest {
            container_id: c.clone(),
        })
        .await,
        Code::FailedPrecondition,
        "not created",
    );
    d.wait_exited(&c).await;
    assert_status(
        rt.exec_sync(cri::ExecSyncRequest {
            container_id: c.clone(),
            cmd: vec!["true".into()],
            timeout: 1,
        })
        .await,
        Code::FailedPrecondition,
        "not running",
    );
    assert_status(
        rt.container_status(cri::ContainerStatusRequest {
            container_id: "0123456789".into(),
            verbose: false,
        })
        .await,
        Code::NotFound,
        "0123456789",
    );
    assert_status(
        rt.stop_container(cri::StopContainerRequest {
            container_id: "0123456789".into(),
            timeout: 0,
        })
        .await,
        Code::NotFound,
        "0123456789",
    );
    // Removing what does not exist succeeds (kubelet retries removals).
    rt.remove_container(cri::RemoveContainerRequest {
        container_id: "0123456789".into(),
    })
    .await
    .expect("idempotent RemoveContainer");
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: "0123456789".into(),
    })
    .await
    .expect("idempotent RemovePodSandbox");

    // ExecSync honours its timeout.
    let sleeper = d
        .start_container(&pod, &sandbox, sh_container("sleeper", "exec sleep 1000"))
        .await;
    assert_status(
        rt.exec_sync(cri::ExecSyncRequest {
            container_id: sleeper,
            cmd: vec!["sleep".into(), "30".into()],
            timeout: 1,
        })
        .await,
        Code::DeadlineExceeded,
        "timed out",
    );
    d.shutdown().await;
}
