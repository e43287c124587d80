//! Bad input: every failure names the field or path, and a failed create
//! leaves nothing behind (no process, cgroup, mount or state directory).

use berth_tests::*;
use oci_spec::runtime::{LinuxNamespaceBuilder, LinuxNamespaceType, MountBuilder};

/// Creates `b` as a fresh id, expects failure, returns stderr; checks no leak.
fn create_fails(b: &Bundle) -> String {
    let rt = Runtime::new();
    let id = unique_id("bad");
    let out = rt.cmd(&["create", "--bundle", b.dir().to_str().unwrap(), &id]);
    assert!(!out.status.success(), "create should fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !rt.root().join(&id).exists(),
        "state dir left after a failed create: {err}"
    );
    assert!(rt.ok(&["list", "-q"]).trim().is_empty());
    let leaked = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .any(|ctrl| ctrl.path().join("berth").join(&id).exists());
    assert!(!leaked, "cgroup of {id} left after a failed create");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(b.rootfs().to_str().unwrap()), "mount leaked");
    err
}

#[test]
fn bad_cwd_names_the_field() {
    if need_root() {
        return;
    }
    let mut b = Bundle::temp(&["true"]).unwrap();
    edit(&mut b, |b| {
        process_mut(b).set_cwd("/does/not/exist".into());
    });
    let err = create_fails(&b);
    assert!(
        err.contains("process.cwd") && err.contains("/does/not/exist"),
        "{err}"
    );
}

#[test]
fn missing_executable_names_it() {
    if need_root() {
        return;
    }
    let b = Bundle::temp(&["no-such-binary"]).unwrap();
    let err = create_fails(&b);
    assert!(
        err.contains("no-such-binary") && err.contains("process.args"),
        "{err}"
    );
}

#[test]
fn bad_namespace_path_names_the_field() {
    if need_root() {
        return;
    }
    let mut b = Bundle::temp(&["true"]).unwrap();
    edit(&mut b, |b| {
        let ns = vec![LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::Network)
            .path("/proc/999999999/ns/net")
            .build()
            .unwrap()];
        linux_mut(b).set_namespaces(Some(ns));
    });
    let err = create_fails(&b);
    assert!(err.contains("linux.namespaces[0].path"), "{err}");
}

#[test]
fn bad_mount_source_names_the_destination() {
    if need_root() {
        return;
    }
    let mut b = Bundle::temp(&["true"]).unwrap();
    edit(&mut b, |b| {
        let mut m = b.spec().mounts().clone().unwrap_or_default();
        m.push(
            MountBuilder::default()
                .destination("/data")
                .typ("bind")
                .source("/does/not/exist")
                .options(vec!["bind".to_string()])
                .build()
                .unwrap(),
        );
        b.spec_mut().set_mounts(Some(m));
    });
    let err = create_fails(&b);
    assert!(err.contains("/data"), "{err}");
}

#[test]
fn bad_bundle_and_ids() {
    if need_root() {
        return;
    }
    let rt = Runtime::new();
    let empty = tempfile::tempdir().unwrap();
    let out = rt.cmd(&["create", "--bundle", empty.path().to_str().unwrap(), "x1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("config.json"),
        "{err}"
    );

    let b = Bundle::temp(&["sleep", "100"]).unwrap();
    let bd = b.dir().to_str().unwrap();
    let out = rt.cmd(&["create", "--bundle", bd, "../escape"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid container id"));

    let id = unique_id("dup");
    rt.ok(&["create", "--bundle", bd, &id]);
    let c = Container::new(&rt, &id);
    let out = rt.cmd(&["create", "--bundle", bd, &id]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    drop(c);

    let out = rt.cmd(&["delete", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    rt.ok(&["delete", "--force", "nope"]);
    let out = rt.cmd(&["state", "nope"]);
    assert!(!out.status.success());
}
