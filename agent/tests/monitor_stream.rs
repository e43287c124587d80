//! Streaming sessions with a real monitor: `exec_stream` (pipes, exit codes,
//! signals, a pty and its size, env, the container's namespaces, a session
//! dropped early, a shutdown) and `attach` (two attachers at once, stdin and
//! `stdin_once`, a tty container with resize, the end at the container's
//! exit, errors, and a client that never reads).

mod monitor_common;

use std::time::Duration;

use berth_agent::monitor::{
    attach, exec_stream,
    protocol::{AttachRequest, CreateRequest, ExecStreamRequest},
    stream_client::AttachSession,
    ExecSession,
};
use berth_fixtures::Bundle;
use monitor_common::{parse_cri_log, wait_gone, Pod, WAIT};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    time::timeout,
};

/// How a test container is created.
#[derive(Default, Clone, Copy)]
struct Opts {
    stdin: bool,
    stdin_once: bool,
    tty: bool,
}

/// Creates and starts container `id` running `script` (joining the pause
/// process's namespaces); returns its pid and bundle (kept while it runs).
async fn run(pod: &Pod, id: &str, script: &str, pause: i32, o: Opts) -> (i32, Bundle) {
    let mut bundle = pod.bundle(id, script, Some(pause));
    if o.tty {
        let p = bundle.spec_mut().process_mut().as_mut().unwrap();
        p.set_terminal(Some(true));
        bundle.save().unwrap();
    }
    let pid = pod
        .client()
        .create(&CreateRequest {
            id: id.into(),
            bundle: bundle.dir().to_path_buf(),
            log_path: pod.log_path(id),
            tty: o.tty,
            stdin: o.stdin,
            stdin_once: o.stdin_once,
        })
        .await
        .expect("create");
    pod.client().start(id).await.expect("start");
    (pid, bundle)
}

fn exec_req(args: &[&str]) -> ExecStreamRequest {
    ExecStreamRequest {
        id: "c1".into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

async fn read_to_end(r: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut v = Vec::new();
    timeout(WAIT, r.read_to_end(&mut v))
        .await
        .expect("EOF in time")
        .expect("read");
    v
}

/// Reads into `acc` until it contains `needle`.
async fn read_until(r: &mut (impl AsyncRead + Unpin), acc: &mut Vec<u8>, needle: &str) {
    let found = async {
        while !String::from_utf8_lossy(acc).contains(needle) {
            let mut chunk = [0u8; 4096];
            let n = r.read(&mut chunk).await.expect("read");
            assert!(
                n > 0,
                "EOF before {needle:?} in {:?}",
                String::from_utf8_lossy(acc)
            );
            acc.extend_from_slice(&chunk[..n]);
        }
    };
    timeout(WAIT, found)
        .await
        .unwrap_or_else(|_| panic!("no {needle:?} in {:?}", String::from_utf8_lossy(acc)));
}

async fn write(w: &mut (impl AsyncWrite + Unpin), data: &[u8]) {
    timeout(WAIT, w.write_all(data))
        .await
        .expect("write in time")
        .expect("write");
}

async fn wait(s: &mut ExecSession) -> i32 {
    timeout(WAIT, s.wait())
        .await
        .expect("exit in time")
        .expect("exit code")
}

async fn wait_exit(s: &mut AttachSession) -> Result<(), String> {
    timeout(WAIT, s.wait_exit())
        .await
        .expect("end in time")
        .map_err(|e| e.to_string())
}

/// The monitor's open fds, less the transient ones into `/proc` (it reads
/// `/proc/self/smaps` when it releases its code pages, after each verb).
fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| !target.starts_with("/proc"))
        .count()
}

fn ns(pid: &str, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .unwrap()
        .display()
        .to_string()
}

#[tokio::test]
async fn exec_stream_pipes_exit_codes_env_namespaces_and_early_drop() {
    let mut pod = Pod::spawn("mon-sx").await;
    let pause = pod.client().start_pause(&pod.pause_config()).await.unwrap();
    let (pid, _b) = run(&pod, "c1", "sleep 1000", pause, Opts::default()).await;
    let run_dir = pod.run_dir();
    let monitor_fds = fd_count(pod.monitor_pid);

    // stdin to cat, its echo back, EOF ends it.
    let mut s = exec_stream(
        &run_dir,
        &ExecStreamRequest {
            stdin: true,
            stdout: true,
            ..exec_req(&["cat"])
        },
    )
    .await
    .expect("exec cat");
    assert!(s.stderr.is_none() && s.pty.is_none());
    let mut stdin = s.stdin.take().unwrap();
    write(&mut stdin, b"hello\n").await;
    stdin.shutdown().await.unwrap();
    let out = read_to_end(s.stdout.as_mut().unwrap()).await;
    assert_eq!(out, b"hello\n");
    assert_eq!(wait(&mut s).await, 0);
    assert_eq!(wait(&mut s).await, 0, "wait again");

    // Exit codes: plain, killed from inside, killed from outside by pid.
    let mut s = exec_stream(&run_dir, &exec_req(&["sh", "-c", "exit 3"]))
        .await
        .unwrap();
    assert!(s.stdin.is_none() && s.stdout.is_none());
    assert_eq!(wait(&mut s).await, 3);
    let mut s = exec_stream(&run_dir, &exec_req(&["sh", "-c", "kill -9 $$"]))
        .await
        .unwrap();
    assert_eq!(wait(&mut s).await, 137);
    let mut s = exec_stream(&run_dir, &exec_req(&["sleep", "100"]))
        .await
        .unwrap();
    // SAFETY: kill(2) on the exec process this test started.
    assert_eq!(unsafe { libc::kill(s.pid, libc::SIGTERM) }, 0);
    assert_eq!(wait(&mut s).await, 128 + libc::SIGTERM);

    // stdout and stderr apart; extra env; the container's namespaces.
    let script = "echo out $FOO; echo err >&2; hostname; \
                  for n in pid mnt uts; do readlink /proc/self/ns/$n; done";
    let mut s = exec_stream(
        &run_dir,
        &ExecStreamRequest {
            env: Some(vec!["FOO=bar".into()]),
            stdout: true,
            stderr: true,
            ..exec_req(&["sh", "-c", script])
        },
    )
    .await
    .unwrap();
    let (mut out, mut err) = (s.stdout.take().unwrap(), s.stderr.take().unwrap());
    let (out, err) = tokio::join!(read_to_end(&mut out), read_to_end(&mut err));
    let p = pid.to_string();
    let want = format!(
        "out bar\npod-host\n{}\n{}\n{}\n",
        ns(&p, "pid"),
        ns(&p, "mnt"),
        ns(&p, "uts")
    );
    assert_eq!(String::from_utf8_lossy(&out), want);
    assert_ne!(ns(&p, "mnt"), ns("self", "mnt"));
    assert_eq!(err, b"err\n");
    assert_eq!(wait(&mut s).await, 0);

    // Errors: no such container, no command.
    let err = exec_stream(
        &run_dir,
        &ExecStreamRequest {
            id: "nope".into(),
            ..exec_req(&["true"])
        },
    )
    .await
    .expect_err("unknown container");
    assert!(err.to_string().contains("nope"), "{err}");
    assert!(exec_stream(&run_dir, &exec_req(&[])).await.is_err());

    // berthd's side goes early: the process runs on, then is reaped.
    let s = exec_stream(&run_dir, &exec_req(&["sleep", "1"]))
        .await
        .unwrap();
    let sleeper = s.pid;
    drop(s);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stat = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap();
    assert!(
        !stat.contains(") Z "),
        "still running, not a zombie: {stat}"
    );
    let s = exec_stream(
        &run_dir,
        &ExecStreamRequest {
            stdin: true,
            stdout: true,
            ..exec_req(&["cat"])
        },
    )
    .await
    .unwrap();
    let cat = s.pid;
    drop(s); // cat reads EOF
    wait_gone(cat);
    wait_gone(sleeper);
    let (_, list) = pod.client().list().await.expect("monitor serves");
    assert_eq!(list.len(), 1);
    assert_eq!(
        fd_count(pod.monitor_pid),
        monitor_fds,
        "the monitor kept no fd"
    );
    pod.shutdown_and_check(&[pause, pid]).await;
}

#[tokio::test]
async fn exec_stream_tty_and_resize() {
    let mut pod = Pod::spawn("mon-st").await;
    let pause = pod.client().start_pause(&pod.pause_config()).await.unwrap();
    let (pid, _b) = run(&pod, "c1", "sleep 1000", pause, Opts::default()).await;
    let mut s = exec_stream(
        &pod.run_dir(),
        &ExecStreamRequest {
            tty: true,
            stdin: true,
            stdout: true,
            ..exec_req(&["sh", "-c", "tty; read x; stty size; exit 5"])
        },
    )
    .await
    .expect("exec tty");
    assert!(s.stdin.is_none() && s.stdout.is_none() && s.stderr.is_none());
    let pty = s.pty.take().expect("pty");
    let resizer = pty.resizer();
    let (mut rd, mut wr) = tokio::io::split(pty);
    let mut acc = Vec::new();
    read_until(&mut rd, &mut acc, "/dev/pts/").await;
    read_until(&mut rd, &mut acc, "\n").await;
    resizer.resize(100, 30).expect("resize");
    write(&mut wr, b"go\n").await;
    read_until(&mut rd, &mut acc, "30 100").await;
    let rest = read_to_end(&mut rd).await;
    assert!(
        !String::from_utf8_lossy(&rest).contains("/dev/pts"),
        "{rest:?}"
    );
    assert_eq!(wait(&mut s).await, 5);
    // A shutdown kills a running exec; its session gets the code.
    let mut s = exec_stream(&pod.run_dir(), &exec_req(&["sleep", "1000"]))
        .await
        .unwrap();
    pod.shutdown_and_check(&[pause, pid, s.pid]).await;
    assert_eq!(wait(&mut s).await, 137);
}

#[tokio::test]
async fn attach_fans_out_forwards_stdin_and_ends_at_exit() {
    let mut pod = Pod::spawn("mon-sa").await;
    let pause = pod.client().start_pause(&pod.pause_config()).await.unwrap();
    let run_dir = pod.run_dir();
    let once = Opts {
        stdin: true,
        stdin_once: true,
        ..Default::default()
    };
    let (pid, _b) = run(&pod, "c1", "cat; echo bye >&2", pause, once).await;
    let both = AttachRequest {
        id: "c1".into(),
        stdin: true,
        stdout: true,
        stderr: true,
    };
    let mut a = attach(&run_dir, &both).await.expect("attach a");
    let only_out = AttachRequest {
        stdin: false,
        stderr: false,
        ..both.clone()
    };
    let mut b = attach(&run_dir, &only_out).await.expect("attach b");
    assert!(!a.tty && a.stdin.is_some() && a.stderr.is_some());
    assert!(b.stdin.is_none() && b.stderr.is_none());
    assert!(a.resize(80, 24).is_err(), "no terminal");
    write(a.stdin.as_mut().unwrap(), b"one\n").await;
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    read_until(a.stdout.as_mut().unwrap(), &mut got_a, "one\n").await;
    read_until(b.stdout.as_mut().unwrap(), &mut got_b, "one\n").await;
    // The first attach with stdin ends: stdin_once closes the container's
    // stdin, cat ends; b sees the rest, EOF and the exit.
    drop(a);
    let rest = read_to_end(b.stdout.as_mut().unwrap()).await;
    assert!(rest.is_empty(), "{rest:?}");
    wait_exit(&mut b).await.expect("exit seen");
    assert_eq!(b.exit_code(), Some(0));
    let (out, errs) = parse_cri_log(&std::fs::read(pod.log_path("c1")).unwrap());
    assert_eq!(out, [('F', b"one".to_vec())]);
    assert_eq!(errs, [('F', b"bye".to_vec())]);
    let e = attach(&run_dir, &only_out).await.expect_err("exited");
    assert!(e.to_string().contains("is exited: cannot attach"), "{e}");

    // Without stdin_once the stdin outlives an attach; a kill ends the others.
    let keep = Opts {
        stdin: true,
        ..Default::default()
    };
    let (pid2, _b2) = run(&pod, "c2", "cat", pause, keep).await;
    let c2 = AttachRequest {
        id: "c2".into(),
        ..both.clone()
    };
    let mut a = attach(&run_dir, &c2).await.unwrap();
    write(a.stdin.as_mut().unwrap(), b"first\n").await;
    let mut acc = Vec::new();
    read_until(a.stdout.as_mut().unwrap(), &mut acc, "first\n").await;
    drop(a);
    let mut b = attach(&run_dir, &c2).await.unwrap();
    let mut stdin = b.stdin.take().expect("stdin still open");
    write(&mut stdin, b"second\n").await;
    stdin.shutdown().await.unwrap(); // EOF of this attach's stdin only
    let mut acc = Vec::new();
    read_until(b.stdout.as_mut().unwrap(), &mut acc, "second\n").await;
    assert_eq!(acc, b"second\n");
    pod.client().kill("c2", libc::SIGKILL, false).await.unwrap();
    assert!(read_to_end(b.stdout.as_mut().unwrap()).await.is_empty());
    wait_exit(&mut b).await.expect("exit seen");
    assert_eq!(b.exit_code(), Some(137));
    let e = attach(
        &run_dir,
        &AttachRequest {
            id: "zz".into(),
            ..c2
        },
    )
    .await
    .expect_err("unknown");
    assert!(e.to_string().contains("zz"), "{e}");
    pod.shutdown_and_check(&[pause, pid, pid2]).await;
}

#[tokio::test]
async fn attach_to_a_tty_container_with_resize() {
    let mut pod = Pod::spawn("mon-sat").await;
    let pause = pod.client().start_pause(&pod.pause_config()).await.unwrap();
    let tty = Opts {
        stdin: true,
        tty: true,
        ..Default::default()
    };
    let script = "while read l; do echo got-$l; stty size; done; echo done";
    let (pid, _b) = run(&pod, "t1", script, pause, tty).await;
    let req = AttachRequest {
        id: "t1".into(),
        stdin: true,
        stdout: true,
        stderr: true,
    };
    let mut a = attach(&pod.run_dir(), &req).await.expect("attach");
    assert!(a.tty && a.stderr.is_none() && a.stdin.is_some());
    a.resize(120, 40).expect("resize");
    write(a.stdin.as_mut().unwrap(), b"x\n").await;
    let mut acc = Vec::new();
    read_until(a.stdout.as_mut().unwrap(), &mut acc, "40 120").await;
    assert!(String::from_utf8_lossy(&acc).contains("got-x"), "{acc:?}");
    a.resize(90, 20).unwrap();
    write(a.stdin.as_mut().unwrap(), b"y\n").await;
    read_until(a.stdout.as_mut().unwrap(), &mut acc, "20 90").await;
    // ^D at the start of a line: the shell's read sees EOF.
    write(a.stdin.as_mut().unwrap(), b"\x04").await;
    read_until(a.stdout.as_mut().unwrap(), &mut acc, "done").await;
    wait_exit(&mut a).await.expect("exit seen");
    assert_eq!(a.exit_code(), Some(0));
    let (out, _) = parse_cri_log(&std::fs::read(pod.log_path("t1")).unwrap());
    // The terminal echoes input as it comes, so where "y" lands among the
    // output lines depends on timing: look for the text, not a whole line.
    let logged: Vec<u8> = out.iter().flat_map(|(_, l)| l.clone()).collect();
    let logged = String::from_utf8_lossy(&logged);
    assert!(
        logged.contains("40 120") && logged.contains("20 90"),
        "{out:?}"
    );
    pod.shutdown_and_check(&[pause, pid]).await;
}

#[tokio::test]
async fn an_attacher_that_never_reads_is_dropped_and_the_log_is_complete() {
    let mut pod = Pod::spawn("mon-sslow").await;
    let pause = pod.client().start_pause(&pod.pause_config()).await.unwrap();
    // ~6.9 MB in a million lines (not `yes | head`: containers inherit the
    // monitor's ignored SIGPIPE, so `yes` would never end).
    let lines = 1_000_000;
    let script = format!("read go; seq 1 {lines}; echo end");
    let opts = Opts {
        stdin: true,
        ..Default::default()
    };
    let (pid, _b) = run(&pod, "c1", &script, pause, opts).await;
    let mut events = pod.client().subscribe();
    let req = AttachRequest {
        id: "c1".into(),
        stdin: true,
        stdout: true,
        stderr: false,
    };
    let mut slow = attach(&pod.run_dir(), &req).await.expect("attach");
    write(slow.stdin.as_mut().unwrap(), b"go\n").await;
    // Never read stdout: the monitor drops this client, keeps logging and
    // answering requests.
    let e = wait_exit(&mut slow).await.expect_err("dropped");
    assert!(e.contains("fast enough"), "{e}");
    pod.client().list().await.expect("monitor serves");
    let exited = monitor_common::next_event(&mut events).await;
    assert!(
        matches!(
            exited,
            berth_agent::monitor::protocol::Event::Exited { exit_code: 0, .. }
        ),
        "{exited:?}"
    );
    let (out, _) = parse_cri_log(&std::fs::read(pod.log_path("c1")).unwrap());
    assert_eq!(out.len(), lines + 1);
    assert_eq!(out[lines], ('F', b"end".to_vec()));
    let whole: Vec<u8> = (1..=lines)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    let logged: Vec<u8> = out[..lines]
        .iter()
        .flat_map(|(t, l)| {
            assert_eq!(*t, 'F');
            [&l[..], b"\n"].concat()
        })
        .collect();
    assert!(logged == whole, "the log has every line in order");
    // What reached the pipe before the drop is a prefix of the output.
    let got = read_to_end(slow.stdout.as_mut().unwrap()).await;
    assert!(!got.is_empty() && got.len() < whole.len(), "{}", got.len());
    assert!(whole.starts_with(&got), "a prefix");
    pod.shutdown_and_check(&[pause, pid]).await;
}
