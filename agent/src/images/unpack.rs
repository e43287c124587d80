//! Applying one layer tar (gzip, zstd or plain) to an empty snapshot
//! directory, in overlayfs's form: whiteouts become 0/0 character devices and
//! opaque directories get `trusted.overlay.opaque=y`.
//!
//! Every file is created relative to a directory fd reached one component at
//! a time with `O_NOFOLLOW`, so no entry can write outside the snapshot:
//! absolute paths, `..` components and paths through symlinks are rejected.

use std::cell::RefCell;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, futimens, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::digest::{Digest, HashingReader};
use super::error::ImageError;

/// The prefix of a whiteout file's name.
const WHITEOUT_PREFIX: &str = ".wh.";
/// The name of the file that marks its directory opaque.
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The overlayfs xattr for opaque directories.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Xattrs a layer may not set: they steer overlayfs itself.
const FORBIDDEN_XATTR_PREFIX: &str = "trusted.overlay.";

/// What unpacking a layer found out.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// Unpacks the layer `blob` (named `layer` in errors) into the existing,
/// empty directory `dest`.
pub fn unpack_layer(blob: impl Read, dest: &Path, layer: &str) -> Result<Unpacked, ImageError> {
    let read_err = |source| ImageError::Unpack {
        layer: layer.to_string(),
        entry: String::new(),
        source,
    };
    let mut buffered = BufReader::with_capacity(256 * 1024, blob);
    let magic = buffered.fill_buf().map_err(read_err)?.to_vec();
    let stream: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(buffered).map_err(read_err)?)
    } else {
        Box::new(buffered)
    };
    let mut hashing = HashingReader::new(stream);
    let root = File::open(dest).map_err(ImageError::io("open snapshot", dest))?;
    let mut applier = Applier {
        root: root.into(),
        layer,
        dirs: Vec::new(),
        parent_cache: RefCell::new(None),
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            applier.apply(&mut entry)?;
        }
    }
    applier.finish_dir_times();
    let (diff_id, size) = hashing.finish().map_err(read_err)?;
    Ok(Unpacked { diff_id, size })
}

/// The metadata every entry carries.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    xattrs: Vec<(CString, Vec<u8>)>,
}

/// Applies entries of one layer below `root`.
struct Applier<'a> {
    root: OwnedFd,
    layer: &'a str,
    /// Directories and their mtimes, set last (creating children changes them).
    dirs: Vec<(PathBuf, u64)>,
    /// The last parent directory opened: consecutive entries mostly share
    /// one. Dropped whenever a directory is removed.
    parent_cache: RefCell<Option<(PathBuf, Rc<OwnedFd>)>>,
}

impl Applier<'_> {
    fn unsafe_entry(&self, entry: &Path, reason: &'static str) -> ImageError {
        ImageError::UnsafeLayer {
            layer: self.layer.to_string(),
            entry: entry.display().to_string(),
            reason,
        }
    }

    fn io_err(&self, entry: &Path) -> impl Fn(io::Error) -> ImageError + '_ {
        let entry = entry.display().to_string();
        move |source| ImageError::Unpack {
            layer: self.layer.to_string(),
            entry: entry.clone(),
            source,
        }
    }

    fn errno(&self, entry: &Path) -> impl Fn(Errno) -> ImageError + '_ {
        let f = self.io_err(entry);
        move |e| f(io::Error::from(e))
    }

    /// Normalises an entry or link path: relative, no `..`, `.` dropped.
    fn clean_path(&self, raw: &Path) -> Result<PathBuf, ImageError> {
        let mut out = PathBuf::new();
        for c in raw.components() {
            match c {
                Component::Normal(p) => out.push(p),
                Component::CurDir => {}
                Component::ParentDir => return Err(self.unsafe_entry(raw, "path contains '..'")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.unsafe_entry(raw, "absolute path"))
                }
            }
        }
        Ok(out)
    }

    /// Opens the directory `rel` below the root, one component at a time,
    /// never following symlinks; creates missing directories if `create`.
    /// [`Applier::open_dir`] with creation, served from the cache when the
    /// previous entry had the same parent.
    fn parent_dir(&self, rel: &Path, entry: &Path) -> Result<Rc<OwnedFd>, ImageError> {
        if let Some((path, fd)) = &*self.parent_cache.borrow() {
            if path == rel {
                return Ok(fd.clone());
            }
        }
        let fd = Rc::new(self.open_dir(rel, true, entry)?);
        *self.parent_cache.borrow_mut() = Some((rel.to_path_buf(), fd.clone()));
        Ok(fd)
    }

    fn open_dir(&self, rel: &Path, create: bool, entry: &Path) -> Result<OwnedFd, ImageError> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut fd =
            openat(self.root.as_fd(), ".", flags, Mode::empty()).map_err(self.errno(entry))?;
        for comp in rel.components() {
            let name = comp.as_os_str();
            let next = match openat(fd.as_fd(), name, flags, Mode::empty()) {
                Err(Errno::ENOENT) if create => {
                    mkdirat(fd.as_fd(), name, Mode::from_bits_truncate(0o755))
                        .map_err(self.errno(entry))?;
                    openat(fd.as_fd(), name, flags, Mode::empty())
                }
                other => other,
            };
            fd = match next {
                Ok(fd) => fd,
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                    return Err(
                        self.unsafe_entry(entry, "path goes through a symlink or a non-directory")
                    )
                }
                Err(e) => return Err(self.errno(entry)(e)),
            };
        }
        Ok(fd)
    }

    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ImageError> {
        let raw = entry
            .path()
            .map_err(self.io_err(Path::new("?")))?
            .into_owned();
        let path = self.clean_path(&raw)?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let (Some(name), Some(parent_rel)) =
            (path.file_name().map(OsStr::to_os_string), path.parent())
        else {
            // The root directory itself: its metadata belongs to the lower layers.
            return Ok(());
        };
        let parent = self.parent_dir(parent_rel, &raw)?;
        let name_str = name.to_string_lossy();
        if name_str == OPAQUE_MARKER {
            return set_xattr_fd(&parent, OPAQUE_XATTR, b"y").map_err(self.io_err(&raw));
        }
        if let Some(hidden) = name_str.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(self.unsafe_entry(&raw, "malformed whiteout name"));
            }
            let hidden = OsStr::new(hidden);
            return self.create(&parent, hidden, &raw, || {
                mknodat(
                    parent.as_fd(),
                    hidden,
                    SFlag::S_IFCHR,
                    Mode::empty(),
                    libc::makedev(0, 0),
                )
            });
        }
        let meta = self.meta(entry, &raw)?;
        let name = name.as_os_str();
        match kind {
            tar::EntryType::Directory => {
                match nix::sys::stat::fstatat(parent.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
                    Ok(_) => {
                        self.remove_existing(&parent, name, &raw)?;
                        mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o700))
                            .map_err(self.errno(&raw))?;
                    }
                    Err(_) => {
                        mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o700))
                            .map_err(self.errno(&raw))?;
                    }
                }
                let dir = self.open_dir(&path, false, &raw)?;
                self.set_fd_meta(&dir, &meta, &raw, false)?;
                self.dirs.push((path, meta.mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let flags = OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC;
                let fd = self.create(&parent, name, &raw, || {
                    openat(parent.as_fd(), name, flags, Mode::from_bits_truncate(0o600))
                })?;
                let mut file = File::from(fd);
                io::copy(entry, &mut file).map_err(self.io_err(&raw))?;
                self.set_fd_meta(&file, &meta, &raw, true)?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name().map_err(self.io_err(&raw))?;
                let target =
                    target.ok_or_else(|| self.unsafe_entry(&raw, "symlink without target"))?;
                self.create(&parent, name, &raw, || {
                    symlinkat(target.as_ref(), parent.as_fd(), name)
                })?;
                self.set_path_meta(&parent, name, &meta, &raw, false)?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name().map_err(self.io_err(&raw))?;
                let target =
                    target.ok_or_else(|| self.unsafe_entry(&raw, "hard link without target"))?;
                let target = self.clean_path(&target)?;
                let (Some(tname), Some(tparent)) = (target.file_name(), target.parent()) else {
                    return Err(self.unsafe_entry(&raw, "hard link to the root"));
                };
                let tparent = self.open_dir(tparent, false, &raw)?;
                self.create(&parent, name, &raw, || {
                    linkat(
                        tparent.as_fd(),
                        tname,
                        parent.as_fd(),
                        name,
                        AtFlags::empty(),
                    )
                })?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (sflag, dev) = match kind {
                    tar::EntryType::Fifo => (SFlag::S_IFIFO, 0),
                    _ => {
                        let major = entry
                            .header()
                            .device_major()
                            .map_err(self.io_err(&raw))?
                            .unwrap_or(0);
                        let minor = entry
                            .header()
                            .device_minor()
                            .map_err(self.io_err(&raw))?
                            .unwrap_or(0);
                        let sflag = if kind == tar::EntryType::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (sflag, libc::makedev(major, minor))
                    }
                };
                self.create(&parent, name, &raw, || {
                    mknodat(
                        parent.as_fd(),
                        name,
                        sflag,
                        Mode::from_bits_truncate(0o600),
                        dev,
                    )
                })?;
                self.set_path_meta(&parent, name, &meta, &raw, true)?;
            }
            _ => {
                tracing::debug!(layer = self.layer, entry = %raw.display(), ?kind, "skipping unsupported tar entry");
            }
        }
        Ok(())
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, raw: &Path) -> Result<Meta, ImageError> {
        let h = entry.header();
        let err = self.io_err(raw);
        let mut meta = Meta {
            mode: h.mode().map_err(&err)? & 0o7777,
            uid: h.uid().map_err(&err)?,
            gid: h.gid().map_err(&err)?,
            mtime: h.mtime().map_err(&err)?,
            xattrs: Vec::new(),
        };
        if let Some(exts) = entry.pax_extensions().map_err(&err)? {
            for ext in exts {
                let ext = ext.map_err(&err)?;
                let Ok(key) = ext.key() else { continue };
                let Some(name) = key.strip_prefix("SCHILY.xattr.") else {
                    continue;
                };
                if name.starts_with(FORBIDDEN_XATTR_PREFIX) {
                    return Err(self.unsafe_entry(raw, "sets an overlayfs xattr"));
                }
                let name = CString::new(name)
                    .map_err(|_| self.unsafe_entry(raw, "xattr name with NUL"))?;
                meta.xattrs.push((name, ext.value_bytes().to_vec()));
            }
        }
        Ok(meta)
    }

    /// Owner, xattrs, mode (after chown, which clears set-id bits) and
    /// optionally mtime of an open file or directory.
    fn set_fd_meta(
        &self,
        fd: &impl AsFd,
        m: &Meta,
        raw: &Path,
        times: bool,
    ) -> Result<(), ImageError> {
        let (uid, gid) = ids(m);
        fchown(fd.as_fd(), Some(uid), Some(gid)).map_err(self.errno(raw))?;
        for (name, value) in &m.xattrs {
            set_xattr_fd(fd, &name.to_string_lossy(), value).map_err(self.io_err(raw))?;
        }
        fchmod(fd.as_fd(), Mode::from_bits_truncate(m.mode)).map_err(self.errno(raw))?;
        if times {
            let t = TimeSpec::new(m.mtime as i64, 0);
            futimens(fd.as_fd(), &t, &t).map_err(self.errno(raw))?;
        }
        Ok(())
    }

    /// Owner, xattrs, optionally mode, and mtime of `name` in `parent`,
    /// without following it (symlinks, device nodes).
    fn set_path_meta(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        m: &Meta,
        raw: &Path,
        mode: bool,
    ) -> Result<(), ImageError> {
        let (uid, gid) = ids(m);
        fchownat(
            parent.as_fd(),
            name,
            Some(uid),
            Some(gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(self.errno(raw))?;
        for (xname, value) in &m.xattrs {
            set_xattr_at(parent, name, xname, value).map_err(self.io_err(raw))?;
        }
        if mode {
            nix::sys::stat::fchmodat(
                parent.as_fd(),
                name,
                Mode::from_bits_truncate(m.mode),
                nix::sys::stat::FchmodatFlags::NoFollowSymlink,
            )
            .map_err(self.errno(raw))?;
        }
        let t = TimeSpec::new(m.mtime as i64, 0);
        utimensat(
            parent.as_fd(),
            name,
            &t,
            &t,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(self.errno(raw))
    }

    /// Runs `make` to create `name` in `parent`; if something is already
    /// there (an earlier entry of the layer), removes it and tries again.
    fn create<T>(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        raw: &Path,
        make: impl Fn() -> nix::Result<T>,
    ) -> Result<T, ImageError> {
        match make() {
            Err(Errno::EEXIST) => {
                self.remove_existing(parent, name, raw)?;
                make().map_err(self.errno(raw))
            }
            other => other.map_err(self.errno(raw)),
        }
    }

    /// Removes whatever `name` in `parent` is (a directory with its contents).
    fn remove_existing(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        raw: &Path,
    ) -> Result<(), ImageError> {
        match unlinkat(parent.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(Errno::EISDIR) => {
                // The cached parent may be this directory or below it.
                self.parent_cache.borrow_mut().take();
                let path = fd_path(parent).join(name);
                std::fs::remove_dir_all(&path).map_err(self.io_err(raw))
            }
            Err(e) => Err(self.errno(raw)(e)),
        }
    }

    /// Sets directory mtimes, deepest last-created first; best effort.
    fn finish_dir_times(&self) {
        for (path, mtime) in self.dirs.iter().rev() {
            if let Ok(fd) = self.open_dir(path, false, path) {
                let t = TimeSpec::new(*mtime as i64, 0);
                let _ = futimens(fd.as_fd(), &t, &t);
            }
        }
    }
}

fn ids(m: &Meta) -> (Uid, Gid) {
    (Uid::from_raw(m.uid as u32), Gid::from_raw(m.gid as u32))
}

/// `/proc/self/fd/N`: a path that reaches an open directory without
/// resolving anything an entry could have planted.
fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Sets an xattr on an open file or directory.
fn set_xattr_fd(fd: &impl AsFd, name: &str, value: &[u8]) -> io::Result<()> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: the fd is open for the call's duration; name is NUL-terminated;
    // value points to value.len() readable bytes.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_fd().as_raw_fd(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets an xattr on `name` in `parent` without following a final symlink.
fn set_xattr_at(parent: &OwnedFd, name: &OsStr, xname: &CString, value: &[u8]) -> io::Result<()> {
    let path = fd_path(parent).join(name);
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both strings are NUL-terminated and live across the call; value
    // points to value.len() readable bytes.
    let rc = unsafe {
        libc::lsetxattr(
            cpath.as_ptr(),
            xname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use berth_fixtures::image::{sha256, Compression, Layer};

    use super::*;

    fn unpack(
        layer: &Layer,
        compression: Compression,
    ) -> (tempfile::TempDir, Result<Unpacked, ImageError>) {
        let dir = tempfile::tempdir().unwrap();
        let res = unpack_layer(&layer.blob(compression)[..], dir.path(), "test-layer");
        (dir, res)
    }

    #[test]
    fn diff_id_is_the_digest_of_the_uncompressed_tar() {
        let layer = Layer::new().dir("a", 0o755).file("a/b", b"hello");
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let (dir, res) = unpack(&layer, c);
            let res = res.unwrap();
            assert_eq!(res.diff_id.as_str(), sha256(&layer.tar()), "{c:?}");
            assert_eq!(res.size, layer.tar().len() as u64);
            assert_eq!(fs::read(dir.path().join("a/b")).unwrap(), b"hello");
        }
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let layer = Layer::new()
            .file("x", b"file first")
            .dir("x", 0o700)
            .file("x/inner", b"i")
            .dir("y", 0o755)
            .file("y/z", b"z")
            .file("y", b"now a file")
            .file("same", b"one")
            .file("same", b"two");
        let (dir, res) = unpack(&layer, Compression::None);
        res.unwrap();
        assert!(dir.path().join("x").is_dir());
        assert_eq!(fs::read(dir.path().join("x/inner")).unwrap(), b"i");
        assert_eq!(fs::read(dir.path().join("y")).unwrap(), b"now a file");
        assert_eq!(fs::read(dir.path().join("same")).unwrap(), b"two");
    }

    #[test]
    fn whiteouts_replace_entries_and_missing_parents_are_created() {
        let layer = Layer::new()
            .file("deep/er/file", b"f")
            .whiteout("deep/er/file")
            .whiteout("gone");
        let (dir, res) = unpack(&layer, Compression::Gzip);
        res.unwrap();
        for p in ["deep/er/file", "gone"] {
            let m = fs::symlink_metadata(dir.path().join(p)).unwrap();
            assert!(m.file_type().is_char_device() && m.rdev() == 0, "{p}");
        }
        assert_eq!(
            fs::metadata(dir.path().join("deep")).unwrap().mode() & 0o7777,
            0o755
        );
    }

    #[test]
    fn unsafe_entries_name_layer_and_entry() {
        let (_dir, res) = unpack(&Layer::new().file("../x", b""), Compression::None);
        let msg = res.unwrap_err().to_string();
        assert!(
            msg.contains("test-layer") && msg.contains("../x") && msg.contains(".."),
            "{msg}"
        );
        let (_dir, res) = unpack(&Layer::new().whiteout(".."), Compression::None);
        assert!(matches!(res, Err(ImageError::UnsafeLayer { .. })));
    }

    #[test]
    fn long_names_and_link_targets() {
        let long_dir = "d".repeat(120);
        let long_file = format!("{long_dir}/{}", "f".repeat(150));
        let mut b = tar::Builder::new(Vec::new());
        let header = || {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h
        };
        let mut h = header();
        h.set_size(4);
        b.append_data(&mut h, &long_file, &b"long"[..]).unwrap();
        let mut h = header();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "sym", format!("/{long_file}"))
            .unwrap();
        let tar = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        unpack_layer(&tar[..], dir.path(), "long").unwrap();
        assert_eq!(fs::read(dir.path().join(&long_file)).unwrap(), b"long");
        assert_eq!(
            fs::read_link(dir.path().join("sym")).unwrap(),
            Path::new(&format!("/{long_file}"))
        );
    }

    #[test]
    fn truncated_layers_fail() {
        let blob = Layer::new()
            .file("f", &[7u8; 10_000])
            .blob(Compression::Gzip);
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack_layer(&blob[..blob.len() / 2], dir.path(), "t").is_err());
    }
}
