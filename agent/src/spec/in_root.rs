//! Reading files of a container's root filesystem from the host without
//! leaving it: paths (and the symlinks met on the way) resolve as if the
//! rootfs were `/` (openat2 with RESOLVE_IN_ROOT), so an image whose
//! `/etc/passwd` links to `../../../etc/shadow` reads its own file, never the
//! host's.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// Largest file read (account databases are small; a huge one is a mistake).
const MAX_SIZE: u64 = 16 << 20;

/// The content of `path` (absolute, as seen inside the container) in the root
/// filesystem at `root`; `None` if it does not exist.
pub(crate) fn read_to_string(root: &Path, path: &str) -> io::Result<Option<String>> {
    let root_fd = open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match openat2(&root_fd, path.trim_start_matches('/'), how) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut content = String::new();
    file.take(MAX_SIZE).read_to_string(&mut content)?;
    Ok(Some(content))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn reads_a_file_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        let got = read_to_string(dir.path(), "/etc/passwd").unwrap();
        assert_eq!(got.as_deref(), Some("root:x:0:0::/root:/bin/sh\n"));
    }

    #[test]
    fn missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_to_string(dir.path(), "/etc/passwd").unwrap(), None);
    }

    #[test]
    fn symlinks_resolve_within_the_root() {
        let outer = tempfile::tempdir().unwrap();
        std::fs::write(outer.path().join("secret"), "host secret\n").unwrap();
        let root = outer.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("secret"), "image file\n").unwrap();
        // Both an absolute link and a `..` escape land on the rootfs's own file.
        symlink("../../secret", root.join("etc/passwd")).unwrap();
        symlink("/secret", root.join("etc/group")).unwrap();
        for path in ["/etc/passwd", "/etc/group", "/../secret"] {
            let got = read_to_string(&root, path).unwrap();
            assert_eq!(got.as_deref(), Some("image file\n"), "{path}");
        }
    }

    #[test]
    fn directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        assert!(read_to_string(dir.path(), "/etc").is_err());
    }
}
