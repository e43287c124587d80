//! Root tests against the real cgroupfs of the host (v1 or v2). Each test
//! uses its own top-level cgroup, removed by a guard even when it fails.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};

use oci_spec::runtime::LinuxResources;

use super::{CgroupError, CgroupManager};

/// A test cgroup `/berth-test-<name>-<pid>` (or a path below it), destroyed
/// with its top-level directory on drop.
struct TestCgroup {
    mgr: CgroupManager,
    top: CgroupManager,
}

impl TestCgroup {
    fn new(name: &str) -> Self {
        Self::nested(name, "")
    }

    /// A cgroup at `below` under the test's own top-level cgroup.
    fn nested(name: &str, below: &str) -> Self {
        let top = format!("/berth-test-{name}-{}", std::process::id());
        let path = format!("{top}{below}");
        let top = CgroupManager::new(Some(&top), "unused").unwrap();
        // Leftovers of an earlier, killed run.
        top.destroy().unwrap();
        let mgr = CgroupManager::new(Some(&path), "unused").unwrap();
        mgr.create().unwrap();
        Self { mgr, top }
    }

    /// Reads a control file of the cgroup; `v1_controller` names the v1
    /// hierarchy that holds it.
    fn read(&self, v1_controller: &str, file: &str) -> String {
        let dir = if self.mgr.is_v2() {
            PathBuf::from("/sys/fs/cgroup")
        } else {
            PathBuf::from("/sys/fs/cgroup").join(v1_controller)
        };
        let path = dir.join(self.mgr.path().trim_start_matches('/')).join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
            .trim()
            .to_string()
    }

    fn apply_json(&self, json: &str) -> Result<(), CgroupError> {
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        self.mgr.apply(&resources)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.top.destroy() {
            eprintln!("cleaning up {}: {e}", self.top.path());
        }
    }
}

/// A `sh -c` child that waits on stdin before running `script`, so the test
/// can move it into a cgroup first. Killed on drop.
struct Held {
    child: Option<Child>,
}

impl Held {
    fn spawn(script: &str) -> Self {
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("read _ ; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self { child: Some(child) }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Lets the script run.
    fn release(&mut self) {
        let child = self.child.as_mut().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }

    /// Waits for the first line the script prints.
    fn read_line(&mut self) -> String {
        let stdout = self.child.as_mut().unwrap().stdout.as_mut().unwrap();
        let mut line = String::new();
        // One byte at a time: nothing read past the line is lost.
        let mut reader = BufReader::with_capacity(1, stdout);
        reader.read_line(&mut line).unwrap();
        line.trim().to_string()
    }

    fn release_and_wait(mut self) -> Output {
        self.release();
        self.child.take().unwrap().wait_with_output().unwrap()
    }

    fn wait(mut self) -> ExitStatus {
        self.child.take().unwrap().wait().unwrap()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Moves a held child into `cg` and returns it.
fn held_in(cg: &TestCgroup, script: &str) -> Held {
    let held = Held::spawn(script);
    cg.mgr.add_process(held.pid()).unwrap();
    held
}

#[test]
fn lifecycle_create_add_list_kill_destroy() {
    let cg = TestCgroup::new("lifecycle");
    let a = held_in(&cg, "exec sleep 1000");
    let b = held_in(&cg, "exec sleep 1000");
    let mut pids = cg.mgr.pids().unwrap();
    pids.sort();
    let mut want = vec![a.pid(), b.pid()];
    want.sort();
    assert_eq!(pids, want);
    assert_eq!(cg.mgr.v2_dir_fd().is_some(), cg.mgr.is_v2());

    cg.mgr.kill_all(libc::SIGKILL).unwrap();
    assert_eq!(a.wait().signal(), Some(libc::SIGKILL));
    assert_eq!(b.wait().signal(), Some(libc::SIGKILL));
    assert_eq!(cg.mgr.pids().unwrap(), Vec::<i32>::new());

    cg.mgr.destroy().unwrap();
    assert!(cg.mgr.pids().unwrap().is_empty());
    // Idempotent: a missing cgroup is fine.
    cg.mgr.destroy().unwrap();
}

#[test]
fn destroy_kills_leftover_processes() {
    let cg = TestCgroup::new("leftovers");
    let mut held = held_in(&cg, "sleep 1000 & sleep 1000 & echo started; wait");
    held.release();
    assert_eq!(held.read_line(), "started");
    assert_eq!(cg.mgr.pids().unwrap().len(), 3);
    cg.mgr.destroy().unwrap();
    assert_eq!(held.wait().signal(), Some(libc::SIGKILL));
    // Reconstructed from the path alone, it sees the same (gone) cgroup.
    let again = CgroupManager::new(Some(cg.mgr.path()), "other").unwrap();
    assert_eq!(again.path(), cg.mgr.path());
    again.destroy().unwrap();
}

#[test]
fn freeze_and_thaw() {
    let cg = TestCgroup::new("freeze");
    let _held = held_in(&cg, "exec sleep 1000");
    assert!(!cg.mgr.is_frozen().unwrap());
    cg.mgr.freeze().unwrap();
    assert!(cg.mgr.is_frozen().unwrap());
    cg.mgr.thaw().unwrap();
    assert!(!cg.mgr.is_frozen().unwrap());
}

#[test]
fn cpu_resources_are_written() {
    let cg = TestCgroup::new("cpu");
    cg.apply_json(r#"{"cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0","mems":"0"}}"#)
        .unwrap();
    if cg.mgr.is_v2() {
        assert_eq!(cg.read("", "cpu.weight"), "20");
        assert_eq!(cg.read("", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(cg.read("cpu", "cpu.shares"), "512");
        assert_eq!(cg.read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(cg.read("cpu", "cpu.cfs_period_us"), "100000");
    }
    assert_eq!(cg.read("cpuset", "cpuset.cpus"), "0");
    assert_eq!(cg.read("cpuset", "cpuset.mems"), "0");

    cg.apply_json(r#"{"cpu":{"quota":-1}}"#).unwrap();
    if cg.mgr.is_v2() {
        assert_eq!(cg.read("", "cpu.max"), "max 100000");
    } else {
        assert_eq!(cg.read("cpu", "cpu.cfs_quota_us"), "-1");
    }
}

#[test]
fn memory_resources_are_written() {
    let cg = TestCgroup::new("memory");
    let (mib32, mib64, mib128) = (32 << 20, 64 << 20, 128 << 20);
    cg.apply_json(&format!(
        r#"{{"memory":{{"limit":{mib64},"reservation":{mib32},"swap":{mib128},"kernel":1}}}}"#
    ))
    .unwrap();
    if cg.mgr.is_v2() {
        assert_eq!(cg.read("", "memory.max"), mib64.to_string());
        assert_eq!(cg.read("", "memory.low"), mib32.to_string());
        assert_eq!(cg.read("", "memory.swap.max"), mib64.to_string());
    } else {
        assert_eq!(
            cg.read("memory", "memory.limit_in_bytes"),
            mib64.to_string()
        );
        assert_eq!(
            cg.read("memory", "memory.soft_limit_in_bytes"),
            mib32.to_string()
        );
        assert_eq!(
            cg.read("memory", "memory.memsw.limit_in_bytes"),
            mib128.to_string()
        );
    }
    // Lowering both keeps memory <= memory+swap at every step on v1.
    cg.apply_json(&format!(
        r#"{{"memory":{{"limit":{mib32},"swap":{mib32}}}}}"#
    ))
    .unwrap();
    let stats = cg.mgr.stats().unwrap();
    assert_eq!(stats.memory_limit_bytes, Some(mib32));
}

#[test]
fn swap_below_limit_is_refused_on_v2() {
    let cg = TestCgroup::new("swapbad");
    let res = cg.apply_json(r#"{"memory":{"limit":67108864,"swap":33554432}}"#);
    if cg.mgr.is_v2() {
        let err = res.unwrap_err();
        assert!(err.to_string().contains("memory+swap"), "{err}");
    } else {
        // The kernel refuses it on v1, naming the file.
        let err = res.unwrap_err();
        assert!(err.to_string().contains("memory."), "{err}");
    }
}

#[test]
fn pids_limit_makes_fork_fail() {
    let cg = TestCgroup::new("pids");
    cg.apply_json(r#"{"pids":{"limit":1}}"#).unwrap();
    assert_eq!(cg.read("pids", "pids.max"), "1");
    let out = held_in(&cg, "/bin/true || exit 3; echo forked").release_and_wait();
    assert!(!out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("forked"));
    cg.apply_json(r#"{"pids":{"limit":0}}"#).unwrap();
    assert_eq!(cg.read("pids", "pids.max"), "max");
}

#[test]
fn memory_limit_oom_kills_and_counts() {
    let cg = TestCgroup::new("oom");
    let mib32 = 32 << 20;
    cg.apply_json(&format!(
        r#"{{"memory":{{"limit":{mib32},"swap":{mib32}}}}}"#
    ))
    .unwrap();
    assert_eq!(cg.mgr.oom_kill_count().unwrap(), 0);
    let out = held_in(&cg, "exec dd if=/dev/zero of=/dev/null bs=100M count=1").release_and_wait();
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{out:?}");
    assert!(cg.mgr.oom_kill_count().unwrap() > 0);
}

#[test]
fn stats_are_nonzero_for_a_busy_cgroup() {
    let cg = TestCgroup::new("stats");
    cg.apply_json(r#"{"memory":{"limit":268435456}}"#).unwrap();
    let mut held = held_in(
        &cg,
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done; exec sleep 1000",
    );
    held.release();
    assert_eq!(held.read_line(), "done");
    let stats = cg.mgr.stats().unwrap();
    assert!(stats.cpu_usage_ns > 0, "{stats:?}");
    assert!(stats.cpu_user_ns + stats.cpu_system_ns > 0, "{stats:?}");
    assert!(stats.memory_usage_bytes > 0, "{stats:?}");
    assert!(stats.memory_working_set_bytes <= stats.memory_usage_bytes);
    assert_eq!(stats.memory_limit_bytes, Some(268_435_456));
    assert_eq!(stats.pids_current, 1);
}

#[test]
fn deny_all_devices_keeps_the_defaults() {
    let cg = TestCgroup::new("devices");
    cg.apply_json(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#)
        .unwrap();
    let script = "head -c 1 /dev/zero >/dev/null && echo zero-ok; head -c 1 /dev/full >/dev/null && echo full-ok; exec head -c 1 /dev/kmsg";
    let out = held_in(&cg, script).release_and_wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("zero-ok") && stdout.contains("full-ok"),
        "{out:?}"
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(stderr.contains("Operation not permitted"), "{out:?}");

    // A second apply replaces the first list (v2: the attached program).
    cg.apply_json(
        r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":11,"access":"r"}]}"#,
    )
    .unwrap();
    let out = held_in(&cg, "exec 3</dev/kmsg && echo opened").release_and_wait();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("opened"),
        "{out:?}"
    );
}

#[test]
fn hugepage_limits_need_the_hugetlb_controller() {
    let cg = TestCgroup::new("hugetlb");
    let res = cg.apply_json(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#);
    let has_hugetlb = cg.mgr.is_v2() && cg.read("", "cgroup.controllers").contains("hugetlb")
        || !cg.mgr.is_v2() && PathBuf::from("/sys/fs/cgroup/hugetlb").exists();
    if has_hugetlb {
        res.unwrap();
        let file = if cg.mgr.is_v2() {
            "hugetlb.2MB.max"
        } else {
            "hugetlb.2MB.limit_in_bytes"
        };
        assert_eq!(cg.read("hugetlb", file), "4194304");
    } else {
        let err = res.unwrap_err();
        assert!(err.to_string().contains("hugepage limit"), "{err}");
    }
}

#[test]
fn block_io_weight_is_applied_when_available() {
    let cg = TestCgroup::new("blkio");
    cg.apply_json(r#"{"blockIO":{"weight":500}}"#).unwrap();
    if !cg.mgr.is_v2() && PathBuf::from("/sys/fs/cgroup/blkio/blkio.weight").exists() {
        assert_eq!(cg.read("blkio", "blkio.weight"), "500");
    }
}

#[test]
fn unified_map_needs_v2() {
    let cg = TestCgroup::new("unified");
    let res = cg.apply_json(r#"{"unified":{"pids.max":"7"}}"#);
    if cg.mgr.is_v2() {
        res.unwrap();
        assert_eq!(cg.read("", "pids.max"), "7");
        let bad = cg.apply_json(r#"{"unified":{"cgroup.procs":"1"}}"#);
        assert!(bad.is_err());
    } else {
        let err = res.unwrap_err();
        assert!(err.to_string().contains("unified"), "{err}");
    }
}

#[test]
fn refused_write_names_the_file_and_value() {
    let cg = TestCgroup::new("refused");
    let err = cg.apply_json(r#"{"cpu":{"cpus":"999"}}"#).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("cpuset.cpus") && msg.contains("999"), "{msg}");
    assert!(msg.contains(cg.mgr.path()), "{msg}");
}

#[test]
fn nested_cgroup_gets_controllers_and_cpuset() {
    let cg = TestCgroup::nested("nested", "/a/b");
    if cg.mgr.is_v2() {
        let controllers = cg.read("", "cgroup.controllers");
        for c in ["cpu", "memory", "pids"] {
            assert!(controllers.contains(c), "{controllers}");
        }
    } else {
        assert!(!cg.read("cpuset", "cpuset.cpus").is_empty());
        assert!(!cg.read("cpuset", "cpuset.mems").is_empty());
    }
    cg.apply_json(r#"{"memory":{"limit":67108864},"pids":{"limit":10}}"#)
        .unwrap();
    let out = held_in(&cg, "echo in").release_and_wait();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn kill_all_passes_other_signals_on() {
    let cg = TestCgroup::new("sigterm");
    let held = held_in(&cg, "exec sleep 1000");
    cg.mgr.kill_all(libc::SIGTERM).unwrap();
    assert_eq!(held.wait().signal(), Some(libc::SIGTERM));
    let err = cg.mgr.kill_all(0).unwrap_err();
    assert!(matches!(err, CgroupError::InvalidValue { .. }), "{err}");
}
