//! Image store without a registry: archive import (OCI layout, docker save,
//! multi-platform index), layer unpacking into overlay form, malicious
//! layers, overlay rootfs mounts, removal and garbage collection.

#[path = "images_common.rs"]
mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_agent::images::{unmount_rootfs, ImageError};
use berth_fixtures::image::{write_index_archive, Compression, ImageSpec, Layer};
use common::{assert_layered_view, busybox, layered, scratch, store, MountGuard};

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid NUL-terminated strings and a buffer of buf.len() bytes.
    let rc = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (rc >= 0).then(|| buf[..rc as usize].to_vec())
}

#[test]
fn import_oci_archive_and_mount_rootfs() {
    let tmp = scratch("import-oci");
    let archive = tmp.path().join("busybox.tar");
    let built = busybox()
        .write_oci_archive(&archive, "docker.io/library/busybox:test")
        .unwrap();
    let s = store(tmp.path());
    let images = s.import(&archive).unwrap();
    assert_eq!(images.len(), 1);
    let img = &images[0];
    assert_eq!(img.id.as_str(), built.config_digest);
    assert_eq!(img.repo_tags, vec!["docker.io/library/busybox:test"]);
    assert_eq!(img.manifest_digest.as_str(), built.manifest_digest);
    for name in [
        "busybox:test",
        "docker.io/library/busybox:test",
        img.id.as_str(),
        img.id.hex(),
        &img.id.hex()[..12],
    ] {
        assert_eq!(
            s.status(name).unwrap().map(|i| i.id),
            Some(img.id.clone()),
            "status({name})"
        );
    }
    assert!(s.status("busybox:other").unwrap().is_none());
    assert_eq!(s.list().unwrap().len(), 1);
    for private in ["snapshots", "tmp"] {
        let mode = fs::metadata(s.root().join(private)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700, "{private} is private to root");
    }

    let cdir = tmp.path().join("c1");
    let m = s.prepare_rootfs(img.id.as_str(), &cdir, false).unwrap();
    let _guard = MountGuard::new(&m);
    let bb = fs::metadata(m.target.join("bin/busybox")).unwrap();
    let sh = fs::metadata(m.target.join("bin/sh")).unwrap();
    assert_eq!(bb.ino(), sh.ino(), "applets are hard links to busybox");
    assert_eq!(bb.mode() & 0o7777, 0o755);
    assert_eq!(
        fs::metadata(m.target.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    fs::write(m.target.join("etc/hostname"), b"c1").unwrap();
    assert!(
        m.upper.join("etc/hostname").is_file(),
        "writes land in the upper dir"
    );
    unmount_rootfs(&m.target).unwrap();
    unmount_rootfs(&m.target).unwrap();
}

#[test]
fn whiteouts_and_opaque_dirs_in_overlay() {
    let tmp = scratch("whiteouts");
    let archive = tmp.path().join("layered.tar");
    let built = layered()
        .write_oci_archive(&archive, "localhost/layered:1")
        .unwrap();
    let s = store(tmp.path());
    let img = s.import(&archive).unwrap().remove(0);
    assert_eq!(img.chain_ids.len(), 3);
    assert_eq!(
        img.diff_ids
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>(),
        built.diff_ids
    );

    let top = s.root().join("snapshots").join(img.chain_ids[2].hex());
    let wh = fs::symlink_metadata(top.join("data/gone")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0/0 char device"
    );
    assert_eq!(
        lgetxattr(&top.join("opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!top.join("opq/.wh..wh..opq").exists() && !top.join("data/.wh.gone").exists());

    let m = s
        .prepare_rootfs("localhost/layered:1", &tmp.path().join("c"), false)
        .unwrap();
    let _guard = MountGuard::new(&m);
    assert_layered_view(&m.target);
}

#[test]
fn unpack_keeps_owners_modes_xattrs_links_devices_and_times() {
    let tmp = scratch("metadata");
    let layer = Layer::new()
        .dir("d", 0o750)
        .file_full(
            "d/suid",
            b"x".to_vec(),
            0o4755,
            1000,
            1001,
            vec![("user.berth".into(), b"yes".to_vec())],
        )
        .hardlink("d/link", "d/suid")
        .symlink("d/sym", "/nonexistent/target")
        .char_device("d/null", 1, 3)
        .fifo("d/fifo");
    let mut spec = ImageSpec::new(vec![layer.clone(), Layer::new().file("plain", b"p")]);
    spec.layers[0].1 = Compression::Zstd;
    spec.layers[1].1 = Compression::None;
    let archive = tmp.path().join("meta.tar");
    spec.write_oci_archive(&archive, "localhost/meta:1")
        .unwrap();
    let s = store(tmp.path());
    let img = s.import(&archive).unwrap().remove(0);
    let snap = s.root().join("snapshots").join(img.chain_ids[0].hex());

    let suid = fs::symlink_metadata(snap.join("d/suid")).unwrap();
    assert_eq!(
        (suid.uid(), suid.gid(), suid.mode() & 0o7777),
        (1000, 1001, 0o4755)
    );
    assert_eq!(suid.mtime(), 1_600_000_000);
    assert_eq!(
        lgetxattr(&snap.join("d/suid"), "user.berth").as_deref(),
        Some(&b"yes"[..])
    );
    assert_eq!(fs::metadata(snap.join("d/link")).unwrap().ino(), suid.ino());
    assert_eq!(
        fs::read_link(snap.join("d/sym")).unwrap(),
        Path::new("/nonexistent/target")
    );
    let null = fs::symlink_metadata(snap.join("d/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    assert!(fs::symlink_metadata(snap.join("d/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let d = fs::metadata(snap.join("d")).unwrap();
    assert_eq!((d.mode() & 0o7777, d.mtime()), (0o750, 1_600_000_000));
    let plain = s
        .root()
        .join("snapshots")
        .join(img.chain_ids[1].hex())
        .join("plain");
    assert_eq!(fs::read(plain).unwrap(), b"p");
}

#[test]
fn malicious_layers_are_rejected_and_leave_nothing() {
    let cases: Vec<(&str, Layer)> = vec![
        ("dotdot", Layer::new().file("../escape-dotdot", b"x")),
        (
            "nested-dotdot",
            Layer::new()
                .dir("a", 0o755)
                .file("a/../../escape-nested", b"x"),
        ),
        ("absolute", Layer::new().file("/tmp/escape-absolute", b"x")),
        (
            "symlink-dir",
            Layer::new()
                .symlink("evil", "../../..")
                .file("evil/escape-symlink", b"x"),
        ),
        (
            "symlink-abs",
            Layer::new()
                .symlink("evil", "/tmp")
                .file("evil/escape-symlink-abs", b"x"),
        ),
        (
            "hardlink-out",
            Layer::new().hardlink("passwd", "../../../../etc/passwd"),
        ),
        (
            "hardlink-abs",
            Layer::new().hardlink("passwd", "/etc/passwd"),
        ),
        (
            "hardlink-via-symlink",
            Layer::new()
                .symlink("etc", "/etc")
                .hardlink("passwd", "etc/passwd"),
        ),
        (
            "overlay-xattr",
            Layer::new().file_full(
                "f",
                b"x".to_vec(),
                0o644,
                0,
                0,
                vec![("trusted.overlay.redirect".into(), b"/etc".to_vec())],
            ),
        ),
    ];
    for (name, evil) in cases {
        let tmp = scratch(&format!("evil-{name}"));
        let archive = tmp.path().join("evil.tar");
        ImageSpec::new(vec![Layer::new().file("ok", b"ok"), evil])
            .write_oci_archive(&archive, "localhost/evil:1")
            .unwrap();
        let s = store(tmp.path());
        let err = s.import(&archive).expect_err(name);
        assert!(
            matches!(err, ImageError::UnsafeLayer { .. }),
            "{name}: {err}"
        );
        assert!(s.list().unwrap().is_empty(), "{name}: no image recorded");
        assert_eq!(count(&s.root().join("tmp")), 0, "{name}: staging cleaned");
        for leak in [
            "escape-dotdot",
            "escape-nested",
            "escape-symlink",
            "escape-symlink-abs",
        ] {
            assert!(
                !tmp.path().join(leak).exists() && !tmp.path().join("store").join(leak).exists(),
                "{name}: {leak}"
            );
        }
        assert!(
            !Path::new("/tmp/escape-absolute").exists()
                && !Path::new("/tmp/escape-symlink-abs").exists()
        );
    }
}

#[test]
fn remove_frees_unshared_snapshots_and_blobs() {
    let tmp = scratch("gc");
    let s = store(tmp.path());
    let a = tmp.path().join("a.tar");
    let b = tmp.path().join("b.tar");
    busybox().write_oci_archive(&a, "localhost/a:1").unwrap();
    layered().write_oci_archive(&b, "localhost/b:1").unwrap();
    let ia = s.import(&a).unwrap().remove(0);
    let ib = s.import(&b).unwrap().remove(0);
    assert_eq!(
        ia.chain_ids[0], ib.chain_ids[0],
        "busybox base layer is shared"
    );
    let snaps = s.root().join("snapshots");
    let blobs = s.root().join("blobs/sha256");
    assert_eq!(count(&snaps), 3);
    let (bytes_before, inodes_before) = s.fs_usage().unwrap();

    s.remove("localhost/b:1").unwrap();
    assert!(s.status("localhost/b:1").unwrap().is_none());
    assert_eq!(count(&snaps), 1, "the shared base stays, the rest goes");
    assert!(snaps.join(ia.chain_ids[0].hex()).is_dir());
    assert_eq!(count(&blobs), 3, "manifest, config and layer of a remain");
    let (bytes_after, inodes_after) = s.fs_usage().unwrap();
    assert!(bytes_after < bytes_before && inodes_after < inodes_before);

    s.remove("localhost/b:1").unwrap();
    s.remove(ia.id.as_str()).unwrap();
    s.remove(ia.id.as_str()).unwrap();
    assert_eq!((count(&snaps), count(&blobs)), (0, 0));
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn import_docker_save_archive() {
    let tmp = scratch("docker-save");
    let archive = tmp.path().join("save.tar");
    let built = layered()
        .write_docker_save(&archive, "layered:saved")
        .unwrap();
    let s = store(tmp.path());
    let img = s.import(&archive).unwrap().remove(0);
    assert_eq!(img.id.as_str(), built.config_digest);
    assert_eq!(img.repo_tags, vec!["docker.io/library/layered:saved"]);
    let m = s
        .prepare_rootfs("layered:saved", &tmp.path().join("c"), false)
        .unwrap();
    let _guard = MountGuard::new(&m);
    assert_layered_view(&m.target);
}

#[test]
fn import_index_picks_linux_amd64() {
    let tmp = scratch("index");
    let mut arm = ImageSpec::new(vec![Layer::new().file("arch", b"arm64")]);
    arm.architecture = "arm64".into();
    let amd = ImageSpec::new(vec![Layer::new().file("arch", b"amd64")]);
    let archive = tmp.path().join("index.tar");
    let (_, built) = write_index_archive(&archive, &[arm, amd], "localhost/multi:1").unwrap();
    let s = store(tmp.path());
    let img = s.import(&archive).unwrap().remove(0);
    assert_eq!(img.id.as_str(), built[1].config_digest);
    let snap = s.root().join("snapshots").join(img.chain_ids[0].hex());
    assert_eq!(fs::read(snap.join("arch")).unwrap(), b"amd64");
}

#[test]
fn rootfs_of_many_layers_fits_one_mount() {
    let tmp = scratch("many-layers");
    let mut layers = vec![Layer::busybox().unwrap()];
    layers.extend((0..150).map(|i| {
        Layer::new()
            .dir("f", 0o755)
            .file(&format!("f/{i}"), i.to_string().as_bytes())
    }));
    let archive = tmp.path().join("many.tar");
    ImageSpec::new(layers)
        .write_oci_archive(&archive, "localhost/many:1")
        .unwrap();
    let s = store(tmp.path());
    let img = s.import(&archive).unwrap().remove(0);
    assert_eq!(img.chain_ids.len(), 151);
    let m = s
        .prepare_rootfs(img.id.as_str(), &tmp.path().join("c"), false)
        .unwrap();
    let _guard = MountGuard::new(&m);
    assert_eq!(count(&m.target.join("f")), 150);
    assert_eq!(fs::read(m.target.join("f/149")).unwrap(), b"149");
}

#[test]
fn readonly_rootfs_refuses_writes() {
    let tmp = scratch("readonly");
    let archive = tmp.path().join("bb.tar");
    busybox()
        .write_oci_archive(&archive, "localhost/ro:1")
        .unwrap();
    let s = store(tmp.path());
    s.import(&archive).unwrap();
    let m = s
        .prepare_rootfs("localhost/ro:1", &tmp.path().join("c"), true)
        .unwrap();
    let _guard = MountGuard::new(&m);
    assert!(m.readonly);
    let err = fs::write(m.target.join("new"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    assert!(m.target.join("bin/busybox").is_file());
}

#[test]
fn concurrent_imports_share_the_work() {
    let tmp = scratch("concurrent-import");
    let archive = tmp.path().join("layered.tar");
    layered()
        .write_oci_archive(&archive, "localhost/conc:1")
        .unwrap();
    let ids: Vec<String> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                sc.spawn(|| {
                    store(tmp.path())
                        .import(&archive)
                        .unwrap()
                        .remove(0)
                        .id
                        .to_string()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    let s = store(tmp.path());
    assert_eq!(s.list().unwrap().len(), 1);
    assert_eq!(count(&s.root().join("snapshots")), 3);
    assert_eq!(count(&s.root().join("tmp")), 0);
}

#[test]
fn retagging_moves_the_tag() {
    let tmp = scratch("retag");
    let s = store(tmp.path());
    let a = tmp.path().join("a.tar");
    let b = tmp.path().join("b.tar");
    busybox()
        .write_oci_archive(&a, "localhost/app:latest")
        .unwrap();
    layered()
        .write_oci_archive(&b, "localhost/app:latest")
        .unwrap();
    let ia = s.import(&a).unwrap().remove(0);
    let ib = s.import(&b).unwrap().remove(0);
    assert_eq!(s.status("localhost/app").unwrap().unwrap().id, ib.id);
    assert!(s
        .status(ia.id.as_str())
        .unwrap()
        .unwrap()
        .repo_tags
        .is_empty());
}

#[test]
fn prepared_rootfs_keeps_its_snapshots_until_released() {
    let tmp = scratch("lease");
    let archive = tmp.path().join("bb.tar");
    busybox()
        .write_oci_archive(&archive, "localhost/leased:1")
        .unwrap();
    let s = store(tmp.path());
    let img = s.import(&archive).unwrap().remove(0);
    let cdir = tmp.path().join("c");
    let m = s.prepare_rootfs(img.id.as_str(), &cdir, false).unwrap();
    let _guard = MountGuard::new(&m);
    s.remove("localhost/leased:1").unwrap();
    assert!(s.list().unwrap().is_empty());
    let snaps = s.root().join("snapshots");
    assert_eq!(count(&snaps), 1, "a leased snapshot survives its image");
    assert!(m.target.join("bin/busybox").is_file());
    s.release_rootfs(&cdir).unwrap();
    s.release_rootfs(&cdir).unwrap();
    s.remove("localhost/leased:1").unwrap();
    assert_eq!(count(&snaps), 0);
    assert_eq!(count(&s.root().join("blobs/sha256")), 0);
}

#[test]
fn opening_sweeps_staging_left_by_dead_processes() {
    let tmp = scratch("sweep");
    let s = store(tmp.path());
    let stale = s.root().join("tmp/999999999-0-blob");
    let stale_dir = s.root().join("tmp/999999999-1-snapshot");
    let live = s
        .root()
        .join(format!("tmp/{}-999-blob", std::process::id()));
    fs::write(&stale, b"half").unwrap();
    fs::create_dir_all(stale_dir.join("usr/bin")).unwrap();
    fs::write(&live, b"in flight").unwrap();
    drop(s);
    let _s = store(tmp.path());
    assert!(
        !stale.exists() && !stale_dir.exists(),
        "a dead process's staging is swept"
    );
    assert!(live.exists(), "a live process's staging is kept");
}
