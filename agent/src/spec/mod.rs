//! Translating CRI requests into OCI runtime specs, with kubelet's and the
//! CRI's semantics: [`container_spec`] turns a `CreateContainer` request
//! (container config, pod config, the image's config and the prepared
//! rootfs) into the `config.json` of the container's bundle, and
//! [`write_pod_files`] writes the pod's hostname, hosts and resolv.conf that
//! every container of the pod bind-mounts.
//!
//! Every error names the CRI field at fault (`config.mounts[1].host_path`,
//! `sandbox_config.hostname`); `config.` is the container config and
//! `sandbox_config.` the pod config, as in `CreateContainerRequest`.
//!
//! One module per concern: [`process`] (args, env, cwd), [`user`],
//! [`capabilities`], [`seccomp`], [`masked_paths`], [`namespaces`],
//! [`mounts`], [`devices`], [`resources`], [`sysctls`], [`annotations`],
//! [`pod_files`]; [`in_root`] reads image files without leaving the rootfs.

pub mod annotations;
pub mod capabilities;
mod devices;
mod error;
mod in_root;
pub mod masked_paths;
mod mounts;
mod namespaces;
mod paths;
pub mod pod_files;
pub mod process;
mod resources;
mod seccomp;
mod sysctls;
pub mod user;

#[cfg(test)]
mod run_tests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use berth_proto::v1::{
    ContainerConfig, LinuxContainerSecurityContext, MountPropagation, PodSandboxConfig,
};
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{Linux, LinuxResources, Process, Root, Spec, User};

pub use error::SpecError;
pub use pod_files::write_pod_files;

/// What the agent knows about the pod a container joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxInfo {
    /// The pod sandbox's id.
    pub pod_id: String,
    /// The pause process, whose IPC, UTS (and PID) namespaces the pod's
    /// containers join.
    pub pause_pid: i32,
    /// The pod's network namespace file; `None` for the host network (or, in
    /// a pod network, to use the pause process's).
    pub netns_path: Option<PathBuf>,
    /// The pod directory: holds `hostname`, `hosts`, `resolv.conf` (see
    /// [`write_pod_files`]) and `shm` (a tmpfs the sandbox mounts for the
    /// pod's shared /dev/shm).
    pub pod_dir: PathBuf,
    /// The pod's cgroup parent (cgroupfs path, or a systemd `*.slice`);
    /// empty for the runtime's default parent.
    pub cgroup_parent: String,
    /// For `namespace_options.pid` TARGET: the init pid of the container
    /// named by `target_id` (the caller looks it up).
    pub target_pid: Option<i32>,
}

/// The OCI spec for container `id` of the pod described by `sandbox` and
/// `info`, from the request `config`, the image's `image` config and the
/// container's prepared root filesystem at `rootfs` (where the image's
/// `/etc/passwd` and `/etc/group` are read).
pub fn container_spec(
    sandbox: &PodSandboxConfig,
    info: &SandboxInfo,
    id: &str,
    config: &ContainerConfig,
    image: &ImageConfiguration,
    rootfs: &Path,
) -> Result<Spec, SpecError> {
    build(sandbox, info, id, config, image, rootfs, Path::new("/dev"))
}

/// [`container_spec`] with the host's `/dev` (walked for privileged
/// containers) at `host_dev`.
fn build(
    sandbox: &PodSandboxConfig,
    info: &SandboxInfo,
    id: &str,
    config: &ContainerConfig,
    image: &ImageConfiguration,
    rootfs: &Path,
    host_dev: &Path,
) -> Result<Spec, SpecError> {
    if id.is_empty() || id.contains('/') || id.starts_with('.') {
        return Err(SpecError::invalid(
            "container id",
            format!("invalid container id {id:?}"),
        ));
    }
    if config.metadata.is_none() {
        return Err(SpecError::invalid("config.metadata", "missing"));
    }
    if !config.cdi_devices.is_empty() {
        // Starting without them would hide a missing device from the pod.
        return Err(SpecError::invalid(
            "config.cdi_devices",
            "CDI devices are not supported",
        ));
    }
    let sc = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref());
    let privileged = check_privileged(sandbox, sc)?;
    let modes = namespaces::Modes::of(sandbox, config)?;
    let hostname = pod_files::pod_hostname(sandbox, modes.host_network())?;
    let image_config = image.config().as_ref();

    let user = user::resolve(
        rootfs,
        sc,
        image_config
            .and_then(|c| c.user().as_deref())
            .unwrap_or_default(),
    )?;
    let mut env = process::env(config, image_config, &hostname)?;
    process::add_home(&mut env, &user.home);
    let mut process = Process::default();
    process.set_terminal(Some(config.tty));
    process.set_user(oci_user(&user));
    process.set_args(Some(process::args(config, image_config)?));
    process.set_env(Some(env));
    process.set_cwd(process::cwd(config, image_config)?);
    process.set_capabilities(Some(capabilities::capabilities(
        sc.and_then(|sc| sc.capabilities.as_ref()),
        privileged,
    )?));
    process.set_rlimits(None);
    process.set_no_new_privileges(Some(sc.is_some_and(|sc| sc.no_new_privs)));

    let mut root = Root::default();
    root.set_path(rootfs.to_path_buf());
    root.set_readonly(Some(sc.is_some_and(|sc| sc.readonly_rootfs)));

    let mounts = mounts::mounts(
        &config.mounts,
        mounts::MountContext {
            privileged,
            readonly_rootfs: sc.is_some_and(|sc| sc.readonly_rootfs),
            ipc: modes.ipc,
            pod_dir: &info.pod_dir,
        },
    )?;

    let devices = devices::devices(&config.devices, privileged, host_dev)?;
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(devices.rules));
    let oom_score_adj = resources::apply(
        &mut resources,
        config.linux.as_ref().and_then(|l| l.resources.as_ref()),
    )?;
    process.set_oom_score_adj(oom_score_adj);

    let (masked, readonly) = masked_paths::masked_and_readonly(sc, privileged);
    let mut linux = Linux::default();
    linux.set_namespaces(Some(namespaces::namespaces(modes, info)?));
    linux.set_devices(Some(devices.nodes));
    linux.set_resources(Some(resources));
    linux.set_cgroups_path(resources::cgroups_path(&info.cgroup_parent, id).map(PathBuf::from));
    linux.set_sysctl(Some(sysctls::sysctls(sandbox, modes)));
    linux.set_seccomp(seccomp::seccomp(sc, privileged)?);
    linux.set_masked_paths(Some(masked));
    linux.set_readonly_paths(Some(readonly));
    linux.set_rootfs_propagation(rootfs_propagation(config));
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);

    let mut spec = Spec::default();
    spec.set_process(Some(process));
    spec.set_root(Some(root));
    spec.set_hostname((!modes.host_network()).then_some(hostname));
    spec.set_mounts(Some(mounts));
    spec.set_linux(Some(linux));
    spec.set_annotations(Some(annotations::annotations(
        sandbox,
        &info.pod_id,
        config,
    )));
    spec.set_hooks(None);
    Ok(spec)
}

/// The OCI cgroup resources (and the oom_score_adj) for a CRI resources
/// message, as `container_spec` sets them; for `UpdateContainerResources`.
pub fn linux_resources(
    r: &berth_proto::v1::LinuxContainerResources,
) -> Result<(LinuxResources, Option<i32>), SpecError> {
    let mut resources = LinuxResources::default();
    let oom = resources::apply(&mut resources, Some(r))?;
    Ok((resources, oom))
}

/// The cgroups path of container `id` under the pod cgroup `parent`, as
/// `container_spec` sets it (`None`: the runtime's default).
pub fn container_cgroups_path(parent: &str, id: &str) -> Option<String> {
    resources::cgroups_path(parent, id)
}

/// Whether the container is privileged; a privileged container needs a
/// privileged pod.
fn check_privileged(
    sandbox: &PodSandboxConfig,
    sc: Option<&LinuxContainerSecurityContext>,
) -> Result<bool, SpecError> {
    let privileged = sc.is_some_and(|sc| sc.privileged);
    let pod_privileged = sandbox
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .is_some_and(|sc| sc.privileged);
    if privileged && !pod_privileged {
        return Err(SpecError::invalid(
            "config.linux.security_context.privileged",
            "privileged container in a pod that is not privileged",
        ));
    }
    Ok(privileged)
}

fn oci_user(user: &user::ResolvedUser) -> User {
    let mut u = User::default();
    u.set_uid(user.uid);
    u.set_gid(user.gid);
    u.set_additional_gids(Some(user.additional_gids.clone()));
    u
}

/// Mounts with slave or shared propagation need the root mount to propagate
/// the same way.
fn rootfs_propagation(config: &ContainerConfig) -> Option<String> {
    let has = |p: MountPropagation| config.mounts.iter().any(|m| m.propagation == p as i32);
    if has(MountPropagation::PropagationBidirectional) {
        Some("rshared".into())
    } else if has(MountPropagation::PropagationHostToContainer) {
        Some("rslave".into())
    } else {
        None
    }
}
