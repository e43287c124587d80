//! Probes of manifest pods, observed through their status files: exec
//! readiness flipping the Ready condition, httpGet readiness passing and
//! liveness failing (restarts, the back-off read from event timestamps),
//! tcpSocket passing and failing, grpc failing, and a startup probe gating
//! the others.

#[path = "pod_support.rs"]
mod support;

use berth_agent::kubelet::status::{PodStatus, ProbeView};
use berth_tests::need_root;
use support::{running, Kubelet};

fn probe<'a>(s: &'a PodStatus, c: &str, kind: &str) -> Option<&'a ProbeView> {
    s.container(c)?.probes.iter().find(|p| p.kind == kind)
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_readiness_flips_the_ready_condition() {
    let Some(mut k) = Kubelet::with("probe-exec-readiness.yaml").await else {
        return;
    };
    k.wait_for("probe-exec", "Ready", |s| s.ready()).await;
    k.sh("probe-exec", "app", "rm /tmp/ready").await;
    let s = k.wait_for("probe-exec", "not Ready", |s| !s.ready()).await;
    assert!(running(&s, "app"), "readiness never kills");
    let p = probe(&s, "app", "readiness").expect("probe");
    assert_eq!(p.result, "Failure");
    assert!(p.message.contains("exited with 1"), "{p:?}");
    assert!(!s.condition("ContainersReady"));
    k.sh("probe-exec", "app", "touch /tmp/ready").await;
    let s = k.wait_for("probe-exec", "Ready again", |s| s.ready()).await;
    assert_eq!(s.container("app").map(|c| c.restart_count), Some(0));
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_liveness_failure_restarts_with_back_off() {
    let Some(k) = Kubelet::with("probe-http-liveness.yaml").await else {
        return;
    };
    let s = k
        .wait_for("probe-http", "ready once", |s| {
            probe(s, "web", "readiness").is_some_and(|p| p.successes > 0)
        })
        .await;
    assert_eq!(s.container("web").map(|c| c.restart_count), Some(0));
    // Two liveness kills: the first restart is immediate, the second waits
    // for the back-off.
    let s = k
        .wait_for("probe-http", "restarted twice", |s| {
            s.container("web").is_some_and(|c| c.restart_count >= 2) && running(s, "web")
        })
        .await;
    let unhealthy = s
        .events
        .iter()
        .filter(|e| e.reason == "Unhealthy")
        .collect::<Vec<_>>();
    assert!(
        unhealthy
            .iter()
            .all(|e| e.message == "Liveness probe failed: HTTP probe failed with statuscode: 404"),
        "{unhealthy:?}"
    );
    let times = |reason: &str| -> Vec<i64> {
        s.events
            .iter()
            .filter(|e| e.reason == reason && e.container.as_deref() == Some("web"))
            .map(|e| e.at)
            .collect()
    };
    let (ended, started) = (times("Terminated"), times("Started"));
    assert!(ended.len() >= 2 && started.len() >= 3, "{:?}", s.events);
    let first_wait = started[1] - ended[0];
    let second_wait = started[2] - ended[1];
    let sec = 1_000_000_000;
    assert!(
        first_wait < 5 * sec,
        "the first restart is at once: {first_wait} ns"
    );
    assert!(
        second_wait >= 8 * sec,
        "the second restart waits for the 10 s back-off: {second_wait} ns"
    );
    assert!(s.events.iter().any(|e| e.reason == "BackOff"));
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_and_grpc_probes_pass_and_fail() {
    let Some(k) = Kubelet::with("probe-tcp-grpc.yaml").await else {
        return;
    };
    let s = k
        .wait_for("probe-tcp", "probed", |s| {
            probe(s, "tcp", "readiness").is_some_and(|p| p.failures >= 2)
                && probe(s, "grpc", "readiness").is_some_and(|p| p.failures >= 2)
        })
        .await;
    let startup = probe(&s, "tcp", "startup").expect("startup");
    assert_eq!(startup.result, "Success");
    let tcp = s.container("tcp").expect("tcp");
    assert!(tcp.started && !tcp.ready, "{tcp:?}");
    let r = probe(&s, "tcp", "readiness").expect("readiness");
    assert_eq!((r.result.as_str(), r.successes), ("Failure", 0));
    assert!(r.message.contains(":9999"), "{r:?}");
    let g = probe(&s, "grpc", "readiness").expect("grpc");
    assert_eq!((g.result.as_str(), g.successes), ("Failure", 0));
    assert!(!s.ready());
    assert_eq!(s.status, "Running");
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn startup_probe_gates_liveness_and_readiness() {
    let Some(k) = Kubelet::with("probe-startup.yaml").await else {
        return;
    };
    let s = k
        .wait_for("probe-startup", "Ready", |s| {
            // Until the startup probe passes, the others must not have run.
            let started = probe(s, "slow", "startup").is_some_and(|p| p.result == "Success");
            if !started {
                for kind in ["liveness", "readiness"] {
                    if let Some(p) = probe(s, "slow", kind) {
                        assert_eq!(p.successes + p.failures, 0, "{kind} ran before startup");
                    }
                }
            }
            s.ready()
        })
        .await;
    let startup = probe(&s, "slow", "startup").expect("startup");
    assert!(
        startup.failures >= 1,
        "the startup probe failed first: {startup:?}"
    );
    assert_eq!(s.container("slow").map(|c| c.restart_count), Some(0));
    k.shutdown().await;
}

/// `openssl s_server -www` on the loopback with a fresh self-signed
/// certificate; killed on drop.
struct TlsServer(std::process::Child);

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tls_server(dir: &std::path::Path, port: u16) -> TlsServer {
    use std::process::{Command, Stdio};
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=probe-test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl req");
    assert!(ok.success());
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    TlsServer(child)
}

#[tokio::test(flavor = "multi_thread")]
async fn https_probe_skips_certificate_checks() {
    if need_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let port = 40000 + (std::process::id() % 20000) as u16;
    let _server = tls_server(dir.path(), port);
    let k = Kubelet::start().await;
    k.apply_with("probe-https.yaml", "HTTPS_PORT", &port.to_string());
    let s = k.wait_for("probe-https", "Ready", |s| s.ready()).await;
    let p = probe(&s, "app", "readiness").expect("probe");
    assert_eq!(p.result, "Success", "{p:?}");
    k.shutdown().await;
}
