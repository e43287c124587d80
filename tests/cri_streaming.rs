//! Exec, Attach and PortForward through berthd's streaming server, driven by
//! berth's streaming client over SPDY and WebSocket as crictl and kubelet
//! drive them: the CRI call returns a single-use URL, the client upgrades a
//! connection on it, and what the process reads and writes (and its exit
//! code) is checked from the client's side.

use std::time::Duration;

use berth_agent::streaming::client::{
    self, CommandIo, ForwardedConn, Options, PortForwardSession, TerminalSize,
};
use berth_proto::v1 as cri;
use berth_tests::daemon::{pod_config, sh_container, Berthd};
use berth_tests::need_root;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tonic::Code;

/// A generous bound for anything a test waits on.
const PATIENCE: Duration = Duration::from_secs(30);

/// The test's ends of a command's streams.
struct Ends {
    stdin: Option<DuplexStream>,
    stdout: Option<DuplexStream>,
    stderr: Option<DuplexStream>,
    resize: Option<mpsc::Sender<TerminalSize>>,
}

/// Client streams for a command, and the test's other ends of them.
fn streams(tty: bool, stdin: bool, stderr: bool) -> (CommandIo, Ends) {
    fn pipe() -> (DuplexStream, DuplexStream) {
        tokio::io::duplex(1 << 16)
    }
    let (stdin_client, stdin_test) = if stdin {
        let (a, b) = pipe();
        (Some(a), Some(b))
    } else {
        (None, None)
    };
    let (stdout_client, stdout_test) = pipe();
    let (stderr_client, stderr_test) = if stderr && !tty {
        let (a, b) = pipe();
        (Some(a), Some(b))
    } else {
        (None, None)
    };
    let (resize_tx, resize_rx) = if tty {
        let (tx, rx) = mpsc::channel(4);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let io = CommandIo {
        tty,
        stdin: stdin_client.map(|s| Box::new(s) as _),
        stdout: Some(Box::new(stdout_client)),
        stderr: stderr_client.map(|s| Box::new(s) as _),
        resize: resize_rx,
    };
    (
        io,
        Ends {
            stdin: stdin_test,
            stdout: Some(stdout_test),
            stderr: stderr_test,
            resize: resize_tx,
        },
    )
}

/// Everything a test-side end carries until it closes.
async fn read_all(end: Option<DuplexStream>) -> String {
    let mut out = Vec::new();
    if let Some(mut end) = end {
        end.read_to_end(&mut out).await.expect("read stream");
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads from `end` until what was read contains `needle`; all of it.
async fn read_until(end: &mut DuplexStream, seen: &mut String, needle: &str) {
    let mut buf = [0u8; 4096];
    let found = tokio::time::timeout(PATIENCE, async {
        while !seen.contains(needle) {
            let n = end.read(&mut buf).await.expect("read stream");
            assert!(n > 0, "stream ended before {needle:?}: {seen:?}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await;
    assert!(found.is_ok(), "no {needle:?} in {seen:?}");
}

/// Exec's URL for `cmd` in container `id`.
async fn exec_url(d: &mut Berthd, id: &str, cmd: &[&str], tty: bool, stdin: bool) -> String {
    d.cri
        .runtime
        .exec(cri::ExecRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty,
            stdin,
            stdout: true,
            stderr: !tty,
        })
        .await
        .expect("Exec")
        .into_inner()
        .url
}

/// Runs `cmd` through Exec with `input` on its stdin (then EOF):
/// (exit code, stdout, stderr).
async fn exec(
    d: &mut Berthd,
    id: &str,
    options: &Options,
    cmd: &[&str],
    input: Option<&[u8]>,
) -> (i32, String, String) {
    let url = exec_url(d, id, cmd, false, input.is_some()).await;
    let (io, ends) = streams(false, input.is_some(), true);
    let mut stdin = ends.stdin;
    let feed = async {
        if let (Some(s), Some(bytes)) = (stdin.as_mut(), input) {
            s.write_all(bytes).await.expect("write stdin");
        }
        drop(stdin.take());
    };
    let (code, (), out, err) = tokio::time::timeout(PATIENCE, async {
        tokio::join!(
            client::exec(&url, options, io),
            feed,
            read_all(ends.stdout),
            read_all(ends.stderr),
        )
    })
    .await
    .expect("exec finished");
    (code.expect("exec"), out, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_streams_exit_codes_and_namespaces_over_spdy_and_websocket() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let mut config = sh_container("main", "");
    config.command = vec!["sleep".into(), "3600".into()];
    // An unprivileged user, fewer capabilities and a seccomp filter, which
    // the exec must take on too.
    config.linux = Some(cri::LinuxContainerConfig {
        security_context: Some(cri::LinuxContainerSecurityContext {
            run_as_user: Some(cri::Int64Value { value: 1000 }),
            capabilities: Some(cri::Capability {
                drop_capabilities: vec!["NET_RAW".into()],
                ..Default::default()
            }),
            seccomp: Some(cri::SecurityProfile {
                profile_type: cri::security_profile::ProfileType::RuntimeDefault as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    config.envs = vec![cri::KeyValue {
        key: "GREETING".into(),
        value: "hello".into(),
    }];
    let (_pod, id) = d.pod_with("exec", config).await;

    // v4.channel.k8s.io over WebSocket cannot close stdin (v5 added the
    // close frame): there the command reads one line instead of to EOF.
    for (options, reader) in [
        (Options::spdy(), "cat"),
        (
            Options::spdy().with_protocols(&["v2.channel.k8s.io"]),
            "cat",
        ),
        (Options::websocket(), "cat"),
        (
            Options::websocket().with_protocols(&["v4.channel.k8s.io"]),
            "head -n 1",
        ),
    ] {
        let what = format!("{options:?}");
        let script = "echo out; echo err >&2; echo $GREETING $(hostname); exit 3";
        let (code, out, err) = exec(&mut d, &id, &options, &["sh", "-c", script], None).await;
        assert_eq!(code, 3, "{what}");
        assert_eq!(out, "out\nhello exec\n", "{what}");
        assert_eq!(err, "err\n", "{what}");

        let cmd = ["sh", "-c", reader];
        let (code, out, _) = exec(&mut d, &id, &options, &cmd, Some(b"ping\n")).await;
        assert_eq!((code, out.as_str()), (0, "ping\n"), "{what}");
    }

    // Killed by a signal: 128 + 9, as kubelet reports it.
    let (code, _, _) = exec(
        &mut d,
        &id,
        &Options::spdy(),
        &["sh", "-c", "kill -9 $$"],
        None,
    )
    .await;
    assert_eq!(code, 137);

    // The exec joins the container's pid namespace and cgroup.
    let same =
        r#"[ "$(cat /proc/self/cgroup)" = "$(cat /proc/$(pidof sleep)/cgroup)" ] && echo same"#;
    let (code, out, err) = exec(&mut d, &id, &Options::spdy(), &["sh", "-c", same], None).await;
    assert_eq!((code, out.as_str()), (0, "same\n"), "{err}");

    // The exec has the init's user, capabilities, no_new_privs and seccomp
    // mode, and, like it, no signal ignored or blocked (their cloner, a Rust
    // program, ignores SIGPIPE). No shell in between: busybox sh makes its
    // children ignore SIGQUIT.
    let (_, out, _) = exec(
        &mut d,
        &id,
        &Options::spdy(),
        &["busybox", "pidof", "sleep"],
        None,
    )
    .await;
    let init = format!("/proc/{}/status", out.trim());
    let fields = "^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Sig(Ign|Blk)):";
    let cmd = ["busybox", "grep", "-E", fields, "/proc/self/status", &init];
    let (_, out, _) = exec(&mut d, &id, &Options::spdy(), &cmd, None).await;
    let of = |file: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| l.strip_prefix(file).map(str::to_owned))
            .collect()
    };
    let (own, init_lines) = (of("/proc/self/status:"), of(&format!("{init}:")));
    assert_eq!(own.len(), 12, "{out}");
    assert_eq!(own, init_lines);
    for line in &own {
        if line.starts_with("Uid:") {
            assert!(line.contains("1000"), "{line}");
        }
        if line.starts_with("Seccomp:") {
            assert!(line.ends_with('2'), "{line}");
        }
        if line.starts_with("Sig") {
            assert!(line.ends_with(":\t0000000000000000"), "{line}");
        }
    }

    // A URL is good for one use.
    let url = exec_url(&mut d, &id, &["true"], false, false).await;
    let (io, ends) = streams(false, false, true);
    let spdy = Options::spdy();
    let (code, _, _) = tokio::join!(
        client::exec(&url, &spdy, io),
        read_all(ends.stdout),
        read_all(ends.stderr)
    );
    assert_eq!(code.expect("first use"), 0);
    let (io, _ends) = streams(false, false, true);
    let again = client::exec(&url, &Options::spdy(), io).await;
    assert!(again.is_err(), "a used URL must be refused");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_a_terminal_resizes_it() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let (_pod, id) = d.pod_with("tty", sh_container("main", "sleep 3600")).await;
    for options in [Options::spdy(), Options::websocket()] {
        let url = exec_url(&mut d, &id, &["sh"], true, true).await;
        let (io, ends) = streams(true, true, false);
        let (mut stdin, mut stdout, resize) = (
            ends.stdin.unwrap(),
            ends.stdout.unwrap(),
            ends.resize.unwrap(),
        );
        let session = tokio::spawn({
            let options = options.clone();
            async move { client::exec(&url, &options, io).await }
        });
        resize
            .send(TerminalSize {
                width: 100,
                height: 40,
            })
            .await
            .unwrap();
        // The resize travels on its own stream: ask until it has landed.
        let mut seen = String::new();
        let asked = tokio::time::timeout(PATIENCE, async {
            loop {
                stdin.write_all(b"stty size; tty\n").await.unwrap();
                let mut buf = [0u8; 4096];
                let n = tokio::time::timeout(Duration::from_millis(500), stdout.read(&mut buf))
                    .await
                    .unwrap_or(Ok(0))
                    .unwrap();
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                if seen.contains("40 100") {
                    break;
                }
            }
        })
        .await;
        assert!(
            asked.is_ok(),
            "{options:?}: no resized terminal in {seen:?}"
        );
        read_until(&mut stdout, &mut seen, "/dev/pts/").await;
        stdin.write_all(b"exit 7\n").await.unwrap();
        let code = tokio::time::timeout(PATIENCE, session)
            .await
            .expect("exec ended")
            .unwrap();
        assert_eq!(code.expect("exec"), 7, "{options:?}");
    }
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_reaches_the_container_stdio() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let sandbox = pod_config("attach");
    let pod = d.run_pod(&sandbox).await;

    // Two clients at once see the output of a chatty container.
    let ticker = d
        .start_container(
            &pod,
            &sandbox,
            sh_container("ticker", "while true; do echo tick; sleep 0.1; done"),
        )
        .await;
    let mut watchers = Vec::new();
    for options in [Options::spdy(), Options::websocket()] {
        let url = attach_url(&mut d, &ticker, false, false).await;
        let (io, ends) = streams(false, false, true);
        let session = tokio::spawn(async move { client::attach(&url, &options, io).await });
        watchers.push((session, ends.stdout.unwrap()));
    }
    for (session, mut stdout) in watchers {
        let mut seen = String::new();
        read_until(&mut stdout, &mut seen, "tick\ntick\n").await;
        session.abort();
    }

    // stdin with stdin_once: the first attach's EOF is the container's.
    let mut cat = sh_container("cat", "cat; echo done");
    cat.stdin = true;
    cat.stdin_once = true;
    let cat = d.start_container(&pod, &sandbox, cat).await;
    let url = attach_url(&mut d, &cat, true, false).await;
    let (io, ends) = streams(false, true, true);
    let (mut stdin, mut stdout) = (ends.stdin.unwrap(), ends.stdout.unwrap());
    let session = tokio::spawn(async move { client::attach(&url, &Options::spdy(), io).await });
    stdin.write_all(b"hello\n").await.unwrap();
    let mut seen = String::new();
    read_until(&mut stdout, &mut seen, "hello\n").await;
    drop(stdin);
    read_until(&mut stdout, &mut seen, "done\n").await;
    let ended = tokio::time::timeout(PATIENCE, session)
        .await
        .expect("attach ended");
    ended.unwrap().expect("attach");
    let status = d.wait_exited(&cat).await;
    assert_eq!(status.exit_code, 0);

    // A tty container: input is terminal input.
    let mut shell = sh_container("shell", "sh");
    shell.stdin = true;
    shell.tty = true;
    let shell = d.start_container(&pod, &sandbox, shell).await;
    let url = attach_url(&mut d, &shell, true, true).await;
    let (io, ends) = streams(true, true, false);
    let (mut stdin, mut stdout) = (ends.stdin.unwrap(), ends.stdout.unwrap());
    let session =
        tokio::spawn(async move { client::attach(&url, &Options::websocket(), io).await });
    stdin.write_all(b"echo $((6*7))\n").await.unwrap();
    let mut seen = String::new();
    read_until(&mut stdout, &mut seen, "42").await;
    stdin.write_all(b"exit 5\n").await.unwrap();
    let ended = tokio::time::timeout(PATIENCE, session)
        .await
        .expect("attach ended");
    ended.unwrap().expect("attach");
    assert_eq!(d.wait_exited(&shell).await.exit_code, 5);

    // Attach to a container that has exited is refused.
    let e = d
        .cri
        .runtime
        .attach(cri::AttachRequest {
            container_id: cat.clone(),
            stdout: true,
            ..Default::default()
        })
        .await
        .expect_err("attach to an exited container");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    d.shutdown().await;
}

/// Attach's URL for container `id`.
async fn attach_url(d: &mut Berthd, id: &str, stdin: bool, tty: bool) -> String {
    d.cri
        .runtime
        .attach(cri::AttachRequest {
            container_id: id.into(),
            stdin,
            tty,
            stdout: true,
            stderr: !tty,
        })
        .await
        .expect("Attach")
        .into_inner()
        .url
}

/// Fetches `/index.html` over a forwarded connection; the response.
async fn fetch(mut conn: ForwardedConn) -> String {
    conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
        .await
        .expect("send request");
    let mut out = Vec::new();
    conn.read_to_end(&mut out).await.expect("read response");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_reaches_a_server_in_the_pod() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let (pod, _id) = d.web_pod("web").await;
    let url = |d: &mut Berthd, ports: Vec<i32>| {
        let mut rt = d.cri.runtime.clone();
        let pod = pod.clone();
        async move {
            rt.port_forward(cri::PortForwardRequest {
                pod_sandbox_id: pod,
                port: ports,
            })
            .await
            .expect("PortForward")
            .into_inner()
            .url
        }
    };
    let before = d.open_fds();

    // SPDY: 50 connections at once on one upgrade.
    let session = PortForwardSession::connect(&url(&mut d, vec![]).await, &Options::spdy())
        .await
        .expect("port-forward upgrade");
    let fetches = (0..50).map(|_| async {
        let conn = session.open(8080).await.expect("open forwarded connection");
        fetch(conn).await
    });
    for reply in futures_util::future::join_all(fetches).await {
        assert!(reply.contains("hello from the pod"), "{reply:?}");
    }
    // A port nothing listens on: the error stream says so.
    let mut refused = session.open(8081).await.expect("open");
    let message = tokio::time::timeout(PATIENCE, refused.remote_error())
        .await
        .expect("error stream");
    assert!(message.is_some_and(|m| m.contains("8081")), "no dial error");
    session.close().await;

    // WebSocket, the port in the URL.
    let ws = url(&mut d, vec![8080]).await;
    let conns = client::port_forward_websocket(&ws, &Options::websocket(), &[8080])
        .await
        .expect("websocket port-forward");
    for conn in conns {
        assert!(fetch(conn).await.contains("hello from the pod"));
    }

    // Every connection closed: berthd holds no more descriptors than before.
    let settled = tokio::time::timeout(PATIENCE, async {
        while d.open_fds() > before {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "berthd fds: {} before, {} after",
        before,
        d.open_fds()
    );

    // PortForward on an unknown pod is NotFound.
    let e = d
        .cri
        .runtime
        .port_forward(cri::PortForwardRequest {
            pod_sandbox_id: "nosuchpod".into(),
            port: vec![80],
        })
        .await
        .expect_err("unknown pod");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_streaming_requests_name_the_field() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let (_pod, id) = d.pod_with("bad", sh_container("main", "sleep 3600")).await;
    let rt = &mut d.cri.runtime.clone();
    let cases = [
        (
            cri::ExecRequest {
                container_id: "nosuch".into(),
                cmd: vec!["true".into()],
                stdout: true,
                ..Default::default()
            },
            Code::NotFound,
            "nosuch",
        ),
        (
            cri::ExecRequest {
                container_id: id.clone(),
                stdout: true,
                ..Default::default()
            },
            Code::InvalidArgument,
            "cmd",
        ),
        (
            cri::ExecRequest {
                container_id: id.clone(),
                cmd: vec!["true".into()],
                tty: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            },
            Code::InvalidArgument,
            "stderr",
        ),
        (
            cri::ExecRequest {
                container_id: id.clone(),
                cmd: vec!["true".into()],
                ..Default::default()
            },
            Code::InvalidArgument,
            "one of stdin, stdout, or stderr",
        ),
    ];
    for (req, code, needle) in cases {
        let e = rt.exec(req.clone()).await.expect_err("bad exec");
        assert_eq!(e.code(), code, "{req:?}: {e:?}");
        assert!(e.message().contains(needle), "{needle:?} not in {e:?}");
    }
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_outlives_a_killed_berthd_and_streaming_works_after_restart() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let (_pod, id) = d
        .pod_with("survive", sh_container("main", "sleep 3600"))
        .await;
    // An exec that runs on: it marks itself, then sleeps.
    let url = exec_url(
        &mut d,
        &id,
        &["sh", "-c", "echo up; exec sleep 1234"],
        false,
        false,
    )
    .await;
    let (io, ends) = streams(false, false, true);
    let session = tokio::spawn(async move { client::exec(&url, &Options::spdy(), io).await });
    let mut stdout = ends.stdout.unwrap();
    let mut seen = String::new();
    read_until(&mut stdout, &mut seen, "up\n").await;

    d.restart().await;
    // The client's session ended with berthd; the process did not.
    let ended = tokio::time::timeout(PATIENCE, session)
        .await
        .expect("session ended");
    assert!(
        ended.unwrap().is_err(),
        "the session cannot finish without berthd"
    );
    let (code, out, _) = exec(
        &mut d,
        &id,
        &Options::websocket(),
        &["sh", "-c", "ps -o args | grep -c '^sleep 1234'"],
        None,
    )
    .await;
    assert_eq!((code, out.trim()), (0, "1"), "the exec'd sleep still runs");
    d.shutdown().await;
}
