//! The `berth-fixtures` command line.

use std::process::Command;

use oci_spec::runtime::Spec;

fn fixtures(args: &[&str], dir: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_berth-fixtures"))
        .args(&args[..1])
        .arg(dir)
        .args(&args[1..])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn bundle_takes_args_after_double_dash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let printed = fixtures(&["bundle", "--", "/bin/echo", "-n", "hi"], &dir);
    assert_eq!(printed.trim(), dir.display().to_string());
    let spec = Spec::load(dir.join("config.json")).unwrap();
    let args = spec.process().as_ref().unwrap().args().clone().unwrap();
    assert_eq!(args, ["/bin/echo", "-n", "hi"]);
    assert!(dir.join("rootfs/bin/echo").is_file());
}

#[test]
fn bundle_defaults_to_sh_and_rootfs_builds_a_tree() {
    let tmp = tempfile::tempdir().unwrap();
    fixtures(&["bundle"], &tmp.path().join("b"));
    let spec = Spec::load(tmp.path().join("b/config.json")).unwrap();
    assert_eq!(
        spec.process().as_ref().unwrap().args().clone().unwrap(),
        ["sh"]
    );

    fixtures(&["rootfs"], &tmp.path().join("r"));
    assert!(tmp.path().join("r/etc/passwd").is_file());
    assert!(!tmp.path().join("r/config.json").exists());
}
