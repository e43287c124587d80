//! Cgroup resources: limits seen by the kernel and their effect on the
//! container (OOM kill, pids limit), on cgroup v1 or v2.

use berth_tests::*;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
};

fn read_cg(dirs: &[std::path::PathBuf], v1: &str, v2: &str) -> String {
    for d in dirs {
        for f in [v1, v2] {
            if let Ok(s) = std::fs::read_to_string(d.join(f)) {
                return s.trim().to_string();
            }
        }
    }
    panic!("neither {v1} nor {v2} found in {dirs:?}");
}

#[test]
fn memory_limit_leads_to_an_oom_kill() {
    if need_root() {
        return;
    }
    let rt = Runtime::new();
    // dd touches its whole 100 MiB buffer.
    let mut b = sh_bundle("dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null; echo rc=$?");
    edit(&mut b, |b| {
        let mem = LinuxMemoryBuilder::default()
            .limit(32i64 << 20)
            .swap(32i64 << 20)
            .build()
            .unwrap();
        let r = LinuxResourcesBuilder::default()
            .memory(mem)
            .build()
            .unwrap();
        linux_mut(b).set_resources(Some(r));
    });
    let (code, out, err) = rt.run(&unique_id("oom"), &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "rc=137",
        "dd must be OOM-killed (SIGKILL): {err}"
    );
}

#[test]
fn pids_limit_stops_forks() {
    if need_root() {
        return;
    }
    let rt = Runtime::new();
    let mut b = sh_bundle("for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done 2>&1; kill $(jobs -p) 2>/dev/null; echo end");
    edit(&mut b, |b| {
        let r = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(6i64).build().unwrap())
            .build()
            .unwrap();
        linux_mut(b).set_resources(Some(r));
    });
    let (_, out, err) = rt.run(&unique_id("pids"), &b);
    let all = format!("{out}{err}");
    assert!(
        all.contains("fork"),
        "forks beyond pids.max must fail: {all}"
    );
}

#[test]
fn cpu_and_memory_settings_reach_the_kernel() {
    if need_root() {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::temp(&["sleep", "1000"]).unwrap();
    edit(&mut b, |b| {
        let cpu = LinuxCpuBuilder::default()
            .shares(512u64)
            .quota(50_000i64)
            .period(100_000u64)
            .cpus("0")
            .build()
            .unwrap();
        let mem = LinuxMemoryBuilder::default()
            .limit(64i64 << 20)
            .build()
            .unwrap();
        let pids = LinuxPidsBuilder::default().limit(100i64).build().unwrap();
        let r = LinuxResourcesBuilder::default()
            .cpu(cpu)
            .memory(mem)
            .pids(pids)
            .build()
            .unwrap();
        linux_mut(b).set_resources(Some(r));
    });
    let c = rt.start(&unique_id("res"), &b);
    let dirs = cgroup_dirs_of(c.pid);
    assert!(!dirs.is_empty(), "the container has its own cgroup");
    assert_eq!(
        read_cg(&dirs, "memory.limit_in_bytes", "memory.max"),
        (64u64 << 20).to_string()
    );
    assert_eq!(read_cg(&dirs, "pids.max", "pids.max"), "100");
    assert_eq!(read_cg(&dirs, "cpuset.cpus", "cpuset.cpus"), "0");
    if is_cgroup_v2() {
        assert_eq!(read_cg(&dirs, "cpu.max", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(read_cg(&dirs, "cpu.shares", "cpu.shares"), "512");
        assert_eq!(
            read_cg(&dirs, "cpu.cfs_quota_us", "cpu.cfs_quota_us"),
            "50000"
        );
    }
    drop(c);
    for d in &dirs {
        assert!(!d.exists(), "{} removed on delete", d.display());
    }
}
