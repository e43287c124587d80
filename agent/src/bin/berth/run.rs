//! `berth run FILE [--detach]`: checks the manifest (field errors name the
//! file and the field, before anything is created), copies it atomically
//! into berthd's manifest directory, shows the pods' progress (pod and
//! container states) until they are Ready, then streams their containers'
//! logs. Ctrl-C (or the pods finishing) removes the file and waits until
//! berthd has stopped the pods with their grace period and removed them.
//! `--detach` returns once the file is handed over.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use berth_agent::kubelet::status::{PodStatus, State};

use crate::kube::{self, Kube};
use crate::logs::{self, Cursor};
use crate::pods::ExitStatus;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The manifest (YAML or JSON; Pods and the ConfigMaps and Secrets they use).
    file: PathBuf,
    /// Hand the pods over to berthd and return.
    #[arg(short, long)]
    detach: bool,
}

type Key = (String, String);

/// One line about a pod's progress.
fn progress(p: &PodStatus) -> String {
    let states: Vec<String> = p
        .init_containers
        .iter()
        .chain(&p.containers)
        .map(|c| {
            let s = match &c.state {
                State::Waiting { reason, .. } => reason.clone(),
                State::Running { .. } if c.ready => "Running, ready".into(),
                State::Running { .. } => "Running".into(),
                State::Terminated(t) => format!("{} ({})", t.reason, t.exit_code),
            };
            format!("{}: {s}", c.name)
        })
        .collect();
    format!("pod/{} {} [{}]", p.name, p.status, states.join(", "))
}

/// Streams the logs of every container of the pods.
struct LogStreams {
    cursors: HashMap<(Key, String), Cursor>,
    prefix: bool,
}

impl LogStreams {
    fn poll(&mut self, pods: &[PodStatus]) -> anyhow::Result<bool> {
        let mut any = false;
        for p in pods {
            for c in p.init_containers.iter().chain(&p.containers) {
                let Some(path) = &c.log_path else { continue };
                let key = ((p.namespace.clone(), p.name.clone()), c.name.clone());
                let prefix = if self.prefix {
                    format!("[{}/{}] ", p.name, c.name)
                } else {
                    String::new()
                };
                if let Some(cur) = self.cursors.get_mut(&key) {
                    if cur.path != Path::new(path) {
                        for l in cur.lines()? {
                            logs::emit(&l, false, &prefix)?;
                        }
                        *cur = Cursor::new(path);
                    }
                }
                let cur = self.cursors.entry(key).or_insert_with(|| Cursor::new(path));
                for l in cur.lines()? {
                    any = true;
                    logs::emit(&l, false, &prefix)?;
                }
            }
        }
        Ok(any)
    }
}

/// How the watch ended.
enum Outcome {
    /// Every pod finished; whether all succeeded.
    Finished(bool),
}

async fn watch(k: &Kube, keys: &[Key], dest: &Path) -> anyhow::Result<Outcome> {
    let read =
        |k: &Kube| -> Vec<Option<PodStatus>> { keys.iter().map(|(ns, n)| k.pod(ns, n)).collect() };
    let mut last: HashMap<Key, String> = HashMap::new();
    // Progress until every pod is Ready (or done).
    loop {
        if let Some(e) = k.file_error(dest) {
            bail!("berthd rejected {}: {e}", dest.display());
        }
        let now = read(k);
        for p in now.iter().flatten() {
            let line = progress(p);
            let key = (p.namespace.clone(), p.name.clone());
            if last.get(&key) != Some(&line) {
                eprintln!("{line}");
                last.insert(key, line);
            }
        }
        if now
            .iter()
            .all(|p| p.as_ref().is_some_and(|p| p.ready() || p.is_terminal()))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let first = read(k);
    let containers: usize = first
        .iter()
        .flatten()
        .map(|p| p.init_containers.len() + p.containers.len())
        .sum();
    let mut streams = LogStreams {
        cursors: HashMap::new(),
        prefix: containers > 1,
    };
    loop {
        let now: Vec<PodStatus> = read(k).into_iter().flatten().collect();
        let wrote = streams.poll(&now)?;
        for p in &now {
            let line = progress(p);
            let key = (p.namespace.clone(), p.name.clone());
            if last.get(&key) != Some(&line) && !p.is_terminal() {
                eprintln!("{line}");
            }
            last.insert(key, line);
        }
        if !wrote && now.len() == keys.len() && now.iter().all(PodStatus::is_terminal) {
            for p in &now {
                eprintln!("{}", progress(p));
            }
            return Ok(Outcome::Finished(
                now.iter().all(|p| p.phase == "Succeeded"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Removes the file and waits for berthd to stop and remove the pods.
async fn take_back(k: &Kube, keys: &[Key], dest: &Path, grace: Duration) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(dest);
    let names: Vec<String> = keys.iter().map(|(_, n)| format!("pod/{n}")).collect();
    eprintln!(
        "stopping {} (grace period {}s)",
        names.join(", "),
        grace.as_secs()
    );
    if !k.wait_gone(keys, grace + Duration::from_secs(30)).await {
        bail!("{} still there after the grace period", names.join(", "));
    }
    eprintln!("removed {}", names.join(", "));
    Ok(())
}

pub async fn run(k: &Kube, a: &RunArgs) -> anyhow::Result<()> {
    let plans = kube::check_file(&a.file)?;
    let dir = k.manifest_dir()?;
    let keys: Vec<Key> = plans
        .iter()
        .map(|p| (p.namespace.clone(), p.name.clone()))
        .collect();
    let base = a.file.file_name();
    for (ns, n) in &keys {
        if let Some(p) = k.pod(ns, n) {
            if p.source.file_name() != base {
                bail!(
                    "pod {ns}/{n} already runs from {} (berth rm {n} first)",
                    p.source.display()
                );
            }
        }
    }
    let dest = kube::hand_over(&a.file, &dir)?;
    for (ns, n) in &keys {
        println!(
            "pod/{n} handed over to berthd (namespace {ns}, {})",
            dest.display()
        );
    }
    if a.detach {
        return Ok(());
    }
    let grace = plans
        .iter()
        .map(|p| p.termination_grace_period)
        .max()
        .unwrap_or_default();
    let outcome = tokio::select! {
        r = watch(k, &keys, &dest) => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!();
            take_back(k, &keys, &dest, grace).await?;
            return Ok(());
        }
    };
    let result = take_back(k, &keys, &dest, grace).await;
    match outcome? {
        Outcome::Finished(true) => result,
        Outcome::Finished(false) => {
            result?;
            Err(ExitStatus(1).into())
        }
    }
}
