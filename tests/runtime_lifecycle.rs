//! berth-runtime's verbs end to end: run, create/start/state/kill/delete,
//! exec, ps, list, signals, terminals and hooks.

use std::{
    io::Read,
    os::{fd::AsRawFd, unix::net::UnixListener},
    time::Duration,
};

use berth_tests::*;
use oci_spec::runtime::{HookBuilder, HooksBuilder};

#[test]
fn run_reports_exit_codes_and_cleans_up() {
    if need_root() {
        return;
    }
    let rt = Runtime::new();
    let b = sh_bundle("echo out; echo err >&2; exit 3");
    let (code, out, err) = rt.run(&unique_id("exit"), &b);
    assert_eq!(code, 3, "stderr: {err}");
    assert_eq!(out, "out\n");
    assert!(err.contains("err"));
    // The init (pid 1 of its namespace) can't be SIGKILLed from inside: a child can.
    let b = sh_bundle("sh -c 'kill -9 $$'; exit $?");
    let (code, _, _) = rt.run(&unique_id("sig"), &b);
    assert_eq!(code, 137);
    assert!(rt.ok(&["list", "-q"]).trim().is_empty(), "run must delete");
}

#[test]
fn create_then_start_then_kill_then_delete() {
    if need_root() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::temp(&["sleep", "1000"]).unwrap();
    let id = unique_id("life");
    let pidfile = b.dir().join("pid");
    rt.ok(&[
        "create",
        "--bundle",
        b.dir().to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ]);
    let c = Container::new(&rt, &id);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.dir().to_str().unwrap());
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, c.pid);
    // The init waits for start: it has not exec'd sleep yet.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");

    rt.ok(&["start", &id]);
    assert_eq!(rt.state(&id)["status"], "running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    let again = rt.cmd(&["start", &id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("running"));

    let list = rt.ok(&["list", "--format", "json"]);
    assert!(list.contains(&id));
    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(pids, vec![pid]);

    let del = rt.cmd(&["delete", &id]);
    assert!(
        !del.status.success(),
        "delete of a running container needs --force"
    );
    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    assert_eq!(rt.state(&id)["pid"], 0);
    let k = rt.cmd(&["kill", &id, "TERM"]);
    assert!(!k.status.success(), "kill of a stopped container fails");
    rt.ok(&["delete", &id]);
    drop(c); // checks that nothing is left
}

#[test]
fn exec_joins_the_container() {
    if need_root() {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::temp(&["sleep", "1000"]).unwrap();
    edit(&mut b, |b| {
        b.spec_mut().set_hostname(Some("exec-host".into()));
    });
    let id = unique_id("exec");
    let c = rt.start(&id, &b);
    let (code, out) = c.exec(&["hostname"]);
    assert_eq!((code, out.trim()), (0, "exec-host"));
    let (code, _) = c.exec(&["sh", "-c", "exit 7"]);
    assert_eq!(code, 7);
    let (code, out) = c.exec(&["sh", "-c", "echo $$"]);
    assert_eq!(code, 0);
    assert_ne!(
        out.trim(),
        "1",
        "exec gets its own pid in the container's pid ns"
    );

    // A detached exec: compare its namespaces and cgroup with the init's.
    let pidfile = b.dir().join("exec.pid");
    rt.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
        "sleep",
        "100",
    ]);
    let epid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for ns in ["mnt", "net", "ipc", "uts", "pid", "cgroup"] {
        let a = std::fs::read_link(format!("/proc/{}/ns/{ns}", c.pid)).unwrap();
        let e = std::fs::read_link(format!("/proc/{epid}/ns/{ns}")).unwrap();
        assert_eq!(a, e, "{ns} namespace of exec differs from init's");
    }
    let cg_init = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid)).unwrap();
    let cg_exec = std::fs::read_to_string(format!("/proc/{epid}/cgroup")).unwrap();
    assert_eq!(cg_init, cg_exec);
    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(pids.contains(&epid) && pids.contains(&c.pid), "{pids:?}");
    // SAFETY: reap nothing; the detached exec is reparented; delete kills it.
    drop(c);
    assert!(
        !std::path::Path::new(&format!("/proc/{epid}/status")).exists()
            || std::fs::read_to_string(format!("/proc/{epid}/status"))
                .unwrap()
                .contains("zombie")
    );
}

#[test]
fn signals_reach_the_init_and_run_returns_its_code() {
    if need_root() {
        return;
    }
    let rt = Runtime::new();
    let b = sh_bundle("trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done");
    let id = unique_id("sig");
    let mut child = rt
        .command(&["run", "--bundle", b.dir().to_str().unwrap(), &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    stdout.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    rt.ok(&["kill", &id, "TERM"]);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(42));
}

#[test]
fn kill_all_reaches_every_process() {
    if need_root() {
        return;
    }
    let rt = Runtime::new();
    let b = sh_bundle("sleep 1000 & sleep 1000 & wait");
    let id = unique_id("killall");
    let c = rt.start(&id, &b);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let pids: Vec<i32> =
            serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
        if pids.len() == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "children never started: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    rt.ok(&["kill", "--all", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    drop(c);
}

#[test]
fn terminal_goes_to_the_console_socket() {
    if need_root() {
        return;
    }
    let rt = Runtime::new();
    let mut b = sh_bundle("tty; echo hello-tty");
    edit(&mut b, |b| {
        process_mut(b).set_terminal(Some(true));
    });
    let sock_path = b.dir().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let id = unique_id("tty");
    let b_dir = b.dir().to_str().unwrap().to_string();
    let sock = sock_path.to_str().unwrap().to_string();
    let out = rt.cmd(&["create", "--bundle", &b_dir, "--console-socket", &sock, &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = Container::new(&rt, &id);
    let (conn, _) = listener.accept().unwrap();
    let master = recv_fd(conn.as_raw_fd());
    rt.ok(&["start", &id]);
    let mut f = std::fs::File::from(master);
    let mut text = String::new();
    let mut buf = [0u8; 256];
    while !text.contains("hello-tty") {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(
        text.contains("/dev/pts/0"),
        "the process has a pty: {text:?}"
    );
    assert!(text.contains("hello-tty"), "{text:?}");
    drop(c);
}

fn recv_fd(sock: i32) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::empty()).unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the fd was just received and is ours.
            return unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received on the console socket");
}

#[test]
fn hooks_run_with_state_at_their_points() {
    if need_root() {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::temp(&["sleep", "1000"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hook = |name: &str| {
        let out = dir.path().join(name);
        HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "sh".into(),
                "-c".into(),
                format!("cat > {}", out.display()),
            ])
            .build()
            .unwrap()
    };
    let hooks = HooksBuilder::default()
        .prestart(vec![hook("prestart")])
        .create_runtime(vec![hook("createRuntime")])
        .poststart(vec![hook("poststart")])
        .poststop(vec![hook("poststop")])
        .build()
        .unwrap();
    edit(&mut b, |b| {
        b.spec_mut().set_hooks(Some(hooks));
    });
    let id = unique_id("hooks");
    rt.ok(&["create", "--bundle", b.dir().to_str().unwrap(), &id]);
    let c = Container::new(&rt, &id);
    let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap_or_default();
    let pre: serde_json::Value = serde_json::from_str(&read("createRuntime")).unwrap();
    assert_eq!(pre["id"], id.as_str());
    assert_eq!(pre["pid"], c.pid);
    assert!(!read("prestart").is_empty());
    assert!(
        read("poststart").is_empty(),
        "poststart runs only after start"
    );
    rt.ok(&["start", &id]);
    let post: serde_json::Value = serde_json::from_str(&read("poststart")).unwrap();
    assert_eq!(post["status"], "running");
    assert!(read("poststop").is_empty());
    drop(c);
    assert!(!read("poststop").is_empty(), "poststop runs on delete");
}
