//! A pod's volumes on the host, from the manifest's plan: emptyDir
//! directories (a tmpfs of `sizeLimit` bytes for medium Memory),
//! configMap/secret/downwardAPI/projected file sets written with the
//! atomic `..data` writer (secret, downwardAPI and projected on a tmpfs, as
//! kubelet), hostPath type checks; the refresh of the file sets when their
//! source changes; and the teardown (unmount, remove the pod directory).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::manifest::files::{self, FilesError};
use crate::manifest::hostpath::{self, HostPathError};
use crate::manifest::volumes::{StorageMedium, VolumePlan, VolumeSetup};

/// A volume that cannot be set up or torn down.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {volume:?}: {op} {path}: {source}")]
    Io {
        volume: String,
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("volume {volume:?}: mount tmpfs on {path}: {source}")]
    Mount {
        volume: String,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("volume {volume:?}: {source}")]
    HostPath {
        volume: String,
        source: HostPathError,
    },
    #[error("volume {volume:?}: {source}")]
    Files { volume: String, source: FilesError },
    #[error("unmount {path}: {source}")]
    Unmount { path: PathBuf, source: nix::Error },
    #[error("remove {path}: {source}")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(volume: &str, op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError {
    let (volume, path) = (volume.to_string(), path.to_path_buf());
    move |source| VolumeError::Io {
        volume,
        op,
        path,
        source,
    }
}

/// Whether `path` is a mount point (its device differs from its parent's).
fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(me), Some(Ok(parent))) = (
        fs::symlink_metadata(path),
        path.parent().map(fs::symlink_metadata),
    ) else {
        return false;
    };
    me.dev() != parent.dev()
}

fn tmpfs(v: &VolumePlan, options: &str) -> Result<(), VolumeError> {
    if is_mount_point(&v.host_path) {
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        &v.host_path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options),
    )
    .map_err(|source| VolumeError::Mount {
        volume: v.name.clone(),
        path: v.host_path.clone(),
        source,
    })
}

fn make_dir(v: &VolumePlan, mode: u32) -> Result<(), VolumeError> {
    fs::create_dir_all(&v.host_path).map_err(io(&v.name, "create", &v.host_path))?;
    fs::set_permissions(&v.host_path, fs::Permissions::from_mode(mode)).map_err(io(
        &v.name,
        "chmod",
        &v.host_path,
    ))
}

/// Sets up one volume (idempotent: a second call changes nothing but the
/// files of a file set).
pub fn setup(v: &VolumePlan) -> Result<(), VolumeError> {
    match &v.setup {
        VolumeSetup::EmptyDir {
            medium,
            size_limit,
            mode,
        } => {
            make_dir(v, *mode)?;
            if *medium == StorageMedium::Memory {
                let mut opts = format!("mode={mode:o}");
                if let Some(size) = size_limit {
                    opts.push_str(&format!(",size={size}"));
                }
                tmpfs(v, &opts)?;
            }
            Ok(())
        }
        VolumeSetup::HostPath { kind } => {
            hostpath::check_host_path(&v.host_path, *kind).map_err(|source| VolumeError::HostPath {
                volume: v.name.clone(),
                source,
            })
        }
        VolumeSetup::Files {
            tmpfs: on_tmpfs, ..
        } => {
            make_dir(v, 0o755)?;
            if *on_tmpfs {
                tmpfs(v, "mode=755")?;
            }
            write_files(v).map(drop)
        }
    }
}

/// Rewrites a file set's files atomically; `true` when they changed.
/// Other volumes are left alone (`false`).
pub fn write_files(v: &VolumePlan) -> Result<bool, VolumeError> {
    let VolumeSetup::Files { files, owner, .. } = &v.setup else {
        return Ok(false);
    };
    files::write_atomic(&v.host_path, files, *owner).map_err(|source| VolumeError::Files {
        volume: v.name.clone(),
        source,
    })
}

/// Sets up every volume of a pod, in order.
pub fn setup_all(pod_dir: &Path, volumes: &[VolumePlan]) -> Result<(), VolumeError> {
    fs::create_dir_all(pod_dir).map_err(io("", "create", pod_dir))?;
    volumes.iter().try_for_each(setup)
}

/// Undoes a mountinfo path escape (`\040` for a space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(n) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
            {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount points strictly below `dir` in a mountinfo text, deepest first.
pub fn mounts_below(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir) && p != dir)
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// Unmounts everything below `pod_dir` and removes it.
pub fn teardown(pod_dir: &Path) -> Result<(), VolumeError> {
    if !pod_dir.exists() {
        return Ok(());
    }
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for m in mounts_below(&info, pod_dir) {
        umount2(&m, MntFlags::MNT_DETACH).map_err(|source| VolumeError::Unmount {
            path: m.clone(),
            source,
        })?;
    }
    fs::remove_dir_all(pod_dir).map_err(|source| VolumeError::Remove {
        path: pod_dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::files::ProjectedFile;
    use crate::manifest::volumes::FilesKind;

    #[test]
    fn mountinfo_below() {
        let info = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
40 22 0:50 / /var/lib/berth/kubelet/pods/u1/volumes/kubernetes.io~secret/s rw - tmpfs tmpfs rw
41 22 0:51 / /var/lib/berth/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/m rw - tmpfs tmpfs rw
42 41 0:52 / /var/lib/berth/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/m/a\\040b rw - tmpfs tmpfs rw
43 22 0:53 / /var/lib/berth/kubelet/pods/u10/x rw - tmpfs tmpfs rw
";
        let m = mounts_below(info, Path::new("/var/lib/berth/kubelet/pods/u1"));
        assert_eq!(m.len(), 3);
        assert!(m[0].ends_with("m/a b"), "deepest first: {m:?}");
        assert!(mounts_below(info, Path::new("/nothing")).is_empty());
    }

    #[test]
    fn disk_volumes_set_up_and_tear_down() {
        let dir = tempfile::tempdir().unwrap();
        let pod = dir.path().join("pod");
        let empty = VolumePlan {
            name: "scratch".into(),
            host_path: pod.join("volumes/kubernetes.io~empty-dir/scratch"),
            setup: VolumeSetup::EmptyDir {
                medium: StorageMedium::Disk,
                size_limit: None,
                mode: 0o777,
            },
        };
        let conf = VolumePlan {
            name: "conf".into(),
            host_path: pod.join("volumes/kubernetes.io~configmap/conf"),
            setup: VolumeSetup::Files {
                kind: FilesKind::ConfigMap,
                tmpfs: false,
                files: vec![ProjectedFile {
                    path: "a.txt".into(),
                    data: b"one".to_vec(),
                    mode: 0o644,
                }],
                owner: None,
            },
        };
        setup_all(&pod, &[empty.clone(), conf.clone()]).unwrap();
        let mode = fs::metadata(&empty.host_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o777);
        assert_eq!(fs::read(conf.host_path.join("a.txt")).unwrap(), b"one");
        assert!(!write_files(&conf).unwrap(), "same payload");
        let mut changed = conf.clone();
        if let VolumeSetup::Files { files, .. } = &mut changed.setup {
            files[0].data = b"two".to_vec();
        }
        assert!(write_files(&changed).unwrap());
        assert_eq!(fs::read(conf.host_path.join("a.txt")).unwrap(), b"two");
        teardown(&pod).unwrap();
        assert!(!pod.exists());
        teardown(&pod).unwrap();
    }
}
