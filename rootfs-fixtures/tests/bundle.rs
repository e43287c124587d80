//! Bundles: the config parses with oci-spec and runc runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use berth_fixtures::Bundle;
use oci_spec::runtime::Spec;

/// A runc state dir and container id, force-deleted on drop.
struct RuncContainer {
    state: tempfile::TempDir,
    id: String,
}

impl RuncContainer {
    fn new(test: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "fx-{test}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        RuncContainer {
            state: tempfile::tempdir().unwrap(),
            id,
        }
    }

    fn run(&self, bundle: &Path) -> Output {
        Command::new("runc")
            .arg("--root")
            .arg(self.state.path())
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(&self.id)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for RuncContainer {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(self.state.path())
            .args(["delete", "--force", &self.id])
            .output();
    }
}

#[test]
fn config_parses_with_the_args() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = Bundle::new(dir.path().join("b"), &["/bin/echo", "hello"]).unwrap();
    assert_eq!(bundle.dir(), dir.path().join("b"));
    assert_eq!(bundle.rootfs(), dir.path().join("b/rootfs"));
    let spec = Spec::load(bundle.config_path()).unwrap();
    let args = spec.process().as_ref().unwrap().args().clone().unwrap();
    assert_eq!(args, ["/bin/echo", "hello"]);
    assert_eq!(
        spec.root().as_ref().unwrap().path(),
        &PathBuf::from("rootfs")
    );
    assert!(bundle.rootfs().join("bin/busybox").is_file());
}

#[test]
fn edits_are_saved() {
    let mut bundle = Bundle::temp(&["/bin/true"]).unwrap();
    bundle.spec_mut().set_hostname(Some("edited".to_string()));
    bundle.save().unwrap();
    let spec = Spec::load(bundle.config_path()).unwrap();
    assert_eq!(spec.hostname().as_deref(), Some("edited"));
}

#[test]
fn temp_bundle_is_removed_on_drop() {
    let bundle = Bundle::temp(&["/bin/true"]).unwrap();
    let dir = bundle.dir().to_path_buf();
    assert!(dir.join("config.json").is_file());
    drop(bundle);
    assert!(!dir.exists());
}

#[test]
fn runc_runs_true() {
    let bundle = Bundle::temp(&["/bin/true"]).unwrap();
    let container = RuncContainer::new("true");
    let output = container.run(bundle.dir());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn runc_execs_real_applets_and_reads_accounts() {
    let bundle = Bundle::temp(&["/usr/bin/id", "app"]).unwrap();
    let container = RuncContainer::new("id");
    let output = container.run(bundle.dir());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "uid=1000(app) gid=1000(app) groups=1000(app),1001(extra1),1002(extra2)"
    );

    let bundle = Bundle::temp(&["/bin/ps", "-o", "comm"]).unwrap();
    let container = RuncContainer::new("ps");
    let output = container.run(bundle.dir());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "COMMAND\nps"
    );
}

/// `value` with the fields a fixture sets on purpose removed and capability
/// sets sorted (their order carries no meaning).
fn comparable(mut value: serde_json::Value) -> serde_json::Value {
    for field in ["ociVersion", "hostname", "annotations"] {
        value.as_object_mut().unwrap().remove(field);
    }
    let process = value["process"].as_object_mut().unwrap();
    process.remove("terminal");
    process.remove("args");
    for set in process["capabilities"]
        .as_object_mut()
        .unwrap()
        .values_mut()
    {
        set.as_array_mut()
            .unwrap()
            .sort_by_key(|cap| cap.to_string());
    }
    value
}

#[test]
fn config_matches_the_stock_runc_spec() {
    let stock_dir = tempfile::tempdir().unwrap();
    let status = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(stock_dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let read = |path: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let stock = read(stock_dir.path().join("config.json"));
    let bundle = Bundle::temp(&["/bin/true"]).unwrap();
    let ours = read(bundle.config_path());
    assert_eq!(ours["process"]["terminal"], false);
    assert_eq!(comparable(ours), comparable(stock));
}
