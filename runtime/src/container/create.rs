//! `create`: from a bundle to an init process waiting for `start`. Every step
//! that can fail is undone on error: the init is killed, the cgroup and the
//! state directory removed.

use std::{
    os::fd::{AsRawFd, OwnedFd, RawFd},
    path::PathBuf,
};

use nix::sched::CloneFlags;

use crate::{
    bundle,
    cgroups::CgroupManager,
    console,
    error::{Error, Result},
    hooks,
    namespaces::{self, NsPlan},
    process::{clone, init},
    seccomp,
    state::{self, ContainerState, StateRoot, Status, EXEC_FIFO},
    sync::{self, Msg},
    time,
};

use super::{reap, write_pid_file, PidNsForChildren};

/// runc's `create` options.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Where to write the init's pid.
    pub pid_file: Option<PathBuf>,
    /// Where to send the pty master when the process has a terminal.
    pub console_socket: Option<PathBuf>,
    /// MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Extra fds (3, 4, ...) passed to the container.
    pub preserve_fds: u32,
    /// Fds to become the init's stdin, stdout and stderr (default: ours).
    pub stdio: Option<[RawFd; 3]>,
}

/// A created container.
#[derive(Debug)]
pub struct Created {
    /// Its state as saved.
    pub state: ContainerState,
    /// The pty master, when the process has a terminal and no console socket was given.
    pub pty_master: Option<OwnedFd>,
}

/// Undoes a half-made container.
struct Rollback<'a> {
    dir: PathBuf,
    cgroup: Option<&'a CgroupManager>,
    pid: Option<i32>,
}

impl Rollback<'_> {
    fn run(&self) {
        if let Some(pid) = self.pid {
            // SAFETY: kill and reap our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reap(pid);
        }
        if let Some(cg) = self.cgroup {
            if let Err(e) = cg.destroy() {
                tracing::warn!("rollback: {e}");
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!("rollback: remove {}: {e}", self.dir.display());
        }
    }
}

/// Creates container `opts.id` under `root`. The calling thread must be the
/// only thread of the process (the init is cloned with fork semantics).
pub fn create(root: &StateRoot, opts: &CreateOptions) -> Result<Created> {
    super::verb(create_inner(root, opts))
}

fn create_inner(root: &StateRoot, opts: &CreateOptions) -> Result<Created> {
    state::validate_id(&opts.id)?;
    let b = bundle::load(&opts.bundle)?;
    let plan = NsPlan::from_spec(&b.spec)?;
    let linux = b.spec.linux().as_ref();
    let cgroup = CgroupManager::new(
        linux
            .and_then(|l| l.cgroups_path().as_ref())
            .and_then(|p| p.to_str()),
        &opts.id,
    )?;
    let seccomp = linux
        .and_then(|l| l.seccomp().as_ref())
        .map(seccomp::compile)
        .transpose()?;
    let dir = root.claim(&opts.id)?;
    let mut rb = Rollback {
        dir: dir.clone(),
        cgroup: None,
        pid: None,
    };
    let res = create_in(root, opts, &b, &plan, &cgroup, seccomp, &mut rb);
    if res.is_err() {
        rb.run();
    }
    res
}

fn create_in<'a>(
    root: &StateRoot,
    opts: &CreateOptions,
    b: &bundle::Bundle,
    plan: &NsPlan,
    cgroup: &'a CgroupManager,
    seccomp: Option<seccomp::Program>,
    rb: &mut Rollback<'a>,
) -> Result<Created> {
    let spec = &b.spec;
    let linux = spec.linux().as_ref();
    cgroup.create()?;
    rb.cgroup = Some(cgroup);
    if let Some(r) = linux.and_then(|l| l.resources().as_ref()) {
        cgroup.apply(r)?;
    }
    let fifo = rb.dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(|e| Error::io("mkfifo", &fifo, e.into()))?;
    // Writable by any uid the init may run as (the umask took bits away).
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .map_err(|e| Error::io("chmod", &fifo, e))?;
    let (parent, child) = sync::pair()?;
    let joins = plan.open_joins()?;
    let new_user_ns = plan.is_new(CloneFlags::CLONE_NEWUSER);
    if new_user_ns
        && linux
            .and_then(|l| l.uid_mappings().as_ref())
            .is_none_or(|m| m.is_empty())
    {
        return Err(Error::spec(
            "linux.uidMappings",
            "required with a new user namespace",
        ));
    }
    let cgroup_fd = cgroup.v2_dir_fd();
    // On v1 the init moves itself (see `cgroups::SelfJoin`), unless it is in
    // a new user namespace, where it has no rights on the host's cgroupfs.
    let self_join = cgroup.self_join().filter(|_| !new_user_ns);
    let parent_moves = cgroup_fd.is_none() && self_join.is_none();
    let pid = {
        let _pidns = match plan.join_path(CloneFlags::CLONE_NEWPID) {
            Some(p) => Some(PidNsForChildren::enter(p)?),
            None => None,
        };
        let args = init::InitArgs {
            spec,
            new_user_ns,
            joins,
            unshare: plan.unshare_flags(),
            rootfs: b.rootfs.clone(),
            state_dir: rb.dir.clone(),
            seccomp,
            cgroup_join: self_join,
            no_pivot: opts.no_pivot,
            preserve_fds: opts.preserve_fds,
            stdio: opts.stdio,
            sync: child,
        };
        clone::spawn(
            plan.clone_flags(),
            cgroup_fd.as_ref().map(|f| f.as_raw_fd()),
            move || init::run(args),
        )?
    };
    rb.pid = Some(pid);
    if parent_moves {
        cgroup.add_process(pid)?;
    }
    if new_user_ns {
        let l = linux.ok_or_else(|| Error::spec("linux", "is required"))?;
        namespaces::write_id_maps(
            pid,
            l.uid_mappings().as_deref().unwrap_or_default(),
            l.gid_mappings().as_deref().unwrap_or_default(),
        )?;
    }
    parent.send(&Msg::Go(Vec::new()))?;
    parent.expect(&Msg::NsReady, "namespaces ready")?;

    let init_start_time = state::process_start_time(pid)
        .ok_or_else(|| Error::Init("the init exited during setup".into()))?;
    let st = ContainerState {
        id: opts.id.clone(),
        pid,
        init_start_time,
        bundle: b.dir.clone(),
        rootfs: b.rootfs.clone(),
        created: time::rfc3339_nano(std::time::SystemTime::now()),
        cgroup_path: cgroup.path().to_string(),
        spec: spec.clone(),
    };
    let hook_state = serde_json::to_vec(&st.oci(Status::Creating)).unwrap_or_default();
    if let Some(h) = spec.hooks() {
        hooks::run(
            "prestart",
            h.prestart().as_deref().unwrap_or_default(),
            &hook_state,
        )?;
        hooks::run(
            "createRuntime",
            h.create_runtime().as_deref().unwrap_or_default(),
            &hook_state,
        )?;
    }
    parent.send(&Msg::Go(hook_state))?;

    let mut pty_master = None;
    loop {
        match parent.recv()? {
            Some((Msg::Ready, _)) => break,
            Some((Msg::PtyMaster, Some(fd))) => {
                pty_master = console::route_master(fd, opts.console_socket.as_deref())?
            }
            Some((Msg::Failed(m), _)) => return Err(Error::Init(m)),
            Some((m, _)) => return Err(Error::Init(format!("unexpected {m:?} during setup"))),
            None => return Err(Error::Init("the init exited during setup".into())),
        }
    }
    root.save(&st)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    Ok(Created {
        state: st,
        pty_master,
    })
}
