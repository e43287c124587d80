//! The container's init, from `clone3` to `execve`: joins and creates the
//! namespaces, sets hostname and sysctls, builds the rootfs, sets up the
//! terminal, reports ready, then blocks on the exec fifo until `start`.
//! Everything it does before "ready" is reported back to `create`, so a failed
//! create is a clear error there; after "ready" errors go to its stderr.

use std::{
    ffi::CString,
    fs::File,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    path::PathBuf,
};

use nix::sched::CloneFlags;
use oci_spec::runtime::Spec;

use crate::{
    cgroups::SelfJoin,
    console,
    error::{Error, Result},
    hooks, namespaces,
    process::{exec::Execve, finish::Finish, rlimits, user},
    rootfs::{self, RootfsOptions},
    seccomp,
    state::EXEC_FIFO,
    sync::{Msg, SyncSocket},
};

/// Everything the init needs, prepared by `create` before the clone.
pub struct InitArgs<'a> {
    /// The container spec.
    pub spec: &'a Spec,
    /// Whether the clone made a new user namespace.
    pub new_user_ns: bool,
    /// Joined namespaces, opened by the parent, in entering order.
    pub joins: Vec<(CloneFlags, File)>,
    /// New namespaces to unshare after joining.
    pub unshare: CloneFlags,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// The container's state directory (holds the exec fifo).
    pub state_dir: PathBuf,
    /// Compiled seccomp filter.
    pub seccomp: Option<seccomp::Program>,
    /// On cgroup v1: the init enters its cgroup itself, first thing.
    pub cgroup_join: Option<SelfJoin>,
    /// runc's `--no-pivot`.
    pub no_pivot: bool,
    /// runc's `--preserve-fds`.
    pub preserve_fds: u32,
    /// Fds to install as stdin, stdout and stderr.
    pub stdio: Option<[RawFd; 3]>,
    /// The child's end of the sync channel.
    pub sync: SyncSocket,
}

/// Runs the init; returns an exit code only when it failed.
pub fn run(args: InitArgs<'_>) -> i32 {
    match setup(&args) {
        Ok(never) => match never {},
        Err(Stage::BeforeReady(e)) => {
            let _ = args.sync.send(&Msg::Failed(e.to_string()));
            1
        }
        Err(Stage::AfterReady(e)) => {
            let msg = format!("berth-runtime: container init: {e}\n");
            // SAFETY: write(2) of a buffer we own to stderr.
            unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
            127
        }
    }
}

enum Never {}

enum Stage {
    BeforeReady(Error),
    AfterReady(Error),
}

fn setup(a: &InitArgs<'_>) -> Result<Never, Stage> {
    let (state_dir, execve) = before_ready(a).map_err(Stage::BeforeReady)?;
    after_ready(a, state_dir, &execve).map_err(Stage::AfterReady)
}

type Prepared = (OwnedFd, Execve);

fn before_ready(a: &InitArgs<'_>) -> Result<Prepared> {
    let spec = a.spec;
    // Die with the parent while it still supervises setup.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    a.sync.expect(&Msg::Go(vec![]), "go")?;
    if let Some(j) = &a.cgroup_join {
        j.join().map_err(Error::Init)?;
    }
    if let Some(fds) = a.stdio {
        super::install_stdio(fds)?;
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::spec("process", "is required"))?;
    if a.new_user_ns {
        // The parent has written the id maps: become root of the new namespace.
        // SAFETY: plain id syscalls.
        unsafe {
            if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
                return Err(Error::last_os("become root in the new user namespace"));
            }
        }
    }
    for (flag, file) in &a.joins {
        namespaces::setns(file, *flag, &PathBuf::from(namespaces::proc_name(*flag)))?;
    }
    nix::sched::unshare(a.unshare).map_err(|e| Error::Sys {
        op: format!("unshare {:?}", a.unshare),
        source: e.into(),
    })?;
    if a.unshare.contains(CloneFlags::CLONE_NEWUTS) {
        if let Some(h) = spec.hostname() {
            nix::unistd::sethostname(h)
                .map_err(|e| Error::spec("hostname", format!("{h:?}: {e}")))?;
        }
        if let Some(d) = spec.domainname() {
            set_domainname(d)?;
        }
    }
    let linux = spec.linux().as_ref();
    for (k, v) in linux
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v)
            .map_err(|e| Error::spec(format!("linux.sysctl.{k}"), format!("{path}: {e}")))?;
    }
    // The parent runs the prestart and createRuntime hooks now.
    a.sync.send(&Msg::NsReady)?;
    let state_json = match a.sync.recv()? {
        Some((Msg::Go(s), _)) => s,
        _ => return Err(Error::Init("parent went away during hooks".into())),
    };
    let opts = RootfsOptions {
        in_user_ns: a.new_user_ns || a.joins.iter().any(|(f, _)| *f == CloneFlags::CLONE_NEWUSER),
        no_pivot: a.no_pivot,
    };
    rootfs::prepare(spec, &a.rootfs, &opts)?;
    if process.terminal().unwrap_or(false) {
        let (master, slave) = console::open_pty(&a.rootfs.join("dev/pts/ptmx"))?;
        if let Some(b) = process.console_size() {
            console::set_size(master.as_raw_fd(), b.height() as u16, b.width() as u16)?;
        }
        a.sync
            .send_with_fd(&Msg::PtyMaster, Some(master.as_raw_fd()))?;
        console::make_controlling(&slave)?;
    }
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().clone())
    {
        hooks::run("createContainer", &h, &state_json)?;
    }
    // The state dir stays reachable through this fd after pivot_root; the fifo
    // (mode 0622) is reopened through it, which works for any uid the init has.
    let state_dir = open_path(&a.state_dir, libc::O_PATH | libc::O_DIRECTORY)?;
    rootfs::pivot(&a.rootfs, &opts)?;
    rootfs::finalize(spec)?;
    let cwd = process.cwd();
    std::env::set_current_dir(cwd)
        .map_err(|e| Error::spec("process.cwd", format!("{}: {e}", cwd.display())))?;
    if let Some(r) = process.rlimits() {
        rlimits::apply(r)?;
    }
    if let Some(adj) = process.oom_score_adj() {
        rlimits::apply_oom_score_adj(adj)?;
    }
    let env = env_with_home(
        process.env().clone().unwrap_or_default(),
        process.user().uid(),
    );
    let execve = Execve::prepare(&process.args().clone().unwrap_or_default(), &env)?;
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
    a.sync.send(&Msg::Ready)?;
    Ok((state_dir, execve))
}

fn after_ready(a: &InitArgs<'_>, state_dir: OwnedFd, execve: &Execve) -> Result<Never> {
    wait_for_start(&state_dir)?;
    drop(state_dir);
    let spec = a.spec;
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().clone())
    {
        hooks::run("startContainer", &h, b"{}")?;
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::spec("process", "is required"))?;
    let err = Finish {
        process,
        seccomp: a.seccomp.as_ref(),
        preserve_fds: a.preserve_fds,
        setgroups_allowed: !a.new_user_ns,
        execve,
    }
    .exec();
    Err(err)
}

/// Blocks until `start` opens the fifo, then tells it we are going on.
fn wait_for_start(state_dir: &OwnedFd) -> Result<()> {
    let rel = CString::new(EXEC_FIFO).map_err(|_| Error::Init("fifo path".into()))?;
    // SAFETY: openat with a valid dir fd and C string; blocks until a reader opens.
    let fd = unsafe {
        libc::openat(
            state_dir.as_raw_fd(),
            rel.as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::last_os("open exec fifo"));
    }
    // SAFETY: openat returned a new fd that we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: one byte from a static buffer.
    if unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) } != 1 {
        return Err(Error::last_os("write exec fifo"));
    }
    Ok(())
}

fn open_path(path: &PathBuf, flags: libc::c_int) -> Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    Ok(f.into())
}

fn set_domainname(d: &str) -> Result<()> {
    // SAFETY: setdomainname reads `len` bytes from the pointer.
    if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
        return Err(Error::spec(
            "domainname",
            format!("{d:?}: {}", std::io::Error::last_os_error()),
        ));
    }
    Ok(())
}

/// Adds `HOME` from the container's /etc/passwd when the spec has none.
pub fn env_with_home(mut env: Vec<String>, uid: u32) -> Vec<String> {
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!(
            "HOME={}",
            user::home_of(uid).unwrap_or_else(|| "/".into())
        ));
    }
    env
}
