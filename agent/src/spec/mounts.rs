//! The container's mounts, in order: the default set (proc, /dev, devpts,
//! /dev/shm, mqueue, sysfs, cgroup), the pod's `/etc/hostname`, `/etc/hosts`
//! and `/etc/resolv.conf` from the pod directory, then the request's mounts
//! (parents before children). A request mount at a default's or pod file's
//! destination replaces it.
//!
//! `/dev/shm`: with a pod IPC namespace every container binds the pod's
//! `<pod_dir>/shm` (the sandbox mounts a tmpfs there), so they share POSIX
//! shared memory as they share SysV IPC; with the host's IPC namespace it
//! binds the host's `/dev/shm`; a container IPC namespace gets its own tmpfs.

use std::path::{Path, PathBuf};

use berth_proto::v1::{Mount as CriMount, MountPropagation, NamespaceMode};
use oci_spec::runtime::Mount;

use super::pod_files::{HOSTNAME, HOSTS, RESOLV_CONF};
use super::{paths, SpecError};

/// What the mount set depends on besides the request's mounts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MountContext<'a> {
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub ipc: NamespaceMode,
    pub pod_dir: &'a Path,
}

/// The spec's `mounts`.
pub(crate) fn mounts(
    requested: &[CriMount],
    ctx: MountContext<'_>,
) -> Result<Vec<Mount>, SpecError> {
    let mut cri = requested
        .iter()
        .enumerate()
        .map(|(i, m)| cri_mount(&format!("config.mounts[{i}]"), m))
        .collect::<Result<Vec<_>, _>>()?;
    cri.sort_by_key(|m| paths::depth(m.destination()));
    let taken = |dest: &Path| cri.iter().any(|m| m.destination() == dest);
    let mut all: Vec<Mount> = defaults(ctx)
        .into_iter()
        .chain(pod_files(ctx))
        .filter(|m| !taken(m.destination()))
        .collect();
    all.extend(cri);
    Ok(all)
}

fn defaults(ctx: MountContext<'_>) -> Vec<Mount> {
    let ro = if ctx.privileged { "rw" } else { "ro" };
    let shm = match ctx.ipc {
        NamespaceMode::Node => bind(
            "/dev/shm",
            Path::new("/dev/shm"),
            &["rbind", "rprivate", "rw"],
        ),
        NamespaceMode::Container => mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        _ => bind(
            "/dev/shm",
            &ctx.pod_dir.join("shm"),
            &["rbind", "rprivate", "rw"],
        ),
    };
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        shm,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", ro]),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", ro],
        ),
    ]
}

fn pod_files(ctx: MountContext<'_>) -> Vec<Mount> {
    let mode = if ctx.readonly_rootfs { "ro" } else { "rw" };
    [HOSTNAME, HOSTS, RESOLV_CONF]
        .iter()
        .map(|name| {
            bind(
                &format!("/etc/{name}"),
                &ctx.pod_dir.join(name),
                &["rbind", "rprivate", mode],
            )
        })
        .collect()
}

/// One request mount as a bind mount; the host path must exist (symlinks are
/// followed, as CRI asks).
fn cri_mount(field: &str, m: &CriMount) -> Result<Mount, SpecError> {
    if m.image.is_some() {
        return Err(SpecError::invalid(
            format!("{field}.image"),
            "image volume mounts are not supported",
        ));
    }
    if !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty() {
        let which = if m.uid_mappings.is_empty() {
            "gid_mappings"
        } else {
            "uid_mappings"
        };
        return Err(SpecError::invalid(
            format!("{field}.{which}"),
            "id-mapped mounts are not supported",
        ));
    }
    let host_field = format!("{field}.host_path");
    let host = paths::clean_absolute(&host_field, &m.host_path)?;
    let dest = paths::clean_absolute(&format!("{field}.container_path"), &m.container_path)?;
    if dest == Path::new("/") {
        return Err(SpecError::invalid(
            format!("{field}.container_path"),
            "cannot mount over /",
        ));
    }
    let source = std::fs::canonicalize(&host).map_err(|source| SpecError::HostPath {
        field: host_field,
        path: host,
        source,
    })?;
    let propagation = match MountPropagation::try_from(m.propagation) {
        Ok(MountPropagation::PropagationPrivate) => "rprivate",
        Ok(MountPropagation::PropagationHostToContainer) => "rslave",
        Ok(MountPropagation::PropagationBidirectional) => "rshared",
        Err(_) => {
            return Err(SpecError::invalid(
                format!("{field}.propagation"),
                format!("unknown propagation {}", m.propagation),
            ))
        }
    };
    let mut options = vec!["rbind", propagation, if m.readonly { "ro" } else { "rw" }];
    if m.recursive_read_only {
        if !m.readonly || propagation != "rprivate" {
            return Err(SpecError::invalid(
                format!("{field}.recursive_read_only"),
                "needs readonly set and PRIVATE propagation",
            ));
        }
        options.push("rro");
    }
    Ok(bind(&dest.to_string_lossy(), &source, &options))
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

fn bind(dest: &str, source: &Path, options: &[&str]) -> Mount {
    let mut m = mount(dest, "bind", "", options);
    m.set_source(Some(source.to_path_buf()));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::v1::ImageSpec;

    fn ctx(dir: &Path) -> MountContext<'_> {
        MountContext {
            privileged: false,
            readonly_rootfs: false,
            ipc: NamespaceMode::Pod,
            pod_dir: dir,
        }
    }

    fn cri(host: &str, container: &str) -> CriMount {
        CriMount {
            host_path: host.into(),
            container_path: container.into(),
            ..Default::default()
        }
    }

    fn find<'a>(all: &'a [Mount], dest: &str) -> Vec<&'a Mount> {
        all.iter()
            .filter(|m| m.destination() == Path::new(dest))
            .collect()
    }

    fn options(m: &Mount) -> Vec<String> {
        m.options().clone().unwrap_or_default()
    }

    #[test]
    fn default_set_and_pod_files() {
        let pod = Path::new("/pods/p1");
        let all = mounts(&[], ctx(pod)).unwrap();
        let dests: Vec<_> = all
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup",
                "/etc/hostname",
                "/etc/hosts",
                "/etc/resolv.conf"
            ]
        );
        let shm = find(&all, "/dev/shm")[0];
        assert_eq!(shm.source().as_deref(), Some(Path::new("/pods/p1/shm")));
        assert_eq!(shm.typ().as_deref(), Some("bind"));
        assert!(options(find(&all, "/sys")[0]).contains(&"ro".to_string()));
        assert!(options(find(&all, "/sys/fs/cgroup")[0]).contains(&"ro".to_string()));
        let hosts = find(&all, "/etc/hosts")[0];
        assert_eq!(hosts.source().as_deref(), Some(Path::new("/pods/p1/hosts")));
        assert!(options(hosts).contains(&"rw".to_string()));
    }

    #[test]
    fn privileged_sysfs_and_cgroup_are_rw_and_readonly_rootfs_pod_files_ro() {
        let pod = Path::new("/pods/p1");
        let all = mounts(
            &[],
            MountContext {
                privileged: true,
                readonly_rootfs: true,
                ..ctx(pod)
            },
        )
        .unwrap();
        assert!(options(find(&all, "/sys")[0]).contains(&"rw".to_string()));
        assert!(options(find(&all, "/sys/fs/cgroup")[0]).contains(&"rw".to_string()));
        assert!(options(find(&all, "/etc/resolv.conf")[0]).contains(&"ro".to_string()));
    }

    #[test]
    fn shm_follows_the_ipc_mode() {
        let pod = Path::new("/pods/p1");
        let all = mounts(
            &[],
            MountContext {
                ipc: NamespaceMode::Node,
                ..ctx(pod)
            },
        )
        .unwrap();
        assert_eq!(
            find(&all, "/dev/shm")[0].source().as_deref(),
            Some(Path::new("/dev/shm"))
        );
        let all = mounts(
            &[],
            MountContext {
                ipc: NamespaceMode::Container,
                ..ctx(pod)
            },
        )
        .unwrap();
        assert_eq!(find(&all, "/dev/shm")[0].typ().as_deref(), Some("tmpfs"));
    }

    #[test]
    fn request_mounts_follow_defaults_sorted_and_replace_same_destination() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().to_str().unwrap();
        let mut ro = cri(host, "/etc/hosts");
        ro.readonly = true;
        let requested = [
            cri(host, "/data/sub"),
            cri(host, "/data"),
            ro,
            cri(host, "/dev/shm"),
        ];
        let all = mounts(&requested, ctx(Path::new("/pods/p1"))).unwrap();
        assert_eq!(find(&all, "/etc/hosts").len(), 1);
        assert_eq!(find(&all, "/dev/shm").len(), 1);
        let tail: Vec<_> = all[all.len() - 4..]
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        // Stable by depth: parents first, equal depths in request order.
        assert_eq!(tail, ["/data", "/data/sub", "/etc/hosts", "/dev/shm"]);
        let hosts = find(&all, "/etc/hosts")[0];
        assert_eq!(options(hosts), ["rbind", "rprivate", "ro"]);
        assert_eq!(
            hosts.source().as_deref(),
            Some(std::fs::canonicalize(dir.path()).unwrap().as_path())
        );
    }

    #[test]
    fn propagation_and_recursive_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().to_str().unwrap();
        let mut a = cri(host, "/a");
        a.propagation = MountPropagation::PropagationHostToContainer as i32;
        let mut b = cri(host, "/b");
        b.propagation = MountPropagation::PropagationBidirectional as i32;
        let mut c = cri(host, "/c");
        c.readonly = true;
        c.recursive_read_only = true;
        let all = mounts(&[a, b, c], ctx(Path::new("/p"))).unwrap();
        assert_eq!(options(find(&all, "/a")[0]), ["rbind", "rslave", "rw"]);
        assert_eq!(options(find(&all, "/b")[0]), ["rbind", "rshared", "rw"]);
        assert_eq!(
            options(find(&all, "/c")[0]),
            ["rbind", "rprivate", "ro", "rro"]
        );
    }

    #[test]
    fn symlinked_host_path_is_resolved() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
        let host = dir.path().join("link");
        let all = mounts(&[cri(host.to_str().unwrap(), "/x")], ctx(Path::new("/p"))).unwrap();
        let want = std::fs::canonicalize(dir.path().join("real")).unwrap();
        assert_eq!(
            find(&all, "/x")[0].source().as_deref(),
            Some(want.as_path())
        );
    }

    #[test]
    fn bad_mounts_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().to_str().unwrap().to_string();
        let traversal = format!("{host}/../etc");
        let missing = format!("{host}/missing");
        let mut rro = cri(&host, "/r");
        rro.recursive_read_only = true;
        let mut prop = cri(&host, "/p");
        prop.propagation = 7;
        let mut image = cri("", "/i");
        image.image = Some(ImageSpec::default());
        let cases = [
            (cri(&traversal, "/x"), "config.mounts[1].host_path"),
            (cri("relative", "/x"), "config.mounts[1].host_path"),
            (cri(&missing, "/x"), "config.mounts[1].host_path"),
            (cri(&host, "x"), "config.mounts[1].container_path"),
            (cri(&host, "/x/../y"), "config.mounts[1].container_path"),
            (cri(&host, "/"), "config.mounts[1].container_path"),
            (rro, "config.mounts[1].recursive_read_only"),
            (prop, "config.mounts[1].propagation"),
            (image, "config.mounts[1].image"),
        ];
        for (bad, field) in cases {
            let err = mounts(&[cri(&host, "/ok"), bad], ctx(Path::new("/p"))).unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
        }
        let err = mounts(&[cri(&traversal, "/x")], ctx(Path::new("/p"))).unwrap_err();
        assert!(err.to_string().contains("\"..\""), "{err}");
    }
}
