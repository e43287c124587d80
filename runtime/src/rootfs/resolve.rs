//! Resolving container paths inside the rootfs so that no symlink (absolute
//! or `..`) leads out of it: openat2(2) with `RESOLVE_IN_ROOT`, creating
//! missing directories (or an empty file) one component at a time, following
//! dangling symlinks within the root. Mounts then target the resolved fd
//! through `/proc/self/fd/N`.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

/// How many symlinks one resolution may follow by hand (as the kernel's MAXSYMLINKS).
const MAX_SYMLINKS: u32 = 40;
/// openat2 answers EAGAIN when a rename raced with `..` resolution; retry this often.
const EAGAIN_RETRIES: u32 = 16;

/// What to create when the last component is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// A directory (mode 0755).
    Dir,
    /// An empty regular file (mode 0644), for binds of a file.
    File,
}

/// `/proc/self/fd/N` for `fd`: a path mount(2) can target.
pub fn proc_fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `path` as a relative path without `.` components; `.` for the root itself.
fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// Opens `path` (absolute or relative, taken as relative to `root`) as an
/// `O_PATH` fd, resolving every symlink as if `root` were `/`.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, Errno> {
    let rel = relative(path);
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut tries = 0;
    loop {
        match openat2(root, &rel, how) {
            Err(Errno::EAGAIN) if tries < EAGAIN_RETRIES => tries += 1,
            other => return other,
        }
    }
}

/// Opens `path` inside `root` like [`open_in_root`], first creating whatever
/// is missing: directories for the parents, `leaf` for the last component.
/// A dangling symlink on the way is followed (inside `root`) and its target
/// created.
pub fn ensure_in_root(root: BorrowedFd<'_>, path: &Path, leaf: Leaf) -> Result<OwnedFd, Errno> {
    ensure(root, &relative(path), leaf, 0)
}

fn ensure(root: BorrowedFd<'_>, rel: &Path, leaf: Leaf, depth: u32) -> Result<OwnedFd, Errno> {
    match open_in_root(root, rel) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    if depth > MAX_SYMLINKS {
        return Err(Errno::ELOOP);
    }
    let Some(Component::Normal(name)) = rel.components().next_back() else {
        // The missing part is `..` or the root: nothing to create.
        return Err(Errno::ENOENT);
    };
    let parent_rel = rel
        .parent()
        .map(relative)
        .unwrap_or_else(|| PathBuf::from("."));
    let parent = ensure(root, &parent_rel, Leaf::Dir, depth)?;
    if let Ok(target) = readlinkat(parent.as_fd(), name) {
        // A dangling symlink: create what it points to, inside the root.
        let target = Path::new(&target);
        let next = if target.is_absolute() {
            relative(target)
        } else {
            parent_rel.join(target)
        };
        return ensure(root, &next, leaf, depth + 1);
    }
    create_leaf(parent.as_fd(), name, leaf)?;
    open_in_root(root, rel)
}

fn create_leaf(parent: BorrowedFd<'_>, name: &OsStr, leaf: Leaf) -> Result<(), Errno> {
    let created = match leaf {
        Leaf::Dir => mkdirat(parent, name, Mode::from_bits_truncate(0o755)),
        Leaf::File => openat(
            parent,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o644),
        )
        .map(drop),
    };
    match created {
        Err(Errno::EEXIST) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    use nix::sys::stat::fstat;

    use super::super::syscalls::open_dir;

    /// Resolves a fd back to its path (no magic-link tricks: readlink of proc).
    fn fd_path(fd: &OwnedFd) -> PathBuf {
        fs::read_link(proc_fd_path(fd)).unwrap()
    }

    fn root_dir() -> (tempfile::TempDir, PathBuf, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let outside = tempfile::tempdir().unwrap();
        (dir, root, outside)
    }

    #[test]
    fn relative_strips_root_and_dots() {
        assert_eq!(relative(Path::new("/")), Path::new("."));
        assert_eq!(relative(Path::new("/a/./b/")), Path::new("a/b"));
        assert_eq!(relative(Path::new("a/../b")), Path::new("a/../b"));
        assert_eq!(relative(Path::new("")), Path::new("."));
    }

    #[test]
    fn creates_missing_directories() {
        let (_d, root, _o) = root_dir();
        let rfd = open_dir(&root).unwrap();
        let fd = ensure_in_root(rfd.as_fd(), Path::new("/a/b/c"), Leaf::Dir).unwrap();
        assert_eq!(fd_path(&fd), root.join("a/b/c"));
        assert!(root.join("a/b/c").is_dir());
        // Idempotent.
        let again = ensure_in_root(rfd.as_fd(), Path::new("a/b/c"), Leaf::Dir).unwrap();
        assert_eq!(fd_path(&again), root.join("a/b/c"));
    }

    #[test]
    fn creates_an_empty_file_leaf() {
        let (_d, root, _o) = root_dir();
        let rfd = open_dir(&root).unwrap();
        let fd = ensure_in_root(rfd.as_fd(), Path::new("/etc/hostname"), Leaf::File).unwrap();
        let st = fstat(fd.as_fd()).unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFREG);
        assert_eq!(st.st_size, 0);
        assert!(root.join("etc").is_dir());
    }

    #[test]
    fn dotdot_symlink_stays_inside() {
        let (_d, root, outside) = root_dir();
        let escape = outside.path().join("x");
        // ../../../<outside>/x relative to the root: lands at root/<outside>/x.
        let target = format!("../../../../../..{}", escape.display());
        symlink(&target, root.join("evil")).unwrap();
        let rfd = open_dir(&root).unwrap();
        let fd = ensure_in_root(rfd.as_fd(), Path::new("/evil/sub"), Leaf::Dir).unwrap();
        let landed = fd_path(&fd);
        assert!(landed.starts_with(&root), "{landed:?} escaped {root:?}");
        assert_eq!(
            landed,
            root.join(escape.strip_prefix("/").unwrap()).join("sub")
        );
        assert!(!escape.exists(), "created outside the root");
    }

    #[test]
    fn absolute_symlink_stays_inside() {
        let (_d, root, outside) = root_dir();
        symlink(outside.path(), root.join("abs")).unwrap();
        let rfd = open_dir(&root).unwrap();
        let fd = ensure_in_root(rfd.as_fd(), Path::new("/abs/file"), Leaf::File).unwrap();
        let landed = fd_path(&fd);
        assert!(landed.starts_with(&root), "{landed:?} escaped {root:?}");
        assert!(fs::read_dir(outside.path()).unwrap().next().is_none());
    }

    #[test]
    fn dotdot_in_the_destination_is_clamped() {
        let (_d, root, _o) = root_dir();
        let rfd = open_dir(&root).unwrap();
        fs::create_dir(root.join("a")).unwrap();
        let fd = open_in_root(rfd.as_fd(), Path::new("/a/../../../..")).unwrap();
        assert_eq!(fd_path(&fd), root);
    }

    #[test]
    fn symlink_loop_is_refused() {
        let (_d, root, _o) = root_dir();
        symlink("/loop2", root.join("loop1")).unwrap();
        symlink("/loop1", root.join("loop2")).unwrap();
        let rfd = open_dir(&root).unwrap();
        let err = ensure_in_root(rfd.as_fd(), Path::new("/loop1/x"), Leaf::Dir).unwrap_err();
        assert_eq!(err, Errno::ELOOP);
    }

    #[test]
    fn existing_file_is_opened_not_replaced() {
        let (_d, root, _o) = root_dir();
        fs::write(root.join("f"), "keep").unwrap();
        let rfd = open_dir(&root).unwrap();
        let fd = ensure_in_root(rfd.as_fd(), Path::new("/f"), Leaf::File).unwrap();
        assert_eq!(fstat(fd.as_fd()).unwrap().st_size, 4);
    }
}
