//! Real-kernel tests: a forked child sets no_new_privs, installs a compiled
//! filter and makes calls; the parent checks how it ended. Between fork and
//! `_exit` the child only makes async-signal-safe calls (no allocation: all
//! strings and programs are prepared before the fork).

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::seccomp::{compile, install, parse_profile, runtime_default, Program};

/// Exit code of a child whose filter failed to install.
const INSTALL_FAILED: i32 = 100;

/// How a child ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Exited(i32),
    Signaled(i32),
}

/// Reaps the child even if the test fails before waiting for it.
struct Child(libc::pid_t);

impl Child {
    fn wait(self) -> End {
        let pid = self.0;
        std::mem::forget(self);
        wait_for(pid)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
        wait_for(self.0);
    }
}

fn wait_for(pid: libc::pid_t) -> End {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child with a valid status pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.raw_os_error(), Some(libc::EINTR), "waitpid: {err}");
    }
    if libc::WIFEXITED(status) {
        End::Exited(libc::WEXITSTATUS(status))
    } else {
        End::Signaled(libc::WTERMSIG(status))
    }
}

/// Forks; the child sets no_new_privs, installs `program`, runs `body` and
/// exits with its result. `body` must be async-signal-safe.
fn spawn_filtered(program: &Program, body: impl FnOnce() -> i32) -> Child {
    // SAFETY: the child only makes async-signal-safe calls before `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid > 0 {
        return Child(pid);
    }
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes plain integers.
    let nnp = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    let code = if nnp != 0 || install(program).is_err() {
        INSTALL_FAILED
    } else {
        body()
    };
    // SAFETY: leaves the forked child without running the parent's destructors.
    unsafe { libc::_exit(code) }
}

fn run_filtered(program: &Program, body: impl FnOnce() -> i32) -> End {
    spawn_filtered(program, body).wait()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The errno of a failing call, or 0 when `rc` says it succeeded.
fn failure(rc: libc::c_long) -> i32 {
    if rc < 0 {
        errno()
    } else {
        0
    }
}

fn compiled(json: &str) -> Program {
    compile(&parse_profile(json).unwrap()).unwrap()
}

#[test]
fn errno_rule_makes_mkdir_fail_with_the_chosen_errno() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("blocked");
    let path = CString::new(target.as_os_str().as_encoded_bytes()).unwrap();
    let program = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":18}]}"#,
    );
    let end = run_filtered(&program, || {
        // SAFETY: a valid NUL-terminated path.
        let rc = unsafe { libc::mkdir(path.as_ptr(), 0o755) };
        failure(rc.into())
    });
    assert_eq!(end, End::Exited(libc::EXDEV));
    assert!(!target.exists());
}

#[test]
fn argument_rule_allows_personality_for_one_value_only() {
    let program = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["personality"],"action":"SCMP_ACT_ALLOW",
             "args":[{"index":0,"value":4294967295,"op":"SCMP_CMP_EQ"}]},
            {"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
    );
    let end = run_filtered(&program, || {
        // SAFETY: querying the persona changes nothing.
        let query = failure(unsafe { libc::syscall(libc::SYS_personality, 0xffff_ffffu64) });
        // SAFETY: the call is expected to be refused; were it not, it only
        // changes this child's persona.
        let set = failure(unsafe { libc::syscall(libc::SYS_personality, 0x0040000u64) });
        if query != 0 {
            return 1;
        }
        set
    });
    assert_eq!(end, End::Exited(libc::EACCES));
}

#[test]
fn default_action_applies_to_unlisted_syscalls() {
    let program = compiled(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":95,"syscalls":[
            {"names":["exit","exit_group","write","rt_sigreturn"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let end = run_filtered(&program, || {
        // SAFETY: write to an invalid fd: the kernel itself answers EBADF.
        let listed = failure(unsafe { libc::syscall(libc::SYS_write, -1, [0u8].as_ptr(), 1) });
        // SAFETY: getppid has no arguments.
        let unlisted = failure(unsafe { libc::syscall(libc::SYS_getppid) });
        if listed != libc::EBADF {
            return 1;
        }
        unlisted
    });
    assert_eq!(end, End::Exited(95));
}

#[test]
fn kill_and_trap_actions_end_the_process_with_sigsys() {
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
    ] {
        let program = compiled(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["getppid"],"action":"{action}"}}]}}"#
        ));
        let end = run_filtered(&program, || {
            // SAFETY: getppid has no arguments.
            unsafe { libc::syscall(libc::SYS_getppid) };
            0
        });
        assert_eq!(end, End::Signaled(libc::SIGSYS), "{action}");
    }
}

#[test]
fn x32_calls_are_killed_when_only_x86_64_is_listed() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let program =
        compiled(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"]}"#);
    let end = run_filtered(&program, || {
        // SAFETY: getpid through the x32 numbering; the filter kills first.
        unsafe { libc::syscall(0x4000_0000 | libc::SYS_getpid) };
        0
    });
    assert_eq!(end, End::Signaled(libc::SIGSYS));
}

#[test]
fn filter_flags_are_accepted_by_the_kernel() {
    let program = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":33}]}"#,
    );
    let end = run_filtered(&program, || {
        // SAFETY: getppid has no arguments.
        failure(unsafe { libc::syscall(libc::SYS_getppid) })
    });
    assert_eq!(end, End::Exited(libc::EDOM));
}

#[test]
fn runtime_default_runs_busybox_sh() {
    let busybox = std::path::Path::new("/bin/busybox");
    if !busybox.exists() {
        eprintln!("skipping: /bin/busybox is missing");
        return;
    }
    let program = compile(&runtime_default()).unwrap();
    let argv: Vec<CString> = [
        "busybox",
        "sh",
        "-c",
        "echo hi; cat /proc/self/status | grep -c Seccomp:.2",
    ]
    .iter()
    .map(|s| CString::new(*s).unwrap())
    .collect();
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let path = CString::new("/bin/busybox").unwrap();
    let (read_end, write_end) = pipe();
    let write_fd = write_end.as_raw_fd();
    let child = spawn_filtered(&program, || {
        // SAFETY: dup2 and execve on prepared, NUL-terminated arguments.
        unsafe {
            libc::dup2(write_fd, 1);
            libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp.as_ptr());
        }
        errno() + 1
    });
    drop(write_end);
    let mut output = String::new();
    std::fs::File::from(read_end)
        .read_to_string(&mut output)
        .unwrap();
    assert_eq!(child.wait(), End::Exited(0), "output: {output:?}");
    assert_eq!(output, "hi\n1\n");
}

#[test]
fn runtime_default_denies_unshare_mount_and_namespace_clones() {
    let program = compile(&runtime_default()).unwrap();
    let source = CString::new("none").unwrap();
    // Were mount allowed, the missing target would make it fail harmlessly.
    let target = CString::new("/nonexistent-berth-seccomp-test").unwrap();
    let fstype = CString::new("tmpfs").unwrap();
    let end = run_filtered(&program, || {
        // SAFETY: each call is expected to be refused by the filter; the
        // arguments are valid either way.
        let (unshare, mount, clone, persona) = unsafe {
            (
                failure(libc::unshare(libc::CLONE_NEWUTS).into()),
                failure(
                    libc::mount(
                        source.as_ptr(),
                        target.as_ptr(),
                        fstype.as_ptr(),
                        0,
                        std::ptr::null(),
                    )
                    .into(),
                ),
                failure(libc::syscall(
                    libc::SYS_clone,
                    // Were clone allowed, CLONE_NEWUSER with CLONE_FS fails (EINVAL).
                    (libc::CLONE_NEWUSER | libc::CLONE_FS | libc::SIGCHLD) as libc::c_ulong,
                    0,
                    0,
                    0,
                    0,
                )),
                failure(libc::syscall(libc::SYS_personality, 0x0040000u64)),
            )
        };
        let denied = [unshare, mount, clone, persona];
        let mut code = 0;
        for (bit, err) in denied.into_iter().enumerate() {
            if err != libc::EPERM {
                code |= 1 << bit;
            }
        }
        code
    });
    assert_eq!(
        end,
        End::Exited(0),
        "bits: unshare, mount, clone, personality not EPERM"
    );
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just created and are owned here alone.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}
