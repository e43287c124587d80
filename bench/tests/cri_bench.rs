//! The CRI bench end to end with two pods: containerd must be measured
//! (berthd too once it is built), and no pod, process, mount, cgroup or
//! directory of the run may be left. Skipped without containerd.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// berthd of the same build as this test, if it was built.
fn berthd() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/berthd
    exe.parent().and_then(Path::parent).unwrap().join("berthd")
}

#[test]
fn measures_containerd_and_cleans_up() {
    if !Path::new("/usr/bin/containerd").exists() || !Path::new("/usr/sbin/runc").exists() {
        eprintln!("skipped: containerd or runc is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_berth-bench"))
        .args(["cri", "--pods", "2", "--berthd"])
        .arg(berthd())
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The bench names its cgroups after its pid.
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let columns = |prefix: &str| -> Vec<String> {
        let line = report
            .lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no row {prefix:?} in\n{report}"));
        line.split("  ")
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .map(str::to_string)
            .collect()
    };
    // Columns: label, berthd, containerd, containerd/berthd.
    for row in ["start:", "stop + remove:"] {
        let cells = columns(row);
        assert!(cells[2].contains("ms (p95"), "containerd {row}: {report}");
    }
    let helpers = columns("helpers RSS, 2 pods");
    assert!(helpers[2].ends_with("(2 processes)"), "2 shims: {report}");
    assert!(report.contains("targets (berthd):"), "{report}");

    // Nothing of the run is left.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let tmp_path = tmp.path().to_str().unwrap();
    assert!(!mounts.contains(tmp_path), "mounts left under {tmp_path}");
    let cgroup = format!("berth-bench-cri-{pid}");
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap() {
        let dir = hierarchy.unwrap().path().join(&cgroup);
        assert!(!dir.exists(), "{} left", dir.display());
    }
    if let Some(state) = report
        .split_whitespace()
        .find_map(|word| word.strip_prefix("unix:///run/"))
    {
        let dir = Path::new("/run").join(state.trim_end_matches("/berth.sock"));
        assert!(!dir.exists(), "{} left", dir.display());
    }
    for proc in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(proc.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(!cmdline.contains(tmp_path), "process left: {cmdline}");
    }
}
