//! The monitor's exec_sync (output, exit code, env, timeout without blocking
//! other requests), kill, log reopening, and a client that reconnects.

mod monitor_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_agent::monitor::{
    protocol::{ContainerState, CreateRequest, Event, ExecSyncRequest},
    records, MonitorClient,
};
use monitor_common::{next_event, Pod, WAIT};

fn exec(args: &[&str], timeout_secs: u64) -> ExecSyncRequest {
    ExecSyncRequest {
        id: "c1".into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: None,
        timeout_secs,
    }
}

#[tokio::test]
async fn exec_sync_kill_reopen_and_reconnect() {
    let mut pod = Pod::spawn("mon-exec").await;
    let pause = pod.client().start_pause(&pod.pause_config()).await.unwrap();
    let bundle = pod.bundle(
        "c1",
        "while true; do echo tick; sleep 0.05; done",
        Some(pause),
    );
    let log = pod.log_path("c1");
    let pid = pod
        .client()
        .create(&CreateRequest {
            id: "c1".into(),
            bundle: bundle.dir().to_path_buf(),
            log_path: log.clone(),
            stdin: true,
            ..Default::default()
        })
        .await
        .unwrap();
    pod.client().start("c1").await.unwrap();

    let r = pod
        .client()
        .exec_sync(&exec(&["sh", "-c", "echo out; echo err >&2; exit 7"], 10))
        .await
        .expect("exec_sync");
    assert_eq!(
        (
            r.exit_code,
            r.stdout.as_slice(),
            r.stderr.as_slice(),
            r.timed_out
        ),
        (7, &b"out\n"[..], &b"err\n"[..], false)
    );
    let mut with_env = exec(&["sh", "-c", "echo $FOO"], 0);
    with_env.env = Some(vec!["FOO=bar".into()]);
    let r = pod.client().exec_sync(&with_env).await.unwrap();
    assert_eq!((r.exit_code, r.stdout.as_slice()), (0, &b"bar\n"[..]));
    assert!(pod
        .client()
        .exec_sync(&ExecSyncRequest {
            id: "nope".into(),
            ..exec(&["true"], 0)
        })
        .await
        .is_err());

    // A timed-out exec is killed; meanwhile other requests are served.
    let done = AtomicBool::new(false);
    let slow = async {
        let r = pod.client().exec_sync(&exec(&["sleep", "100"], 1)).await;
        done.store(true, Ordering::SeqCst);
        r
    };
    let other = async {
        let (_, list) = pod.client().list().await.unwrap();
        assert!(!done.load(Ordering::SeqCst), "list waited for exec_sync");
        list
    };
    let (r, list) = tokio::join!(slow, other);
    let r = r.unwrap();
    assert!(r.timed_out);
    assert_eq!(r.exit_code, 137);
    assert_eq!(list[0].state, ContainerState::Running);

    // Log rotation: rename, reopen, the new file gets the next lines.
    let rotated = log.with_extension("log.1");
    std::fs::rename(&log, &rotated).unwrap();
    pod.client().reopen_log("c1").await.unwrap();
    let deadline = Instant::now() + WAIT;
    while std::fs::read(&log).map_or(true, |d| !d.ends_with(b"stdout F tick\n")) {
        assert!(Instant::now() < deadline, "no output after reopen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.lines().all(|l| l.ends_with(" stdout F tick")), "{old}");

    // The client goes away; a new one sees the same pod and gets events.
    drop(pod.client.take());
    let client = MonitorClient::connect(&pod.run_dir()).await.unwrap();
    let mut events = client.subscribe();
    let (p, list) = client.list().await.unwrap();
    assert_eq!((p, list[0].pid), (Some(pause), pid));
    pod.client = Some(client);

    pod.client().kill("c1", libc::SIGKILL, false).await.unwrap();
    match next_event(&mut events).await {
        Event::Exited {
            exit_code, signal, ..
        } => assert_eq!((exit_code, signal), (137, Some(9))),
        e => panic!("unexpected {e:?}"),
    }
    let rec = records::read_exit(&pod.state_dir(), "c1").unwrap().unwrap();
    assert_eq!((rec.exit_code, rec.signal), (137, Some(9)));
    assert!(pod.client().kill("c1", 9, false).await.is_err(), "exited");
    assert!(pod.client().start("c1").await.is_err(), "exited");
    pod.shutdown_and_check(&[pause, pid]).await;
}

#[tokio::test]
async fn kill_all_and_remove_of_a_running_container() {
    let mut pod = Pod::spawn("mon-kill").await;
    let mut events = pod.client().subscribe();
    let pause = pod.client().start_pause(&pod.pause_config()).await.unwrap();
    let bundle = pod.bundle("k1", "sleep 1000 & sleep 1000", None);
    let pid = pod
        .client()
        .create(&CreateRequest {
            id: "k1".into(),
            bundle: bundle.dir().to_path_buf(),
            log_path: pod.log_path("k1"),
            ..Default::default()
        })
        .await
        .unwrap();
    pod.client().start("k1").await.unwrap();
    next_event(&mut events).await;
    pod.client().kill("k1", libc::SIGTERM, true).await.unwrap();
    // sh as pid 1 of its namespace ignores SIGTERM: still running.
    let (_, list) = pod.client().list().await.unwrap();
    assert_eq!(list[0].state, ContainerState::Running);
    // A second, running container removed without a stop: killed, then gone.
    let b2 = pod.bundle("k2", "sleep 1000", None);
    let pid2 = pod
        .client()
        .create(&CreateRequest {
            id: "k2".into(),
            bundle: b2.dir().to_path_buf(),
            log_path: pod.log_path("k2"),
            ..Default::default()
        })
        .await
        .unwrap();
    pod.client().start("k2").await.unwrap();
    next_event(&mut events).await;
    pod.client().remove("k2").await.unwrap();
    assert!(matches!(
        next_event(&mut events).await,
        Event::Exited { ref id, exit_code: 137, .. } if id == "k2"
    ));
    monitor_common::wait_gone(pid2);
    let (_, list) = pod.client().list().await.unwrap();
    assert_eq!(list.len(), 1);
    pod.shutdown_and_check(&[pause, pid]).await;
}
