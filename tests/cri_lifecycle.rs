//! berthd over its CRI socket: a pod and its containers from RunPodSandbox
//! to RemovePodSandbox, each result observed from inside the container or
//! through the CRI (exit codes, logs, ExecSync, stop timeouts, events).

use berth_proto::v1 as cri;
use berth_tests::daemon::{pod_config, sh_container, Berthd};
use berth_tests::need_root;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_lifecycle_with_exit_codes_logs_and_exec() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let sandbox = pod_config("life");
    let pod = d.run_pod(&sandbox).await;

    let st = d
        .cri
        .runtime
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: true,
        })
        .await
        .expect("PodSandboxStatus")
        .into_inner();
    let ps = st.status.expect("status");
    assert_eq!(ps.state, cri::PodSandboxState::SandboxReady as i32);
    let ip = ps.network.expect("network").ip;
    assert!(ip.starts_with(&d.subnet_prefix()), "pod ip {ip}");

    // A container that prints and exits 3.
    let c1 = d
        .start_container(
            &pod,
            &sandbox,
            sh_container("job", "echo out-line; echo err-line >&2; hostname; exit 3"),
        )
        .await;
    let s = d.wait_exited(&c1).await;
    assert_eq!(s.exit_code, 3);
    assert_eq!(s.reason, "Error");
    assert!(s.started_at > 0 && s.finished_at >= s.started_at);
    let log = std::fs::read_to_string(&s.log_path).expect("log file");
    assert!(log.contains(" stdout F out-line"), "{log}");
    assert!(log.contains(" stderr F err-line"), "{log}");
    assert!(log.contains(" stdout F life"), "hostname in log: {log}");

    // A long-running container: ExecSync sees its environment and the pod IP.
    let c2 = d
        .start_container(&pod, &sandbox, sh_container("web", "exec sleep 1000"))
        .await;
    let (code, out, _) = d.sh(&c2, "ip -4 addr show eth0; exit 7").await;
    assert_eq!(code, 7);
    assert!(out.contains(&ip), "{out:?}");

    // ListContainers with filters.
    let all = d
        .cri
        .runtime
        .list_containers(cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                pod_sandbox_id: pod.clone(),
                ..Default::default()
            }),
        })
        .await
        .expect("ListContainers")
        .into_inner()
        .containers;
    assert_eq!(all.len(), 2);
    let running = d
        .cri
        .runtime
        .list_containers(cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                state: Some(cri::ContainerStateValue {
                    state: cri::ContainerState::ContainerRunning as i32,
                }),
                ..Default::default()
            }),
        })
        .await
        .expect("ListContainers")
        .into_inner()
        .containers;
    assert_eq!(
        running.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [c2.as_str()]
    );

    // StopContainer: sleep ignores nothing, SIGTERM ends it (exit 143).
    d.stop_container(&c2, 10).await;
    let s = d.status(&c2).await;
    assert_eq!(s.state, cri::ContainerState::ContainerExited as i32);
    assert_eq!(s.exit_code, 143);

    // Stop twice, remove twice: idempotent.
    for _ in 0..2 {
        d.cri
            .runtime
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            })
            .await
            .expect("StopPodSandbox");
    }
    // Exited containers keep their status after the pod stopped.
    assert_eq!(d.status(&c1).await.exit_code, 3);
    for _ in 0..2 {
        d.cri
            .runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            })
            .await
            .expect("RemovePodSandbox");
    }
    let err = d
        .cri
        .runtime
        .container_status(cri::ContainerStatusRequest {
            container_id: c1.clone(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_berthd_even_with_an_open_event_stream() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let mut events = d.events().await;
    let sandbox = pod_config("term");
    let pod = d.run_pod(&sandbox).await;
    let first = events.message().await.expect("event").expect("an event");
    assert_eq!(first.container_id, pod);
    d.remove_all().await;
    // The stream stays open while berthd stops: stop must not wait for it.
    d.shutdown().await;
    drop(events);
}
