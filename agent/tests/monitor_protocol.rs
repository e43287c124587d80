//! The monitor's wire protocol seen from a raw socket: numbered responses to
//! bad and unknown requests, and events pushed to every connected client.

mod monitor_common;

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    time::Duration,
};

use berth_agent::monitor::{protocol::CreateRequest, SOCKET_NAME};
use monitor_common::{next_event, Pod};
use serde_json::Value;

fn read_json(r: &mut impl BufRead) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

#[tokio::test]
async fn raw_requests_and_events_to_every_client() {
    let mut pod = Pod::spawn("mon-proto").await;
    let raw = UnixStream::connect(pod.run_dir().join(SOCKET_NAME)).unwrap();
    raw.set_read_timeout(Some(monitor_common::WAIT)).unwrap();
    let mut w = raw.try_clone().unwrap();
    let mut r = BufReader::new(raw);

    w.write_all(b"{\"req\":5,\"op\":\"bogus\"}\n").unwrap();
    let v = read_json(&mut r);
    assert_eq!(v["req"], 5);
    assert!(v["error"].is_string(), "{v}");
    w.write_all(b"not json\n\n").unwrap();
    let v = read_json(&mut r);
    assert_eq!((v["req"].as_u64(), v["error"].is_string()), (Some(0), true));
    // A request split across writes, then two in one write.
    w.write_all(b"{\"req\":6,\"op\":").unwrap();
    std::thread::sleep(Duration::from_millis(10));
    w.write_all(b"\"list\"}\n{\"req\":7,\"op\":\"start\",\"id\":\"x\"}\n")
        .unwrap();
    let v = read_json(&mut r);
    assert_eq!(v["req"], 6);
    assert_eq!(v["result"]["containers"], Value::Array(vec![]));
    let v = read_json(&mut r);
    assert_eq!(v["req"], 7);
    assert!(v["error"].as_str().unwrap().contains("unknown container"));

    // Both the typed client and the raw one get the events.
    let mut events = pod.client().subscribe();
    let pause = pod.client().start_pause(&pod.pause_config()).await.unwrap();
    let bundle = pod.bundle("e1", "true", Some(pause));
    let pid = pod
        .client()
        .create(&CreateRequest {
            id: "e1".into(),
            bundle: bundle.dir().to_path_buf(),
            log_path: pod.log_path("e1"),
            ..Default::default()
        })
        .await
        .unwrap();
    pod.client().start("e1").await.unwrap();
    next_event(&mut events).await;
    next_event(&mut events).await;
    let started = read_json(&mut r);
    assert_eq!(
        (started["event"].as_str(), started["id"].as_str()),
        (Some("started"), Some("e1"))
    );
    let exited = read_json(&mut r);
    assert_eq!(exited["event"], "exited");
    assert_eq!(exited["exit_code"], 0);
    drop((w, r));
    pod.shutdown_and_check(&[pause, pid]).await;
}
