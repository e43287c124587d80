//! Shared by the `pod_*` tests (included with `#[path]`): a private berthd
//! whose kubelet watches `<state>/manifests`, manifests from
//! `tests/manifests/` handed to it atomically, polling of the pods'
//! status files, the `berth` CLI pointed at this berthd, and cleanup that
//! takes the manifests away first and waits until the kubelet has removed
//! its pods (so it cannot re-create one while the harness removes them).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_agent::kubelet::status::{self, PodStatus, State};
use berth_tests::daemon::Berthd;
use berth_tests::{binary, need_root};

/// How long a pod may take to get somewhere in these tests.
pub const WAIT: Duration = Duration::from_secs(60);

/// A berthd with its kubelet.
pub struct Kubelet {
    d: Option<Berthd>,
    pub manifests: PathBuf,
    pub status_dir: PathBuf,
}

/// `tests/manifests/<name>`.
pub fn manifest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("manifests")
        .join(name)
}

impl Kubelet {
    pub async fn start() -> Kubelet {
        let d = Berthd::start().await;
        let manifests = d.state().join("manifests");
        let status_dir = d.state().join("kubelet");
        let k = Kubelet {
            d: Some(d),
            manifests,
            status_dir,
        };
        let deadline = Instant::now() + WAIT;
        while !status::manager_path(&k.status_dir).exists() {
            assert!(
                Instant::now() < deadline,
                "kubelet did not start\n{}",
                k.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        k
    }

    /// A kubelet with `tests/manifests/<name>` handed to it; `None` (the
    /// test is skipped) when not root.
    pub async fn with(name: &str) -> Option<Kubelet> {
        if need_root() {
            return None;
        }
        let k = Kubelet::start().await;
        k.apply(name);
        Some(k)
    }

    pub fn d(&mut self) -> &mut Berthd {
        self.d.as_mut().expect("berthd")
    }

    pub fn log(&self) -> String {
        self.d.as_ref().map(Berthd::log).unwrap_or_default()
    }

    /// Hands `tests/manifests/<name>` to the kubelet; its path there.
    pub fn apply(&self, name: &str) -> PathBuf {
        let text = std::fs::read_to_string(manifest(name)).expect("manifest");
        self.apply_text(name, &text)
    }

    /// Hands `tests/manifests/<name>` to the kubelet with `placeholder`
    /// replaced by `value`; its path there.
    pub fn apply_with(&self, name: &str, placeholder: &str, value: &str) -> PathBuf {
        let text = std::fs::read_to_string(manifest(name)).expect("manifest");
        self.apply_text(name, &text.replace(placeholder, value))
    }

    /// Writes `text` as the manifest `file` (atomically).
    pub fn apply_text(&self, file: &str, text: &str) -> PathBuf {
        let tmp = self.manifests.join(format!(".{file}.tmp"));
        let dest = self.manifests.join(file);
        std::fs::write(&tmp, text).expect("write manifest");
        std::fs::rename(&tmp, &dest).expect("rename manifest");
        dest
    }

    /// The pod's status, if the kubelet runs it.
    pub fn status(&self, pod: &str) -> Option<PodStatus> {
        status::read(&status::status_path(&self.status_dir, "default", pod)).ok()
    }

    /// Waits until `pred` holds for the pod; panics with the log and the
    /// last status after [`WAIT`].
    pub async fn wait_for(
        &self,
        pod: &str,
        what: &str,
        pred: impl Fn(&PodStatus) -> bool,
    ) -> PodStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.status(pod);
            if let Some(s) = &s {
                if pred(s) {
                    return s.clone();
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "pod {pod}: not {what} in time; last status:\n{}\nberthd log tail:\n{}",
                    serde_json::to_string_pretty(&s).unwrap_or_default(),
                    tail(&self.log(), 60)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the pod is gone (no status file).
    pub async fn wait_gone(&self, pod: &str) {
        let deadline = Instant::now() + WAIT;
        while self.status(pod).is_some() {
            assert!(
                Instant::now() < deadline,
                "pod {pod} not removed\n{}",
                tail(&self.log(), 60)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Removes the manifest `file` and waits for `pod` to go.
    pub async fn delete(&self, file: &str, pod: &str) {
        let _ = std::fs::remove_file(self.manifests.join(file));
        self.wait_gone(pod).await;
    }

    /// Runs `berth ARGS` against this berthd.
    pub fn berth(&self, args: &[&str]) -> Output {
        let d = self.d.as_ref().expect("berthd");
        Command::new(binary("berth"))
            .arg("--socket")
            .arg(d.state().parent().expect("dir").join("berth.sock"))
            .arg("--state")
            .arg(d.state())
            .arg("--root")
            .arg(d.root())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run berth")
    }

    /// ExecSync `sh -c script` in the pod's container `c`: its stdout.
    pub async fn sh(&mut self, pod: &str, c: &str, script: &str) -> (i32, String) {
        let id = self
            .status(pod)
            .and_then(|s| s.container(c).and_then(|v| v.container_id.clone()))
            .expect("container id");
        let (code, out, _) = self.d().sh(&id, script).await;
        (code, out)
    }

    /// Takes every manifest away, waits for the pods to go, stops berthd.
    pub async fn shutdown(mut self) {
        self.take_manifests_back();
        if let Some(d) = self.d.take() {
            d.shutdown().await;
        }
    }

    fn take_manifests_back(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.manifests) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let deadline = Instant::now() + WAIT;
        while !status::read_all(&self.status_dir).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        if self.d.is_some() {
            self.take_manifests_back();
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether the pod's container `c` is running.
pub fn running(s: &PodStatus, c: &str) -> bool {
    s.container(c)
        .is_some_and(|v| matches!(v.state, State::Running { .. }))
}

/// The exit code of the pod's container `c`, once terminated for good.
pub fn terminated(s: &PodStatus, c: &str) -> Option<i32> {
    match &s.container(c)?.state {
        State::Terminated(t) => Some(t.exit_code),
        _ => None,
    }
}
