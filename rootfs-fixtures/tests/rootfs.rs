//! The busybox rootfs layout: directories, hard-linked applets, account files.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use berth_fixtures::{busybox_rootfs, cached_busybox_rootfs, Busybox};

fn built() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    busybox_rootfs(&dir.path().join("rootfs")).unwrap();
    dir
}

#[test]
fn has_the_usual_directories_with_modes() {
    let dir = built();
    let root = dir.path().join("rootfs");
    for name in [
        "bin", "sbin", "etc", "dev", "proc", "sys", "tmp", "root", "home", "var", "run", "usr/bin",
    ] {
        assert!(root.join(name).is_dir(), "missing /{name}");
    }
    let mode = |name: &str| fs::metadata(root.join(name)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("root"), 0o700);
    let home = fs::metadata(root.join("home/app")).unwrap();
    assert_eq!((home.uid(), home.gid()), (1000, 1000));
}

#[test]
fn every_applet_is_a_hard_link_to_busybox() {
    let dir = built();
    let root = dir.path().join("rootfs");
    let binary = fs::metadata(root.join("bin/busybox")).unwrap();
    let applets = Busybox::locate().unwrap().applets().unwrap();
    for applet in &applets {
        let link = fs::symlink_metadata(root.join(applet)).unwrap();
        assert!(
            link.file_type().is_file(),
            "{} is not a regular file",
            applet.display()
        );
        assert_eq!(
            link.ino(),
            binary.ino(),
            "{} is not a hard link",
            applet.display()
        );
    }
    // `busybox --list-full` names bin/busybox itself among the applets.
    assert!(applets
        .iter()
        .any(|applet| applet == Path::new("bin/busybox")));
    assert_eq!(binary.nlink() as usize, applets.len());
    for needed in ["bin/sh", "bin/sleep", "bin/cat", "bin/ps", "bin/true"] {
        assert!(root.join(needed).is_file(), "missing /{needed}");
    }
}

#[test]
fn account_files_name_root_app_and_nobody() {
    let dir = built();
    let etc = dir.path().join("rootfs/etc");
    let passwd = fs::read_to_string(etc.join("passwd")).unwrap();
    assert!(passwd.starts_with("root:x:0:0:"));
    assert!(passwd.contains("\napp:x:1000:1000:app:/home/app:/bin/sh\n"));
    assert!(passwd.contains("\nnobody:x:65534:65534:"));
    let group = fs::read_to_string(etc.join("group")).unwrap();
    assert!(group.contains("nogroup:x:65534:"));
    assert!(group.contains("extra1:x:1001:app"));
    assert!(fs::read_to_string(etc.join("hosts"))
        .unwrap()
        .contains("localhost"));
}

#[test]
fn building_into_a_used_directory_fails_with_the_path() {
    let dir = built();
    let error = busybox_rootfs(&dir.path().join("rootfs")).unwrap_err();
    assert!(error.to_string().contains("rootfs"), "{error}");
}

#[test]
fn cached_rootfs_is_complete_and_stable() {
    let first = cached_busybox_rootfs().unwrap();
    assert_eq!(first, cached_busybox_rootfs().unwrap());
    assert!(first.join("bin/busybox").is_file());
    assert!(Path::new(&first).join("etc/group").is_file());
}
