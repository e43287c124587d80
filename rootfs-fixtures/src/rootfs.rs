//! Builds a minimal root filesystem from the host's busybox-static: the usual
//! directories, `/bin/busybox`, every applet as a hard link to it, and `/etc`.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::busybox::Busybox;
use crate::{etc_files, FixtureError};

/// Directories of the rootfs with their modes, created in this order.
const DIRS: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("sbin", 0o755),
    ("etc", 0o755),
    ("dev", 0o755),
    ("proc", 0o555),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("root", 0o700),
    ("home", 0o755),
    ("var", 0o755),
    ("var/tmp", 0o1777),
    ("run", 0o755),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
];

/// Where busybox lives inside the rootfs; every applet is a hard link to it.
pub const BUSYBOX_IN_ROOTFS: &str = "bin/busybox";

/// Builds a busybox rootfs at `dest` (created if missing; must be empty) from the
/// host's busybox-static (see [`Busybox::locate`]).
pub fn busybox_rootfs(dest: &Path) -> Result<(), FixtureError> {
    let busybox = Busybox::locate()?;
    let applets = applets_of(&busybox)?;
    build(&busybox, &applets, dest)
}

/// The applet list of `busybox`, asked once per process.
fn applets_of(busybox: &Busybox) -> Result<Vec<PathBuf>, FixtureError> {
    static LISTED: OnceLock<(PathBuf, Vec<PathBuf>)> = OnceLock::new();
    if let Some((path, applets)) = LISTED.get() {
        if path == busybox.path() {
            return Ok(applets.clone());
        }
    }
    let applets = busybox.applets()?;
    let _ = LISTED.set((busybox.path().to_path_buf(), applets.clone()));
    Ok(applets)
}

/// Lays out the rootfs at `dest` with `busybox` and its `applets`.
pub(crate) fn build(
    busybox: &Busybox,
    applets: &[PathBuf],
    dest: &Path,
) -> Result<(), FixtureError> {
    fs::create_dir_all(dest).map_err(FixtureError::io("create directory", dest))?;
    set_mode(dest, 0o755)?;
    for (dir, mode) in DIRS {
        make_dir(&dest.join(dir), *mode)?;
    }
    let app_home = dest.join("home").join(etc_files::APP_USER);
    make_dir(&app_home, 0o755)?;
    chown_if_permitted(&app_home, etc_files::APP_UID, etc_files::APP_GID)?;

    let binary = dest.join(BUSYBOX_IN_ROOTFS);
    fs::copy(busybox.path(), &binary).map_err(FixtureError::io("copy busybox to", &binary))?;
    set_mode(&binary, 0o755)?;
    for applet in applets
        .iter()
        .filter(|applet| *applet != Path::new(BUSYBOX_IN_ROOTFS))
    {
        let link = dest.join(applet);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).map_err(FixtureError::io("create directory", parent))?;
        }
        fs::hard_link(&binary, &link).map_err(FixtureError::io("hard-link applet", &link))?;
    }

    write_file(&dest.join("etc/passwd"), &etc_files::passwd())?;
    write_file(&dest.join("etc/group"), &etc_files::group())?;
    write_file(&dest.join("etc/hosts"), etc_files::hosts())?;
    Ok(())
}

/// Creates `path` (its parent must exist) and sets `mode` regardless of the umask.
fn make_dir(path: &Path, mode: u32) -> Result<(), FixtureError> {
    fs::create_dir(path).map_err(FixtureError::io("create directory", path))?;
    set_mode(path, mode)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), FixtureError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(FixtureError::io("chmod", path))
}

/// Writes `contents` to a new file at `path` with mode 0644.
fn write_file(path: &Path, contents: &str) -> Result<(), FixtureError> {
    fs::write(path, contents).map_err(FixtureError::io("write", path))?;
    set_mode(path, 0o644)
}

/// Changes the owner of `path`; when not root (EPERM) the rootfs stays usable,
/// only owned by the caller, so that case is skipped.
fn chown_if_permitted(path: &Path, uid: u32, gid: u32) -> Result<(), FixtureError> {
    match chown(path, Some(uid), Some(gid)) {
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
        result => result.map_err(FixtureError::io("chown", path)),
    }
}
