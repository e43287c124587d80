//! The monitor with a real pod: pause process in a fresh netns with sysctls,
//! a container joining it whose output lands in the CRI log byte for byte,
//! its exit code in `exit.json` and the exit event, removal and shutdown.

mod monitor_common;

use std::collections::BTreeMap;

use berth_agent::monitor::{
    protocol::{ContainerState, CreateRequest, Event},
    records,
};
use monitor_common::{next_event, parse_cri_log, Netns, Pod};

#[tokio::test]
async fn pod_container_logs_exit_record_and_shutdown() {
    let mut pod = Pod::spawn("mon-logs").await;
    let netns = Netns::new("mon-logs");
    let mut events = pod.client().subscribe();
    let mut cfg = pod.pause_config();
    cfg.netns = Some(netns.path());
    cfg.hostname = "mon-host".into();
    cfg.sysctls = BTreeMap::from([
        ("net.ipv4.ip_unprivileged_port_start".into(), "99".into()),
        ("kernel.shmmni".into(), "1234".into()),
    ]);
    pod.netns = Some(netns);
    let pause = pod.client().start_pause(&cfg).await.expect("start_pause");
    assert!(
        pod.client().start_pause(&cfg).await.is_err(),
        "second pause"
    );

    let script = "echo hello; echo oops >&2; head -c 40000 /dev/zero | tr '\\0' a; echo; \
                  hostname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start; \
                  cat /proc/sys/kernel/shmmni; printf tail; exit 3";
    let bundle = pod.bundle("c1", script, Some(pause));
    let log = pod.log_path("c1");
    let pid = pod
        .client()
        .create(&CreateRequest {
            id: "c1".into(),
            bundle: bundle.dir().to_path_buf(),
            log_path: log.clone(),
            ..Default::default()
        })
        .await
        .expect("create");
    let (_, list) = pod.client().list().await.unwrap();
    assert_eq!(list[0].state, ContainerState::Created);
    pod.client().start("c1").await.expect("start");
    match next_event(&mut events).await {
        Event::Started { id, pid: p, .. } => assert_eq!((id.as_str(), p), ("c1", pid)),
        e => panic!("unexpected {e:?}"),
    }
    let exited = next_event(&mut events).await;
    let Event::Exited {
        id,
        exit_code,
        signal,
        finished_at,
        oom_killed,
        ..
    } = exited
    else {
        panic!("unexpected {exited:?}");
    };
    assert_eq!(
        (id.as_str(), exit_code, signal, oom_killed),
        ("c1", 3, None, false)
    );

    // exit.json was on disk before the event.
    let rec = records::read_exit(&pod.state_dir(), "c1").unwrap().unwrap();
    assert_eq!((rec.exit_code, rec.signal, rec.pid), (3, None, pid));
    assert_eq!(rec.finished_at, finished_at);
    let (pause_pid, list) = pod.client().list().await.unwrap();
    assert_eq!(pause_pid, Some(pause));
    assert_eq!(list[0].state, ContainerState::Exited);
    assert_eq!(list[0].exit_code, Some(3));
    let disk = records::read_pod(&pod.state_dir()).unwrap().unwrap();
    assert_eq!(disk.pause_pid, Some(pause));
    assert_eq!(disk.containers[0].id, "c1");

    // The log, record by record, per stream.
    let (out, err) = parse_cri_log(&std::fs::read(&log).unwrap());
    let f = |s: &str| ('F', s.as_bytes().to_vec());
    let a = |n: usize| vec![b'a'; n];
    assert_eq!(
        out,
        [
            f("hello"),
            ('P', a(16384)),
            ('P', a(16384)),
            ('F', a(40000 - 2 * 16384)),
            f("mon-host"),
            f("99"),
            f("1234"),
            f("tail"),
        ]
    );
    assert_eq!(err, [f("oops")]);

    pod.client().remove("c1").await.expect("remove");
    assert!(!records::container_dir(&pod.state_dir(), "c1").exists());
    assert!(pod.client().list().await.unwrap().1.is_empty());
    assert!(pod.client().remove("c1").await.is_err(), "unknown now");
    pod.shutdown_and_check(&[pause, pid]).await;
}

#[tokio::test]
async fn tty_output_is_logged_as_stdout() {
    let mut pod = Pod::spawn("mon-tty").await;
    let mut events = pod.client().subscribe();
    // Sysctls that would change the host are refused; nothing is left behind.
    for key in ["net.ipv4.ip_forward", "kernel.hostname"] {
        let mut bad = pod.pause_config();
        bad.sysctls = BTreeMap::from([(key.into(), "1".into())]);
        let err = pod.client().start_pause(&bad).await.expect_err(key);
        assert!(err.to_string().contains("not namespaced"), "{err}");
    }
    let mut bad = pod.pause_config();
    bad.netns = Some("/nonexistent/netns".into());
    assert!(pod.client().start_pause(&bad).await.is_err());
    assert!(!std::path::Path::new("/sys/fs/cgroup/memory")
        .join(pod.cgroup.trim_start_matches('/'))
        .exists());
    let pause = pod.client().start_pause(&pod.pause_config()).await.unwrap();
    let mut bundle = pod.bundle("t1", "echo via-tty; echo also >&2", None);
    bundle
        .spec_mut()
        .process_mut()
        .as_mut()
        .unwrap()
        .set_terminal(Some(true));
    bundle.save().unwrap();
    let log = pod.log_path("t1");
    let pid = pod
        .client()
        .create(&CreateRequest {
            id: "t1".into(),
            bundle: bundle.dir().to_path_buf(),
            log_path: log.clone(),
            tty: true,
            ..Default::default()
        })
        .await
        .expect("create");
    pod.client().start("t1").await.unwrap();
    next_event(&mut events).await;
    assert!(matches!(
        next_event(&mut events).await,
        Event::Exited { exit_code: 0, .. }
    ));
    let (out, err) = parse_cri_log(&std::fs::read(&log).unwrap());
    assert_eq!(out, [('F', b"via-tty".to_vec()), ('F', b"also".to_vec())]);
    assert!(err.is_empty());
    pod.shutdown_and_check(&[pause, pid]).await;
}

#[tokio::test]
async fn oom_kill_is_recorded() {
    let mut pod = Pod::spawn("mon-oom").await;
    let mut events = pod.client().subscribe();
    let pause = pod.client().start_pause(&pod.pause_config()).await.unwrap();
    // busybox tail buffers a stream without newlines: it grows until killed.
    let mut bundle = pod.bundle("o1", "head -c 200000000 /dev/zero | tail", None);
    let limit = 16 << 20;
    let memory = oci_spec::runtime::LinuxMemoryBuilder::default()
        .limit(limit)
        .swap(limit)
        .build()
        .unwrap();
    bundle
        .spec_mut()
        .linux_mut()
        .as_mut()
        .unwrap()
        .resources_mut()
        .as_mut()
        .unwrap()
        .set_memory(Some(memory));
    bundle.save().unwrap();
    let pid = pod
        .client()
        .create(&CreateRequest {
            id: "o1".into(),
            bundle: bundle.dir().to_path_buf(),
            log_path: pod.log_path("o1"),
            ..Default::default()
        })
        .await
        .expect("create");
    pod.client().start("o1").await.unwrap();
    next_event(&mut events).await;
    match next_event(&mut events).await {
        Event::Exited { oom_killed, .. } => assert!(oom_killed, "oom_killed"),
        e => panic!("unexpected {e:?}"),
    }
    let rec = records::read_exit(&pod.state_dir(), "o1").unwrap().unwrap();
    assert!(rec.oom_killed);
    pod.shutdown_and_check(&[pause, pid]).await;
}

#[tokio::test]
async fn a_full_disk_does_not_stop_the_monitor() {
    let mut pod = Pod::spawn("mon-full").await;
    let mut events = pod.client().subscribe();
    let pause = pod.client().start_pause(&pod.pause_config()).await.unwrap();
    let bundle = pod.bundle("f1", "echo lost; exit 4", None);
    // Every write to /dev/full fails with ENOSPC.
    let pid = pod
        .client()
        .create(&CreateRequest {
            id: "f1".into(),
            bundle: bundle.dir().to_path_buf(),
            log_path: "/dev/full".into(),
            ..Default::default()
        })
        .await
        .expect("create");
    pod.client().start("f1").await.unwrap();
    next_event(&mut events).await;
    assert!(matches!(
        next_event(&mut events).await,
        Event::Exited { exit_code: 4, .. }
    ));
    let (_, list) = pod.client().list().await.expect("monitor still serves");
    assert_eq!(list[0].exit_code, Some(4));
    pod.shutdown_and_check(&[pause, pid]).await;
}
