//! The runtime bench end to end against runc: it measures runc, shows a fake
//! berth and crun-on-v1 as n/a, and leaves nothing behind.

use std::process::Command;

#[test]
fn measures_runc_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_berth-bench"))
        .args([
            "runtime",
            "--samples",
            "2",
            "--batch",
            "3",
            "--workers",
            "2",
        ])
        // A binary that exits 0 without running anything must not be measured.
        .args(["--berth", "/bin/true"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let row = |case: &str| {
        report
            .lines()
            .find(|line| line.starts_with(case))
            .unwrap_or_else(|| panic!("no row {case} in\n{report}"))
            .to_string()
    };
    for case in [
        "run /bin/true",
        "create",
        "start",
        "delete",
        "exec /bin/true",
        "3 x run, sequential",
        "3 x run, 2 workers",
    ] {
        let line = row(case);
        assert!(line.contains("ms (p90"), "runc not measured: {line}");
        assert!(
            line.contains("n/a (run exited 0 but ran nothing)"),
            "{line}"
        );
    }
    assert!(report.contains("berth/runc"));
    // Everything the bench made (bundles, state roots, logs) is gone.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
