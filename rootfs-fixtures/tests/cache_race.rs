//! Many processes building the cached rootfs at once agree on one complete tree.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn concurrent_processes_build_the_cache_once() {
    let cache = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_berth-fixtures"))
                .arg("cached-rootfs")
                .env(berth_fixtures::CACHE_ENV, cache.path())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let paths: Vec<PathBuf> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success());
            PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
        })
        .collect();
    assert!(paths.windows(2).all(|pair| pair[0] == pair[1]), "{paths:?}");
    assert!(paths[0].starts_with(cache.path()));
    assert!(paths[0].join("bin/sh").is_file());
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1);
}
