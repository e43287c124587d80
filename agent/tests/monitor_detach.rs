//! The monitor is detached from whoever spawned it: it survives `kill -9` of
//! the spawner, runs in its own session, refuses a second monitor on its
//! socket, and stays small with a running pod (its RSS and PSS are printed).

mod monitor_common;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use berth_agent::monitor::{protocol::CreateRequest, records, spawn};
use monitor_common::{next_event, Pod};

/// The spawner process, killed on drop.
struct Spawner(Child);

impl Drop for Spawner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fields of /proc/PID/stat after the command name (field 3 is index 0).
fn stat_fields(pid: i32) -> Vec<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    s[s.rfind(')').unwrap() + 2..]
        .split(' ')
        .map(String::from)
        .collect()
}

/// A `Key: N kB` value from a /proc file.
fn kb(file: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("{key} in {file}"));
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn outlives_a_killed_spawner_and_stays_small() {
    let mut pod = Pod::new("mon-detach");
    let cfg = pod.spawn_config();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" --pod-id "$1" --state-dir "$2" --run-dir "$3" --runtime-root "$4" && echo ready && exec sleep 1000"#)
        .arg(&cfg.binary)
        .arg(&cfg.pod_id)
        .arg(&cfg.state_dir)
        .arg(&cfg.run_dir)
        .arg(&cfg.runtime_root)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut spawner = Spawner(child);
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    assert_eq!(
        line, "ready\n",
        "the spawner returns once the monitor listens"
    );
    pod.connect().await;

    let spawner_pid = spawner.0.id() as i32;
    let fields = stat_fields(pod.monitor_pid);
    assert_ne!(fields[1], spawner_pid.to_string(), "reparented");
    assert_eq!(fields[3], pod.monitor_pid.to_string(), "own session");
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(spawner_pid, libc::SIGKILL) };
    spawner.0.wait().unwrap();

    // A second monitor for the same run dir is refused.
    let err = spawn(&cfg).await.expect_err("second monitor");
    assert!(err.to_string().contains("already listens"), "{err}");

    let mut events = pod.client().subscribe();
    let pause = pod.client().start_pause(&pod.pause_config()).await.unwrap();
    let bundle = pod.bundle("s1", "sleep 1000", Some(pause));
    let pid = pod
        .client()
        .create(&CreateRequest {
            id: "s1".into(),
            bundle: bundle.dir().to_path_buf(),
            log_path: pod.log_path("s1"),
            ..Default::default()
        })
        .await
        .unwrap();
    pod.client().start("s1").await.unwrap();
    next_event(&mut events).await;
    let exec = berth_agent::monitor::protocol::ExecSyncRequest {
        id: "s1".into(),
        args: vec!["true".into()],
        env: None,
        timeout_secs: 5,
    };
    assert_eq!(pod.client().exec_sync(&exec).await.unwrap().exit_code, 0);

    let m = pod.monitor_pid;
    let rss = kb(&format!("/proc/{m}/status"), "VmRSS:");
    let pss = kb(&format!("/proc/{m}/smaps_rollup"), "Pss:");
    let anon = kb(&format!("/proc/{m}/status"), "RssAnon:");
    let pss_anon = kb(&format!("/proc/{m}/smaps_rollup"), "Pss_Anon:");
    let pause_pss = kb(&format!("/proc/{pause}/smaps_rollup"), "Pss:");
    eprintln!(
        "monitor with a running pod: VmRSS {rss} kB (RssAnon {anon} kB), \
         Pss {pss} kB (Pss_Anon {pss_anon} kB); pause Pss {pause_pss} kB"
    );
    assert!(rss < 16 * 1024, "monitor RSS {rss} kB");

    let disk = records::read_pod(&pod.state_dir()).unwrap().unwrap();
    assert_eq!((disk.monitor_pid, disk.pause_pid), (m, Some(pause)));
    assert!(disk.containers[0].started_at.is_some());
    pod.shutdown_and_check(&[pause, pid]).await;
}
