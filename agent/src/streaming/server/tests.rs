//! The streaming server against the streaming client, with a fake backend
//! (the protocol logic is what is under test; berthd's backend has its own
//! end-to-end tests). Every test is bounded; none asserts on wall time.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use berth_proto::v1 as cri;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::*;
use crate::streaming::client::{self, ClientError, CommandIo, Options, PortForwardSession};
use crate::streaming::protocol::{
    REMOTE_COMMAND_V1, REMOTE_COMMAND_V2, REMOTE_COMMAND_V3, REMOTE_COMMAND_V4, REMOTE_COMMAND_V5,
};

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out")
}

/// What the fake backend saw.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Io {
        tty: bool,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        resize: bool,
    },
    Resize(TerminalSize),
    StdinEnded,
    StdoutClosed,
    Returned,
    EchoClosed,
}

struct Fake {
    events: mpsc::UnboundedSender<Event>,
}

fn io_event(io: &StreamIo) -> Event {
    Event::Io {
        tty: io.tty,
        stdin: io.stdin.is_some(),
        stdout: io.stdout.is_some(),
        stderr: io.stderr.is_some(),
        resize: io.resize.is_some(),
    }
}

/// Reads stdin up to a newline or end-of-file.
async fn read_line(stdin: &mut BoxRead) -> Vec<u8> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while let Ok(1) = stdin.read(&mut b).await {
        line.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    line
}

async fn run_fake(cmd: Vec<String>, mut io: StreamIo, events: mpsc::UnboundedSender<Event>) -> i32 {
    let _ = events.send(io_event(&io));
    let arg = |i: usize| cmd.get(i).cloned().unwrap_or_default();
    let code = arg(1).parse().unwrap_or(0);
    match arg(0).as_str() {
        // Echoes one line of stdin, writes "err" on stderr, exits with $1.
        "echo-line" => {
            if let Some(stdin) = io.stdin.as_mut() {
                let line = read_line(stdin).await;
                if let Some(out) = io.stdout.as_mut() {
                    let _ = out.write_all(&line).await;
                }
            }
            if let Some(err) = io.stderr.as_mut() {
                let _ = err.write_all(b"err\n").await;
            }
            code
        }
        // Reports two terminal sizes on stdout.
        "resize" => {
            let mut rx = io.resize.take().expect("resize stream");
            for _ in 0..2 {
                let Some(size) = rx.recv().await else { break };
                let _ = events.send(Event::Resize(size));
                if let Some(out) = io.stdout.as_mut() {
                    let _ = out
                        .write_all(format!("{}x{}\n", size.width, size.height).as_bytes())
                        .await;
                }
            }
            0
        }
        // Runs until the client is gone: stdin to its end, then stdout
        // until writes fail.
        "hang" => {
            let _ = io
                .stdout
                .as_mut()
                .expect("stdout")
                .write_all(b"ready\n")
                .await;
            let mut stdin = io.stdin.take().expect("stdin");
            let mut buf = [0u8; 64];
            while let Ok(n) = stdin.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            let _ = events.send(Event::StdinEnded);
            let out = io.stdout.as_mut().expect("stdout");
            while out.write_all(b"tick\n").await.is_ok() && out.flush().await.is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = events.send(Event::StdoutClosed);
            0
        }
        _ => 127,
    }
}

impl Backend for Fake {
    fn exec(
        &self,
        _container_id: String,
        cmd: Vec<String>,
        io: StreamIo,
    ) -> BoxFuture<'static, Result<i32, BackendError>> {
        let events = self.events.clone();
        Box::pin(async move {
            if cmd[0] == "fail" {
                return Err(BackendError::Failed("no such binary".into()));
            }
            let code = run_fake(cmd, io, events.clone()).await;
            let _ = events.send(Event::Returned);
            Ok(code)
        })
    }

    fn attach(
        &self,
        _container_id: String,
        io: StreamIo,
    ) -> BoxFuture<'static, Result<(), BackendError>> {
        let events = self.events.clone();
        Box::pin(async move {
            run_fake(vec!["echo-line".into()], io, events).await;
            Ok(())
        })
    }

    fn port_forward(
        &self,
        _pod_sandbox_id: String,
        port: u16,
    ) -> BoxFuture<'static, Result<BoxedConn, BackendError>> {
        Box::pin(async move {
            if port == 1 {
                return Err(BackendError::Unavailable("connection refused".into()));
            }
            let conn = TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(|e| BackendError::Failed(e.to_string()))?;
            Ok(Box::new(conn) as BoxedConn)
        })
    }
}

/// A loopback echo server: a banner line with its port, then every byte
/// back; reports when a client's connection ends.
async fn echo_server(events: mpsc::UnboundedSender<Event>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let events = events.clone();
            tokio::spawn(async move {
                let _ = conn.write_all(format!("port {port}\n").as_bytes()).await;
                let (mut rd, mut wr) = conn.split();
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
                let _ = events.send(Event::EchoClosed);
            });
        }
    });
    port
}

struct Harness {
    server: StreamingServer,
    clock: ManualClock,
    events: mpsc::UnboundedReceiver<Event>,
    events_tx: mpsc::UnboundedSender<Event>,
}

async fn harness() -> Harness {
    let (events_tx, events) = mpsc::unbounded_channel();
    let clock = ManualClock::default();
    let config = Config {
        clock: Arc::new(clock.clone()),
        ..Config::default()
    };
    let backend = Arc::new(Fake {
        events: events_tx.clone(),
    });
    let server = StreamingServer::bind_with("127.0.0.1:0".parse().unwrap(), backend, config)
        .await
        .unwrap();
    Harness {
        server,
        clock,
        events,
        events_tx,
    }
}

impl Harness {
    async fn next_event(&mut self) -> Event {
        self.events.recv().await.expect("events")
    }

    /// Waits for `want`, skipping other events.
    async fn wait_for(&mut self, want: Event) {
        while self.next_event().await != want {}
    }
}

fn exec_request(
    cmd: &[&str],
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
) -> cri::ExecRequest {
    cri::ExecRequest {
        container_id: "c1".into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout,
        stderr,
    }
}

/// An in-memory writer the test reads afterwards.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<u8>>>);

impl Collect {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl AsyncWrite for Collect {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.lock().unwrap().extend_from_slice(b);
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Runs an exec with stdin `input` (if any) and collects stdout/stderr.
async fn run_exec(
    url: &str,
    options: &Options,
    input: Option<&[u8]>,
    stderr: bool,
    tty: bool,
    resize: Option<mpsc::Receiver<TerminalSize>>,
) -> (Result<i32, ClientError>, String, String) {
    let out = Collect::default();
    let err = Collect::default();
    let io = CommandIo {
        tty,
        stdin: input.map(|i| Box::new(std::io::Cursor::new(i.to_vec())) as BoxRead),
        stdout: Some(Box::new(out.clone())),
        stderr: stderr.then(|| Box::new(err.clone()) as BoxWrite),
        resize,
    };
    let r = client::exec(url, options, io).await;
    (r, out.text(), err.text())
}

fn spdy(version: &str) -> Options {
    Options::spdy().with_protocols(&[version])
}

fn ws(version: &str) -> Options {
    Options::websocket().with_protocols(&[version])
}

#[tokio::test]
async fn exec_over_spdy_every_version_keeps_streams_apart_and_reports_exit_codes() {
    bounded(async {
        let h = harness().await;
        for version in [
            REMOTE_COMMAND_V1,
            REMOTE_COMMAND_V2,
            REMOTE_COMMAND_V3,
            REMOTE_COMMAND_V4,
        ] {
            for code in [0, 3, 137] {
                let code_s = code.to_string();
                let req = exec_request(&["echo-line", &code_s], true, true, true, false);
                let url = h.server.get_exec(&req).unwrap().url;
                assert!(url.starts_with(&format!("{}/exec/", h.server.base_url())));
                let (r, out, err) =
                    run_exec(&url, &spdy(version), Some(b"hello\n"), true, false, None).await;
                assert_eq!(r.unwrap(), code, "{version}");
                assert_eq!(out, "hello\n", "{version}");
                assert_eq!(err, "err\n", "{version}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn exec_over_websocket_v4_and_v5() {
    bounded(async {
        let h = harness().await;
        for version in [REMOTE_COMMAND_V4, REMOTE_COMMAND_V5] {
            for code in [0, 3, 137] {
                let code_s = code.to_string();
                let req = exec_request(&["echo-line", &code_s], true, true, true, false);
                let url = h.server.get_exec(&req).unwrap().url;
                let (r, out, err) =
                    run_exec(&url, &ws(version), Some(b"hello\n"), true, false, None).await;
                assert_eq!(r.unwrap(), code, "{version}");
                assert_eq!(out, "hello\n", "{version}");
                assert_eq!(err, "err\n", "{version}");
            }
        }
        // v5 closes stdin: a line without a newline ends at end-of-file.
        let req = exec_request(&["echo-line"], true, true, false, false);
        let url = h.server.get_exec(&req).unwrap().url;
        let (r, out, _) = run_exec(
            &url,
            &ws(REMOTE_COMMAND_V5),
            Some(b"no newline"),
            false,
            false,
            None,
        )
        .await;
        assert_eq!(r.unwrap(), 0);
        assert_eq!(out, "no newline");
    })
    .await;
}

#[tokio::test]
async fn backend_failure_is_an_internal_error_status() {
    bounded(async {
        let h = harness().await;
        for options in [
            spdy(REMOTE_COMMAND_V4),
            spdy(REMOTE_COMMAND_V2),
            ws(REMOTE_COMMAND_V5),
        ] {
            let url = h
                .server
                .get_exec(&exec_request(&["fail"], false, true, false, false))
                .unwrap()
                .url;
            let (r, _, _) = run_exec(&url, &options, None, false, false, None).await;
            match r {
                Err(ClientError::Remote(msg)) => assert!(msg.contains("no such binary"), "{msg}"),
                other => panic!("{options:?}: {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn tty_has_no_stderr_and_resizes_reach_the_backend() {
    bounded(async {
        let mut h = harness().await;
        for options in [
            spdy(REMOTE_COMMAND_V4),
            spdy(REMOTE_COMMAND_V3),
            ws(REMOTE_COMMAND_V5),
            ws(REMOTE_COMMAND_V4),
        ] {
            let url = h
                .server
                .get_exec(&exec_request(&["resize"], true, true, false, true))
                .unwrap()
                .url;
            let (tx, rx) = mpsc::channel(4);
            tx.send(TerminalSize {
                width: 80,
                height: 24,
            })
            .await
            .unwrap();
            tx.send(TerminalSize {
                width: 120,
                height: 40,
            })
            .await
            .unwrap();
            // Stdin stays open (a terminal) for the whole command.
            let (stdin, _keep) = tokio::io::duplex(64);
            let out = Collect::default();
            let io = CommandIo {
                tty: true,
                stdin: Some(Box::new(stdin)),
                stdout: Some(Box::new(out.clone())),
                stderr: None,
                resize: Some(rx),
            };
            assert_eq!(
                client::exec(&url, &options, io).await.unwrap(),
                0,
                "{options:?}"
            );
            assert_eq!(out.text(), "80x24\n120x40\n", "{options:?}");
            assert_eq!(
                h.next_event().await,
                Event::Io {
                    tty: true,
                    stdin: true,
                    stdout: true,
                    stderr: false,
                    resize: true
                }
            );
            assert_eq!(
                h.next_event().await,
                Event::Resize(TerminalSize {
                    width: 80,
                    height: 24
                })
            );
            assert_eq!(
                h.next_event().await,
                Event::Resize(TerminalSize {
                    width: 120,
                    height: 40
                })
            );
            assert_eq!(h.next_event().await, Event::Returned);
        }
    })
    .await;
}

#[tokio::test]
async fn attach_over_spdy_and_websocket() {
    bounded(async {
        let h = harness().await;
        for options in [spdy(REMOTE_COMMAND_V4), ws(REMOTE_COMMAND_V5)] {
            let req = cri::AttachRequest {
                container_id: "c1".into(),
                stdin: true,
                tty: false,
                stdout: true,
                stderr: true,
            };
            let url = h.server.get_attach(&req).unwrap().url;
            assert!(url.contains("/attach/"));
            let out = Collect::default();
            let err = Collect::default();
            let io = CommandIo {
                tty: false,
                stdin: Some(Box::new(std::io::Cursor::new(b"hi\n".to_vec()))),
                stdout: Some(Box::new(out.clone())),
                stderr: Some(Box::new(err.clone())),
                resize: None,
            };
            client::attach(&url, &options, io).await.unwrap();
            assert_eq!(out.text(), "hi\n");
            assert_eq!(err.text(), "err\n");
        }
    })
    .await;
}

fn status_of(r: Result<i32, ClientError>) -> u16 {
    match r {
        Err(ClientError::Refused { status, .. }) => status,
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_token_works_once_and_expires() {
    bounded(async {
        let h = harness().await;
        let req = exec_request(&["echo-line"], false, true, false, false);
        for options in [Options::spdy(), Options::websocket()] {
            let url = h.server.get_exec(&req).unwrap().url;
            let (r, _, _) = run_exec(&url, &options, None, false, false, None).await;
            assert_eq!(r.unwrap(), 0);
            let (r, _, _) = run_exec(&url, &options, None, false, false, None).await;
            assert_eq!(status_of(r), 404, "second use");

            let url = h.server.get_exec(&req).unwrap().url;
            h.clock.advance(Duration::from_secs(61));
            let (r, _, _) = run_exec(&url, &options, None, false, false, None).await;
            assert_eq!(status_of(r), 404, "expired");
        }
        // A token is only good on its own route.
        let url = h
            .server
            .get_exec(&req)
            .unwrap()
            .url
            .replace("/exec/", "/attach/");
        let (r, _, _) = run_exec(&url, &Options::spdy(), None, false, false, None).await;
        assert_eq!(status_of(r), 404);
        let url = format!("{}/exec/nosuchtoken", h.server.base_url());
        let (r, _, _) = run_exec(&url, &Options::spdy(), None, false, false, None).await;
        assert_eq!(status_of(r), 404);
        // Plain HTTP elsewhere.
        let mut tcp = TcpStream::connect(h.server.base_url().trim_start_matches("http://"))
            .await
            .unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        tcp.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    })
    .await;
}

#[tokio::test]
async fn the_1001st_token_in_flight_is_refused() {
    let h = harness().await;
    let req = exec_request(&["echo-line"], false, true, false, false);
    for _ in 0..1000 {
        h.server.get_exec(&req).unwrap();
    }
    let err = h.server.get_exec(&req).unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    let pf = cri::PortForwardRequest {
        pod_sandbox_id: "p".into(),
        port: vec![],
    };
    assert_eq!(
        h.server.get_port_forward(&pf).unwrap_err().code(),
        tonic::Code::ResourceExhausted
    );
    h.clock.advance(Duration::from_secs(60));
    h.server.get_exec(&req).unwrap();
}

#[tokio::test]
async fn requests_are_validated_like_kubelet() {
    let h = harness().await;
    let check = |r: Result<String, tonic::Status>, field: &str| {
        let e = r.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains(field), "{} lacks {field}", e.message());
    };
    let exec = |req: cri::ExecRequest| h.server.get_exec(&req).map(|r| r.url);
    check(exec(exec_request(&[], false, true, false, false)), "cmd");
    check(
        exec(exec_request(&["sh"], true, true, true, true)),
        "tty and stderr",
    );
    check(
        exec(exec_request(&["sh"], false, false, false, false)),
        "one of stdin, stdout, or stderr",
    );
    let mut r = exec_request(&["sh"], false, true, false, false);
    r.container_id.clear();
    check(exec(r), "container_id");
    let attach = |tty, stdin, stdout, stderr| {
        let req = cri::AttachRequest {
            container_id: "c".into(),
            stdin,
            tty,
            stdout,
            stderr,
        };
        h.server.get_attach(&req).map(|r| r.url)
    };
    check(attach(true, false, true, true), "tty and stderr");
    check(attach(false, false, false, false), "one of stdin");
    let pf = |pod: &str, port: Vec<i32>| {
        let req = cri::PortForwardRequest {
            pod_sandbox_id: pod.into(),
            port,
        };
        h.server.get_port_forward(&req).map(|r| r.url)
    };
    check(pf("", vec![80]), "pod_sandbox_id");
    check(pf("p", vec![80, 70000]), "port[1]");
    assert!(pf("p", vec![80]).unwrap().contains("/portforward/"));
}

fn port_forward_url(h: &Harness, ports: Vec<i32>) -> String {
    let req = cri::PortForwardRequest {
        pod_sandbox_id: "pod1".into(),
        port: ports,
    };
    h.server.get_port_forward(&req).unwrap().url
}

/// Reads the echo server's banner, then sends `payload`, half-closes (if
/// `half_close`) and reads it back.
async fn echo_round_trip<C>(conn: &mut C, port: u16, payload: &[u8], half_close: bool)
where
    C: tokio::io::AsyncRead + AsyncWrite + Unpin,
{
    let banner = format!("port {port}\n");
    let mut got = vec![0u8; banner.len()];
    conn.read_exact(&mut got).await.unwrap();
    assert_eq!(got, banner.as_bytes());
    conn.write_all(payload).await.unwrap();
    conn.flush().await.unwrap();
    if half_close {
        conn.shutdown().await.unwrap();
        let mut back = Vec::new();
        conn.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, payload);
    } else {
        let mut back = vec![0u8; payload.len()];
        conn.read_exact(&mut back).await.unwrap();
        assert_eq!(back, payload);
    }
}

#[tokio::test]
async fn port_forward_over_spdy_and_the_websocket_tunnel_50_concurrent_connections() {
    bounded(async {
        let h = harness().await;
        let a = echo_server(h.events_tx.clone()).await;
        let b = echo_server(h.events_tx.clone()).await;
        for options in [Options::spdy(), Options::websocket()] {
            let url = port_forward_url(&h, vec![]);
            let session = Arc::new(PortForwardSession::connect(&url, &options).await.unwrap());
            let mut tasks = Vec::new();
            for i in 0..50u32 {
                let session = Arc::clone(&session);
                let port = if i % 2 == 0 { a } else { b };
                tasks.push(tokio::spawn(async move {
                    let mut conn = session.open(port).await.unwrap();
                    let payload = format!("connection {i} ").repeat(200 + i as usize);
                    echo_round_trip(&mut conn, port, payload.as_bytes(), true).await;
                    assert_eq!(conn.remote_error().await, None);
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            // A dial that fails is reported on the error stream.
            let mut conn = session.open(1).await.unwrap();
            let mut rest = Vec::new();
            let _ = conn.read_to_end(&mut rest).await;
            let err = conn.remote_error().await.expect("an error");
            assert!(err.contains("error forwarding port 1 to pod pod1"), "{err}");
            assert!(err.contains("connection refused"), "{err}");
        }
    })
    .await;
}

#[tokio::test]
async fn port_forward_over_websocket_channels_several_ports() {
    bounded(async {
        let h = harness().await;
        let a = echo_server(h.events_tx.clone()).await;
        let b = echo_server(h.events_tx.clone()).await;
        // Ports from the CRI request, and from the URL when the request has none.
        for request_ports in [vec![i32::from(a), i32::from(b), 1], vec![]] {
            let url = port_forward_url(&h, request_ports);
            let mut conns = client::port_forward_websocket(&url, &Options::websocket(), &[a, b, 1])
                .await
                .unwrap();
            assert_eq!(conns.len(), 3);
            echo_round_trip(&mut conns[0], a, b"to a", false).await;
            echo_round_trip(&mut conns[1], b, b"to b", false).await;
            let err = conns[2].remote_error().await.expect("an error");
            assert!(err.contains("error forwarding port 1"), "{err}");
        }
    })
    .await;
}

/// A TCP proxy in front of the server that the test can cut.
struct Proxy {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

async fn proxy(to: String) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut client, _) = listener.accept().await.unwrap();
        let mut server = TcpStream::connect(&to).await.unwrap();
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    });
    Proxy { addr, task }
}

impl Proxy {
    fn url(&self, url: &str, base: &str) -> String {
        url.replace(base, &format!("http://{}", self.addr))
    }

    /// Drops both connections, as a network failure would.
    async fn cut(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

#[tokio::test]
async fn a_client_that_disconnects_ends_the_backends_streams() {
    bounded(async {
        let mut h = harness().await;
        let base = h.server.base_url();
        for options in [
            spdy(REMOTE_COMMAND_V4),
            ws(REMOTE_COMMAND_V5),
            ws(REMOTE_COMMAND_V4),
        ] {
            let url = h
                .server
                .get_exec(&exec_request(&["hang"], true, true, false, false))
                .unwrap()
                .url;
            let p = proxy(base.trim_start_matches("http://").to_owned()).await;
            let url = p.url(&url, &base);
            // Stdin that never ends, stdout read line by line.
            let (stdin, _stdin_w) = tokio::io::duplex(64);
            let (stdout_w, stdout_r) = tokio::io::duplex(1 << 16);
            let io = CommandIo {
                tty: false,
                stdin: Some(Box::new(stdin)),
                stdout: Some(Box::new(stdout_w)),
                stderr: None,
                resize: None,
            };
            let client = tokio::spawn(async move { client::exec(&url, &options, io).await });
            let mut lines = BufReader::new(stdout_r).lines();
            assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("ready"));
            p.cut().await;
            h.wait_for(Event::StdinEnded).await;
            h.wait_for(Event::StdoutClosed).await;
            h.wait_for(Event::Returned).await;
            assert!(client.await.unwrap().is_err());
        }
    })
    .await;
}

#[tokio::test]
async fn a_port_forward_client_that_disconnects_closes_the_pod_connection() {
    bounded(async {
        let mut h = harness().await;
        let base = h.server.base_url();
        let echo = echo_server(h.events_tx.clone()).await;
        // SPDY.
        let url = port_forward_url(&h, vec![]);
        let p = proxy(base.trim_start_matches("http://").to_owned()).await;
        let session = PortForwardSession::connect(&p.url(&url, &base), &Options::spdy())
            .await
            .unwrap();
        let mut conn = session.open(echo).await.unwrap();
        echo_round_trip(&mut conn, echo, b"x", false).await;
        p.cut().await;
        h.wait_for(Event::EchoClosed).await;
        // WebSocket channels.
        let url = port_forward_url(&h, vec![i32::from(echo)]);
        let p = proxy(base.trim_start_matches("http://").to_owned()).await;
        let mut conns =
            client::port_forward_websocket(&p.url(&url, &base), &Options::websocket(), &[echo])
                .await
                .unwrap();
        echo_round_trip(&mut conns[0], echo, b"y", false).await;
        p.cut().await;
        h.wait_for(Event::EchoClosed).await;
    })
    .await;
}

#[tokio::test]
async fn shutdown_ends_open_sessions() {
    bounded(async {
        let h = harness().await;
        let echo = echo_server(h.events_tx.clone()).await;
        let url = port_forward_url(&h, vec![]);
        let session = PortForwardSession::connect(&url, &Options::spdy())
            .await
            .unwrap();
        let mut conn = session.open(echo).await.unwrap();
        echo_round_trip(&mut conn, echo, b"x", false).await;
        h.server.shutdown().await;
        let mut rest = Vec::new();
        // The forwarded connection ends (EOF or an error), nothing hangs.
        let _ = conn.read_to_end(&mut rest).await;
    })
    .await;
}

#[tokio::test]
async fn a_spdy_client_that_does_not_open_its_streams_is_cut_off() {
    bounded(async {
        let (events_tx, _events) = mpsc::unbounded_channel();
        let config = Config {
            stream_creation_timeout: Duration::from_millis(200),
            ..Config::default()
        };
        let backend = Arc::new(Fake { events: events_tx });
        let server = StreamingServer::bind_with("127.0.0.1:0".parse().unwrap(), backend, config)
            .await
            .unwrap();
        // The request wants stdin; the client opens only error and stdout.
        let url = server
            .get_exec(&exec_request(&["echo-line"], true, true, false, false))
            .unwrap()
            .url;
        let (r, out, _) = run_exec(&url, &spdy(REMOTE_COMMAND_V4), None, false, false, None).await;
        assert!(r.is_err(), "{r:?}");
        assert_eq!(out, "");
    })
    .await;
}
