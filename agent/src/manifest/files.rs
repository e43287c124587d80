//! Writing a configMap/secret/downwardAPI/projected volume's files into its
//! directory the way kubelet's atomic writer does, so a reader never sees a
//! mix of old and new files: the payload goes into a fresh
//! `..<timestamp>` directory, the `..data` symlink is swapped to it with one
//! rename, and the user-visible top-level names are symlinks through
//! `..data`. Names a new payload no longer has are removed, then the old
//! timestamped directory.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::names;

/// The symlink to the current payload directory.
pub const DATA_DIR: &str = "..data";
const DATA_DIR_TMP: &str = "..data_tmp";

/// One file of a volume's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedFile {
    /// Path relative to the volume directory (may hold `/`).
    pub path: String,
    pub data: Vec<u8>,
    /// Permission bits (0..=0o777).
    pub mode: u32,
}

/// How the files are owned (`fsGroup`): group-owned by the gid, with group
/// read (and execute on directories, plus setgid) added, as kubelet's
/// volume ownership for read-only volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    pub fs_group: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("volume file {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("volume file {path:?}: duplicate path")]
    Duplicate { path: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FilesError + 'a {
    move |source| FilesError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Makes `dir` (which must exist) hold exactly `files`. Returns `false`
/// when it already did (nothing written).
pub fn write_atomic(
    dir: &Path,
    files: &[ProjectedFile],
    owner: Option<Ownership>,
) -> Result<bool, FilesError> {
    let mut top = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for f in files {
        names::projected_path(&f.path).map_err(|reason| FilesError::InvalidPath {
            path: f.path.clone(),
            reason,
        })?;
        if !seen.insert(f.path.trim_end_matches('/')) {
            return Err(FilesError::Duplicate {
                path: f.path.clone(),
            });
        }
        top.insert(first_component(&f.path).to_string());
    }
    let data_link = dir.join(DATA_DIR);
    let old = fs::read_link(&data_link).ok();
    if let Some(old) = &old {
        if same_payload(&dir.join(old), files, owner) {
            return Ok(false);
        }
    }
    let new_name = create_ts_dir(dir)?;
    let new_dir = dir.join(&new_name);
    if let Err(e) = fill(&new_dir, files, owner) {
        let _ = fs::remove_dir_all(&new_dir);
        return Err(e);
    }
    let tmp = dir.join(DATA_DIR_TMP);
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&new_name, &tmp).map_err(io_err("symlink", &tmp))?;
    fs::rename(&tmp, &data_link).map_err(io_err("rename", &data_link))?;
    for name in &top {
        let visible = dir.join(name);
        if fs::symlink_metadata(&visible).is_err() {
            let target = Path::new(DATA_DIR).join(name);
            std::os::unix::fs::symlink(&target, &visible).map_err(io_err("symlink", &visible))?;
        }
    }
    if let Some(old) = old {
        let old_dir = dir.join(&old);
        for name in top_level(&old_dir) {
            if !top.contains(&name) {
                let visible = dir.join(&name);
                if fs::read_link(&visible).is_ok() {
                    fs::remove_file(&visible).map_err(io_err("remove", &visible))?;
                }
            }
        }
        if old_dir != new_dir && old.to_string_lossy().starts_with("..") {
            fs::remove_dir_all(&old_dir).map_err(io_err("remove", &old_dir))?;
        }
    }
    Ok(true)
}

fn first_component(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

fn top_level(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Whether `dir` holds exactly `files` (content and mode).
fn same_payload(dir: &Path, files: &[ProjectedFile], owner: Option<Ownership>) -> bool {
    let mut count = 0;
    let ok = files.iter().all(|f| {
        let p = dir.join(&f.path);
        let want = match owner {
            Some(_) => owned_mode(f.mode & 0o777, false),
            None => f.mode & 0o777,
        };
        let mode_ok = fs::metadata(&p).is_ok_and(|m| m.permissions().mode() & 0o7777 == want);
        mode_ok && fs::read(&p).is_ok_and(|d| d == f.data)
    });
    if !ok {
        return false;
    }
    count_files(dir, &mut count);
    count == files.len()
}

fn count_files(dir: &Path, count: &mut usize) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path(), count),
            Ok(_) => *count += 1,
            Err(_) => {}
        }
    }
}

/// `..YYYY_MM_DD_HH_MM_SS.<nanoseconds>` in UTC, a new name on a clash.
fn create_ts_dir(dir: &Path) -> Result<String, FilesError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (y, mo, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    let t = secs % 86_400;
    let stamp = format!(
        "..{y:04}_{mo:02}_{d:02}_{:02}_{:02}_{:02}",
        t / 3600,
        t % 3600 / 60,
        t % 60
    );
    let mut nanos = now.subsec_nanos();
    loop {
        let name = format!("{stamp}.{nanos:09}");
        let path = dir.join(&name);
        match fs::DirBuilder::new().mode(0o755).create(&path) {
            Ok(()) => {
                // The mode without the umask, as kubelet's chmod.
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                    .map_err(io_err("chmod", &path))?;
                return Ok(name);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => nanos = nanos.wrapping_add(1),
            Err(e) => return Err(io_err("mkdir", &path)(e)),
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The mode kubelet leaves on a file (or directory) of a read-only volume
/// with an fsGroup.
fn owned_mode(mode: u32, is_dir: bool) -> u32 {
    let mut m = mode | 0o440;
    if is_dir {
        m |= 0o2110;
    }
    m
}

fn fill(dir: &Path, files: &[ProjectedFile], owner: Option<Ownership>) -> Result<(), FilesError> {
    for f in files {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(io_err("mkdir", parent))?;
        }
        fs::write(&path, &f.data).map_err(io_err("write", &path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(f.mode & 0o777))
            .map_err(io_err("chmod", &path))?;
    }
    if let Some(o) = owner {
        set_ownership(dir, o)?;
    }
    Ok(())
}

fn set_ownership(path: &Path, o: Ownership) -> Result<(), FilesError> {
    let meta = fs::symlink_metadata(path).map_err(io_err("stat", path))?;
    std::os::unix::fs::lchown(path, None, Some(o.fs_group)).map_err(io_err("chown", path))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = owned_mode(meta.permissions().mode() & 0o7777, meta.is_dir());
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err("chmod", path))?;
    if meta.is_dir() {
        for e in fs::read_dir(path).map_err(io_err("read", path))? {
            let e = e.map_err(io_err("read", path))?;
            set_ownership(&e.path(), o)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn file(path: &str, data: &str, mode: u32) -> ProjectedFile {
        ProjectedFile {
            path: path.into(),
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    fn ts_dirs(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = top_level(dir)
            .into_iter()
            .filter(|n| n.starts_with("..") && n != DATA_DIR)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_through_data_symlink_and_updates_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let v1 = [
            file("app.conf", "a=1\n", 0o644),
            file("conf.d/extra.conf", "b=2\n", 0o600),
            file("key", "k", 0o400),
        ];
        assert!(write_atomic(d, &v1, None).unwrap());
        assert_eq!(
            fs::read_link(d.join("app.conf")).unwrap(),
            Path::new("..data/app.conf")
        );
        assert_eq!(
            fs::read_link(d.join("conf.d")).unwrap(),
            Path::new("..data/conf.d")
        );
        assert_eq!(
            fs::read_to_string(d.join("conf.d/extra.conf")).unwrap(),
            "b=2\n"
        );
        assert_eq!(fs::metadata(d.join("key")).unwrap().mode() & 0o777, 0o400);
        let first = fs::read_link(d.join(DATA_DIR)).unwrap();
        assert!(first.to_string_lossy().starts_with("..20"), "{first:?}");
        assert_eq!(ts_dirs(d).len(), 1);

        // The same payload again: nothing changes.
        assert!(!write_atomic(d, &v1, None).unwrap());
        assert_eq!(fs::read_link(d.join(DATA_DIR)).unwrap(), first);

        // An update that changes one key and removes two.
        let v2 = [file("app.conf", "a=2\n", 0o644)];
        assert!(write_atomic(d, &v2, None).unwrap());
        assert_eq!(fs::read_to_string(d.join("app.conf")).unwrap(), "a=2\n");
        assert!(
            fs::symlink_metadata(d.join("key")).is_err(),
            "removed key is gone"
        );
        assert!(fs::symlink_metadata(d.join("conf.d")).is_err());
        let second = fs::read_link(d.join(DATA_DIR)).unwrap();
        assert_ne!(second, first);
        assert_eq!(
            ts_dirs(d),
            [second.to_string_lossy().into_owned()],
            "old payload dir removed"
        );
        assert!(fs::symlink_metadata(d.join(DATA_DIR_TMP)).is_err());

        // Empty payload (an optional ConfigMap that is missing).
        assert!(write_atomic(d, &[], None).unwrap());
        assert!(fs::symlink_metadata(d.join("app.conf")).is_err());
        let mut left = top_level(d);
        left.sort();
        assert_eq!(left.len(), 2, "{left:?}: ..data and one payload dir");
    }

    #[test]
    fn mode_change_rewrites() {
        let tmp = tempfile::tempdir().unwrap();
        write_atomic(tmp.path(), &[file("a", "x", 0o644)], None).unwrap();
        assert!(write_atomic(tmp.path(), &[file("a", "x", 0o600)], None).unwrap());
        assert_eq!(
            fs::metadata(tmp.path().join("a")).unwrap().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn refuses_bad_paths() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["../x", "/abs", "..data", "a/../../b", ""] {
            let e = write_atomic(tmp.path(), &[file(bad, "", 0o644)], None).unwrap_err();
            assert!(matches!(e, FilesError::InvalidPath { .. }), "{bad}: {e}");
        }
        let e = write_atomic(
            tmp.path(),
            &[file("a", "", 0o644), file("a", "", 0o644)],
            None,
        )
        .unwrap_err();
        assert!(matches!(e, FilesError::Duplicate { .. }));
        assert!(top_level(tmp.path()).is_empty(), "nothing written");
    }

    #[test]
    fn fs_group_ownership() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let own = Some(Ownership { fs_group: 1234 });
        assert!(write_atomic(d, &[file("s/token", "t", 0o600)], own).unwrap());
        assert!(
            !write_atomic(d, &[file("s/token", "t", 0o600)], own).unwrap(),
            "unchanged"
        );
        let m = fs::metadata(d.join("s/token")).unwrap();
        assert_eq!(m.gid(), 1234);
        assert_eq!(m.mode() & 0o7777, 0o640);
        let dm = fs::metadata(d.join("s")).unwrap();
        assert_eq!(dm.gid(), 1234);
        assert_eq!(dm.mode() & 0o2000, 0o2000, "setgid directory");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
