//! hostPath volumes' `type` and the check kubelet makes on the host path
//! before it mounts one (creating it for the *OrCreate types).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// `hostPath.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostPathType {
    /// `""`: no check.
    #[default]
    Unchecked,
    /// A directory, created (0755, with its parents) when nothing is there.
    DirectoryOrCreate,
    Directory,
    /// A file, created empty (0644) when nothing is there; its directory must exist.
    FileOrCreate,
    File,
    Socket,
    CharDevice,
    BlockDevice,
}

impl HostPathType {
    pub const NAMES: [&'static str; 8] = [
        "",
        "BlockDevice",
        "CharDevice",
        "Directory",
        "DirectoryOrCreate",
        "File",
        "FileOrCreate",
        "Socket",
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "" => Self::Unchecked,
            "DirectoryOrCreate" => Self::DirectoryOrCreate,
            "Directory" => Self::Directory,
            "FileOrCreate" => Self::FileOrCreate,
            "File" => Self::File,
            "Socket" => Self::Socket,
            "CharDevice" => Self::CharDevice,
            "BlockDevice" => Self::BlockDevice,
            _ => return None,
        })
    }
}

/// Why a host path does not pass its type check.
#[derive(Debug, thiserror::Error)]
pub enum HostPathError {
    #[error("hostPath type check failed: {path} is not {what}")]
    WrongType { path: PathBuf, what: &'static str },
    #[error("hostPath type check failed: creating {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
}

/// kubelet's `checkType`: makes sure `path` is what `kind` asks for
/// (following symlinks), creating a directory or an empty file for the
/// *OrCreate types when nothing exists there.
pub fn check_host_path(path: &Path, kind: HostPathType) -> Result<(), HostPathError> {
    let meta = fs::metadata(path).ok();
    let wrong = |what| HostPathError::WrongType {
        path: path.to_path_buf(),
        what,
    };
    let create = |source| HostPathError::Create {
        path: path.to_path_buf(),
        source,
    };
    let ft = meta.as_ref().map(fs::Metadata::file_type);
    match kind {
        HostPathType::Unchecked => Ok(()),
        HostPathType::DirectoryOrCreate if ft.is_none() => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .map_err(create),
        HostPathType::DirectoryOrCreate | HostPathType::Directory => ft
            .filter(|t| t.is_dir())
            .map(|_| ())
            .ok_or_else(|| wrong("a directory")),
        HostPathType::FileOrCreate if ft.is_none() => fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map(drop)
            .map_err(create),
        HostPathType::FileOrCreate | HostPathType::File => ft
            .filter(|t| t.is_file())
            .map(|_| ())
            .ok_or_else(|| wrong("a file")),
        HostPathType::Socket => ft
            .filter(|t| t.is_socket())
            .map(|_| ())
            .ok_or_else(|| wrong("a socket file")),
        HostPathType::CharDevice => ft
            .filter(|t| t.is_char_device())
            .map(|_| ())
            .ok_or_else(|| wrong("a character device")),
        HostPathType::BlockDevice => ft
            .filter(|t| t.is_block_device())
            .map(|_| ())
            .ok_or_else(|| wrong("a block device")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixListener;

    #[test]
    fn every_type_on_a_temp_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let file = d.join("file");
        fs::write(&file, "x").unwrap();
        let sock = d.join("sock");
        let _l = UnixListener::bind(&sock).unwrap();
        let link = d.join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let missing = d.join("missing");

        use HostPathType::*;
        assert!(check_host_path(&missing, Unchecked).is_ok());
        assert!(check_host_path(d, Directory).is_ok());
        assert!(check_host_path(&file, File).is_ok());
        assert!(
            check_host_path(&link, File).is_ok(),
            "symlinks are followed"
        );
        assert!(check_host_path(&sock, Socket).is_ok());
        assert!(check_host_path(Path::new("/dev/null"), CharDevice).is_ok());

        let e = check_host_path(&file, Directory).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "hostPath type check failed: {} is not a directory",
                file.display()
            )
        );
        assert!(check_host_path(d, File)
            .unwrap_err()
            .to_string()
            .ends_with("is not a file"));
        assert!(check_host_path(&missing, Directory).is_err());
        assert!(check_host_path(&missing, File).is_err());
        assert!(check_host_path(&file, Socket)
            .unwrap_err()
            .to_string()
            .ends_with("is not a socket file"));
        assert!(check_host_path(&file, CharDevice).is_err());
        assert!(check_host_path(Path::new("/dev/null"), BlockDevice)
            .unwrap_err()
            .to_string()
            .ends_with("is not a block device"));
        assert!(
            check_host_path(&file, DirectoryOrCreate).is_err(),
            "exists but is a file"
        );
        assert!(
            check_host_path(d, FileOrCreate).is_err(),
            "exists but is a directory"
        );
    }

    #[test]
    fn or_create_types_create() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c");
        check_host_path(&dir, HostPathType::DirectoryOrCreate).unwrap();
        assert!(dir.is_dir());
        check_host_path(&dir, HostPathType::DirectoryOrCreate).unwrap();
        let f = tmp.path().join("a/new");
        check_host_path(&f, HostPathType::FileOrCreate).unwrap();
        let m = fs::metadata(&f).unwrap();
        assert!(m.is_file() && m.len() == 0);
        assert_eq!(m.permissions().mode() & 0o7000, 0);
        fs::write(&f, "keep").unwrap();
        check_host_path(&f, HostPathType::FileOrCreate).unwrap();
        assert_eq!(
            fs::read_to_string(&f).unwrap(),
            "keep",
            "an existing file is not truncated"
        );
        let e =
            check_host_path(&tmp.path().join("no/parent"), HostPathType::FileOrCreate).unwrap_err();
        assert!(matches!(e, HostPathError::Create { .. }), "{e}");
    }

    #[test]
    fn type_names() {
        for n in HostPathType::NAMES {
            assert!(HostPathType::parse(n).is_some(), "{n}");
        }
        assert_eq!(HostPathType::parse("directory"), None);
    }
}
