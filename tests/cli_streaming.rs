//! The `berth` CLI's streaming commands against a private berthd, run as a
//! user would run them: `exec -i` with piped stdin and the remote exit code
//! (and the ExecSync path by pod and container name), `exec -it` on a pty
//! (raw mode, the window size and a resize, the terminal restored),
//! `attach` to a container's output until it exits and `attach -i`
//! detaching at the end of stdin, and `port-forward` to httpd in a pod
//! (concurrent connections, a refused port that does not end the others,
//! SIGINT leaving nothing behind).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_proto::v1 as cri;
use berth_tests::daemon::{pod_config, sh_container, Berthd};
use berth_tests::{binary, need_root};
use nix::sys::termios::{self, LocalFlags};

/// A generous bound for anything a test waits on.
const PATIENCE: Duration = Duration::from_secs(30);

/// `berth` pointed at `d`.
fn berth(d: &Berthd, args: &[&str]) -> Command {
    let mut cmd = Command::new(binary("berth"));
    cmd.arg("--socket")
        .arg(d.state().parent().expect("dir").join("berth.sock"))
        .arg("--state")
        .arg(d.state())
        .arg("--root")
        .arg(d.root())
        .args(args);
    cmd
}

/// Runs `berth ARGS` with `input` on its stdin to the end.
fn run_with_input(d: &Berthd, args: &[&str], input: &[u8]) -> Output {
    let mut child = berth(d, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    let cli = Cli(Some(child));
    cli.output()
}

/// A running `berth`, killed (and reaped) if the test ends without it.
struct Cli(Option<Child>);

impl Cli {
    fn spawn(cmd: &mut Command) -> Cli {
        Cli(Some(cmd.spawn().expect("spawn berth")))
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child")
    }

    /// Waits (bounded) for it to exit.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child().try_wait().expect("wait") {
                self.0 = None;
                return status;
            }
            assert!(Instant::now() < deadline, "berth did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for it to exit; its output.
    fn output(mut self) -> Output {
        let mut child = self.0.take().expect("child");
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        std::thread::spawn(move || {
            let read = |s: Option<Box<dyn Read + Send>>| {
                let mut out = Vec::new();
                if let Some(mut s) = s {
                    let _ = s.read_to_end(&mut out);
                }
                out
            };
            let out = std::thread::spawn(move || read(stdout.map(|s| Box::new(s) as _)));
            let err = read(stderr.map(|s| Box::new(s) as _));
            let status = child.wait().expect("wait");
            let _ = tx.send(Output {
                status,
                stdout: out.join().unwrap_or_default(),
                stderr: err,
            });
        });
        rx.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("berth did not exit")
        })
    }

    fn signal(&mut self, sig: i32) {
        // SAFETY: kill(2) on our own, not yet reaped, child's pid.
        unsafe { libc::kill(self.child().id() as i32, sig) };
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What a reader thread has collected from a stream so far.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<String>>);

impl Collected {
    /// Collects `r` on a thread until it ends.
    fn start(mut r: impl Read + Send + 'static) -> Collected {
        let c = Collected::default();
        let text = Arc::clone(&c.0);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let chunk = String::from_utf8_lossy(&buf[..n]).into_owned();
                text.lock().unwrap().push_str(&chunk);
            }
        });
        c
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Waits (bounded) until the text matches; the text.
    fn wait_for(&self, what: &str, found: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let t = self.text();
            if found(&t) {
                return t;
            }
            assert!(Instant::now() < deadline, "no {what} in {t:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_passes_stdin_and_the_exit_code() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let (pod, id) = d
        .pod_with("cli-exec", sh_container("main", "sleep 3600"))
        .await;

    let o = run_with_input(&d, &["exec", "-i", &id, "--", "cat"], b"hello\nworld\n");
    assert!(o.status.success(), "{o:?}");
    assert_eq!(text(&o.stdout), "hello\nworld\n");

    // By pod sandbox id and container name; stdout and stderr apart.
    let script = "cat; echo err >&2; exit 4";
    let o = run_with_input(
        &d,
        &["exec", "-i", "-c", "main", &pod, "--", "sh", "-c", script],
        b"in\n",
    );
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert_eq!(text(&o.stdout), "in\n");
    assert_eq!(text(&o.stderr), "err\n");

    // -it with a pipe for stdin: kubectl's warning, then no terminal.
    let o = run_with_input(
        &d,
        &["exec", "-it", &id, "--", "sh", "-c", "cat; tty"],
        b"x\n",
    );
    assert_eq!(o.status.code(), Some(1), "tty(1) fails without one: {o:?}");
    assert!(text(&o.stdout).starts_with("x\nnot a tty"), "{o:?}");
    assert!(
        text(&o.stderr).contains("Unable to use a TTY - input is not a terminal"),
        "{o:?}"
    );

    // Without -i/-t: ExecSync, by pod and container name too.
    let o = run_with_input(
        &d,
        &["exec", &pod, "-c", "main", "--", "sh", "-c", "exit 4"],
        b"",
    );
    assert_eq!(o.status.code(), Some(4), "{o:?}");

    // What cannot be found is named.
    let o = run_with_input(&d, &["exec", "-i", "nosuch", "--", "true"], b"");
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("\"nosuch\""), "{o:?}");
    let o = run_with_input(&d, &["exec", "-i", "-c", "other", &pod, "--", "true"], b"");
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("\"other\""), "{o:?}");
    d.shutdown().await;
}

/// Sets the window size of the pty whose master is `fd`.
fn set_size(fd: &OwnedFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a live local; the fd is ours.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(rc, 0, "TIOCSWINSZ");
}

/// Reads the (non-blocking) pty master into `seen` until it contains
/// `needle`, writing `ask` now and again (for what races the remote side).
fn pty_until(master: &mut std::fs::File, seen: &mut String, needle: &str, ask: Option<&[u8]>) {
    let deadline = Instant::now() + PATIENCE;
    let mut next_ask = Instant::now();
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        assert!(Instant::now() < deadline, "no {needle:?} in {seen:?}");
        if let Some(bytes) = ask.filter(|_| Instant::now() >= next_ask) {
            master.write_all(bytes).expect("write the pty");
            next_ask = Instant::now() + Duration::from_millis(500);
        }
        match master.read(&mut buf) {
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("read the pty: {e}; seen {seen:?}"),
        }
    }
}

/// Waits (bounded) until berth has put the pty (`slave`) in raw mode.
fn wait_raw(slave: &OwnedFd) {
    let deadline = Instant::now() + PATIENCE;
    while termios::tcgetattr(slave.as_fd())
        .expect("tcgetattr")
        .local_flags
        .contains(LocalFlags::ICANON)
    {
        assert!(
            Instant::now() < deadline,
            "berth never made the terminal raw"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_tty_runs_on_a_raw_terminal_and_follows_its_size() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let (_pod, id) = d
        .pod_with("cli-tty", sh_container("main", "sleep 3600"))
        .await;
    let size = nix::pty::Winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
    let before = termios::tcgetattr(pty.slave.as_fd()).expect("tcgetattr");
    let slave = |p: &nix::pty::OpenptyResult| Stdio::from(p.slave.try_clone().expect("dup"));
    let mut cli = Cli::spawn(
        berth(&d, &["exec", "-it", &id, "--", "sh"])
            .stdin(slave(&pty))
            .stdout(slave(&pty))
            .stderr(slave(&pty)),
    );
    let master = pty.master.try_clone().expect("dup");
    let flags = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_GETFL).expect("flags");
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(flags)).expect("nonblock");
    let mut master = std::fs::File::from(master);

    // berth puts its terminal in raw mode before it streams.
    wait_raw(&pty.slave);
    let mut seen = String::new();
    pty_until(&mut master, &mut seen, "30 100", Some(b"stty size\n"));
    // A resize: the new size reaches the remote terminal on SIGWINCH.
    set_size(&pty.master, 40, 120);
    cli.signal(libc::SIGWINCH);
    pty_until(&mut master, &mut seen, "40 120", Some(b"stty size\n"));
    master.write_all(b"stty size; exit 3\n").expect("write");
    assert_eq!(cli.wait().code(), Some(3), "{seen:?}");
    // The terminal is as berth found it.
    let after = termios::tcgetattr(pty.slave.as_fd()).expect("tcgetattr");
    assert_eq!(after.local_flags, before.local_flags);
    assert_eq!(after.input_flags, before.input_flags);
    assert_eq!(after.output_flags, before.output_flags);

    // Ended by a signal while raw: 128 + SIGTERM, the terminal restored.
    let mut cli = Cli::spawn(
        berth(&d, &["exec", "-it", &id, "--", "sh"])
            .stdin(slave(&pty))
            .stdout(slave(&pty))
            .stderr(slave(&pty)),
    );
    wait_raw(&pty.slave);
    cli.signal(libc::SIGTERM);
    assert_eq!(cli.wait().code(), Some(128 + libc::SIGTERM));
    let after = termios::tcgetattr(pty.slave.as_fd()).expect("tcgetattr");
    assert_eq!(after.local_flags, before.local_flags);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_shows_output_until_exit_and_detaches_at_end_of_stdin() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let sandbox = pod_config("cli-attach");
    let pod = d.run_pod(&sandbox).await;
    let script = "i=0; while [ ! -e /tmp/stop ]; do echo line $i; i=$((i+1)); sleep 0.1; done; \
                  echo bye; echo gone >&2; exit 6";
    let ticker = d
        .start_container(&pod, &sandbox, sh_container("ticker", script))
        .await;
    let mut cli = Cli::spawn(
        berth(&d, &["attach", &ticker])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let out = Collected::start(cli.child().stdout.take().expect("stdout"));
    let err = Collected::start(cli.child().stderr.take().expect("stderr"));
    out.wait_for("a line", |t| t.contains("line "));
    let (code, _, e) = d.sh(&ticker, "touch /tmp/stop").await;
    assert_eq!(code, 0, "{e}");
    assert_eq!(cli.wait().code(), Some(6), "the container's exit code");
    out.wait_for("bye", |t| t.ends_with("bye\n"));
    err.wait_for("stderr", |t| t.contains("gone\n"));

    // -i: the container reads berth's stdin; at its end berth detaches and
    // the container runs on.
    let mut cat = sh_container("cat", "cat");
    cat.stdin = true;
    let cat = d.start_container(&pod, &sandbox, cat).await;
    let mut cli = Cli::spawn(
        berth(&d, &["attach", "-i", "-c", "cat", &pod])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    let out = Collected::start(cli.child().stdout.take().expect("stdout"));
    let mut stdin = cli.child().stdin.take().expect("stdin");
    // The attach may not be connected yet: repeat until the echo comes.
    let deadline = Instant::now() + PATIENCE;
    while !out.text().contains("ping\n") {
        assert!(Instant::now() < deadline, "no echo: {:?}", out.text());
        stdin.write_all(b"ping\n").expect("write");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(stdin);
    assert!(cli.wait().success(), "detached");
    let status = d.status(&cat).await;
    assert_eq!(status.state, cri::ContainerState::ContainerRunning as i32);

    // An exited container cannot be attached to.
    let o = berth(&d, &["attach", &ticker]).output().expect("run berth");
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("not running"), "{o:?}");
    d.shutdown().await;
}

/// Fetches `/index.html` from 127.0.0.1:`port`; the response.
fn fetch(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
        .expect("send request");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read response");
    text(&out)
}

/// The local port of `Forwarding from 127.0.0.1:P -> remote` in `out`.
fn forwarded_port(out: &str, remote: u16) -> Option<u16> {
    out.lines().find_map(|l| {
        l.strip_prefix("Forwarding from 127.0.0.1:")?
            .strip_suffix(&format!(" -> {remote}"))?
            .parse()
            .ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_reaches_httpd_in_the_pod() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let (pod, _id) = d.web_pod("cli-web").await;
    let before = d.open_fds();

    // 8081: nothing listens there.
    let mut cli = Cli::spawn(
        berth(&d, &["port-forward", &pod, ":8080", ":8081"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let out = Collected::start(cli.child().stdout.take().expect("stdout"));
    let err = Collected::start(cli.child().stderr.take().expect("stderr"));
    let lines = out.wait_for("both ports", |t| {
        forwarded_port(t, 8080).is_some() && forwarded_port(t, 8081).is_some()
    });
    let web = forwarded_port(&lines, 8080).expect("port");
    let refused = forwarded_port(&lines, 8081).expect("port");

    let fetches: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || fetch(web)))
        .collect();
    for f in fetches {
        let reply = f.join().expect("fetch");
        assert!(reply.contains("hello from the pod"), "{reply:?}");
    }
    // The refused connection is closed and reported; the others go on.
    let reply = fetch(refused);
    assert!(reply.is_empty(), "{reply:?}");
    err.wait_for("the dial error", |t| {
        t.contains(&format!("forwarding {refused} -> 8081")) && t.contains("8081")
    });
    assert!(fetch(web).contains("hello from the pod"));
    assert!(out
        .text()
        .contains(&format!("Handling connection for {web}")));

    // SIGINT ends it cleanly: the listener is gone, berthd keeps nothing.
    cli.signal(libc::SIGINT);
    assert!(cli.wait().success(), "stderr: {}", err.text());
    assert!(
        TcpStream::connect(("127.0.0.1", web)).is_err(),
        "still listening"
    );
    let deadline = Instant::now() + PATIENCE;
    while d.open_fds() > before {
        assert!(
            Instant::now() < deadline,
            "berthd fds: {before} before, {} after",
            d.open_fds()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.shutdown().await;
}
