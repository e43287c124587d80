//! The pull bench end to end, as small as it gets: a tiny image, one
//! sample per subject, then nothing of it is left behind.

use std::path::Path;
use std::process::Command;

/// The programs the bench needs before it can measure anything.
const NEEDED: [&str; 2] = ["/usr/bin/docker-registry", "/usr/bin/skopeo"];

#[test]
fn pulls_with_both_and_cleans_up() {
    if let Some(missing) = NEEDED.iter().find(|path| !Path::new(path).exists()) {
        eprintln!("skipped: {missing} is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_berth-bench"))
        .args(["pull", "--samples", "1", "--layers", "2"])
        .args(["--files-per-layer", "3", "--size-mib", "2"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let row = report
        .lines()
        .find(|line| line.starts_with("pull + unpack "))
        .unwrap_or_else(|| panic!("no row in\n{report}"));
    let containerd = Path::new("/usr/bin/containerd").exists();
    let measured = if containerd { 2 } else { 1 };
    assert_eq!(row.matches("ms (p90").count(), measured, "{report}");
    if containerd {
        assert!(row.trim_end().ends_with('x'), "ratio: {report}");
    }
    assert!(report.contains("busybox + 2 layers x 3 files, 2.0 MiB of files"));
    assert!(report.contains("target: berth faster than containerd"));

    // Registry, containerd, stores: all under the work directory, gone.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let tmp_path = tmp.path().to_str().unwrap();
    assert!(!mounts.contains(tmp_path), "mounts left under {tmp_path}");
}
