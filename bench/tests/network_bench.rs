//! The network bench end to end, as small as it gets: one sample of each
//! case for both paths, then nothing of it is left on the host.

use std::process::Command;

#[test]
fn measures_both_paths_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_berth-bench"))
        .args(["network", "--samples", "1", "--concurrency", "2"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    for case in [
        "setup ",
        "teardown ",
        "setup + teardown ",
        "2 pods, concurrent setup ",
        "2 pods, concurrent teardown ",
        "2 pods, setup + teardown ",
    ] {
        let line = report
            .lines()
            .find(|line| line.starts_with(case))
            .unwrap_or_else(|| panic!("no row {case:?} in\n{report}"));
        assert_eq!(line.matches("ms (p90").count(), 2, "both paths: {line}");
        assert!(line.trim_end().ends_with('x'), "ratio: {line}");
    }
    assert!(report.contains("cni/builtin"), "{report}");
    assert!(report.contains("target: builtin at least 5x faster than cni"));

    // Work directory, pod namespaces and their mounts are gone; the bridges
    // and rule tables lived in the bench's own node namespace.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let tmp_path = tmp.path().to_str().unwrap();
    assert!(!mounts.contains(tmp_path), "mounts left under {tmp_path}");
    for bridge in ["bbench-b0", "bbench-c0"] {
        assert!(!std::path::Path::new("/sys/class/net").join(bridge).exists());
    }
}
