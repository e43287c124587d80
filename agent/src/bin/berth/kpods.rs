//! Manifest pods by name, as kubectl shows them: `berth pods` (NAME READY
//! STATUS RESTARTS AGE IP), `berth describe POD`, `berth stop POD` (a
//! graceful stop; the manifest is kept, hidden, as `.<file>.stopped`) and
//! `berth rm POD` (a graceful stop, and the manifest goes). A file that
//! holds several pods stops and goes as a whole.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use berth_agent::kubelet::status::{ContainerView, PodStatus, State, Terminated};
use berth_agent::manifest::{self, PlanOptions};

use crate::kube::Kube;
use crate::table;

#[derive(clap::Args)]
pub struct PodsArgs {
    /// The CRI view: every pod sandbox with its id (like `berth sandboxes`).
    #[arg(long)]
    pub cri: bool,
    /// Only pods with this label (with --cri; `key=value`, repeatable).
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Only this namespace.
    #[arg(short, long)]
    pub namespace: Option<String>,
}

/// `2d`, `5m`: how long ago `ns` was.
fn ago(ns: i64) -> String {
    table::age(ns)
}

fn restarts(p: &PodStatus) -> String {
    let n = p.restarts();
    let last = p
        .containers
        .iter()
        .filter_map(|c| c.last_state.as_ref().map(|t| t.finished_at))
        .max();
    match last {
        Some(t) if n > 0 => format!("{n} ({} ago)", ago(t)),
        _ => n.to_string(),
    }
}

/// The stopped manifests in `dir`: (file, pods as (namespace, name)).
fn stopped(dir: &Path) -> Vec<(PathBuf, Vec<(String, String)>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') && n.ends_with(".stopped"))
        })
        .filter_map(|p| {
            let plans = manifest::load_file(&p, &PlanOptions::default()).ok()?;
            let pods = plans.into_iter().map(|p| (p.namespace, p.name)).collect();
            Some((p, pods))
        })
        .collect()
}

/// `berth pods`.
pub fn list(k: &Kube, a: &PodsArgs) -> anyhow::Result<()> {
    let ns_ok = |ns: &str| a.namespace.as_deref().is_none_or(|n| n == ns);
    let mut rows: Vec<Vec<String>> = k
        .pods()
        .into_iter()
        .filter(|p| ns_ok(&p.namespace))
        .map(|p| {
            let ready = p.containers.iter().filter(|c| c.ready).count();
            vec![
                p.name.clone(),
                p.namespace.clone(),
                format!("{ready}/{}", p.containers.len()),
                p.status.clone(),
                restarts(&p),
                ago(p.created_at),
                p.pod_ip.clone().unwrap_or_else(|| "<none>".into()),
            ]
        })
        .collect();
    if let Ok(dir) = k.manifest_dir() {
        for (_, pods) in stopped(&dir) {
            for (ns, name) in pods.into_iter().filter(|(ns, _)| ns_ok(ns)) {
                rows.push(vec![
                    name,
                    ns,
                    "0/0".into(),
                    "Stopped".into(),
                    "0".into(),
                    "-".into(),
                    "<none>".into(),
                ]);
            }
        }
    }
    table::print(
        &[
            "NAME",
            "NAMESPACE",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
        ],
        &rows,
    );
    Ok(())
}

fn terminated_lines(out: &mut String, t: &Terminated, indent: &str) {
    out.push_str(&format!("{indent}Reason:       {}\n", t.reason));
    out.push_str(&format!("{indent}Exit Code:    {}\n", t.exit_code));
    out.push_str(&format!(
        "{indent}Started:      {} ago\n",
        ago(t.started_at)
    ));
    out.push_str(&format!(
        "{indent}Finished:     {} ago\n",
        ago(t.finished_at)
    ));
    if !t.message.is_empty() {
        out.push_str(&format!(
            "{indent}Message:      {}\n",
            t.message
                .trim_end()
                .replace('\n', &format!("\n{indent}              "))
        ));
    }
}

fn container_text(c: &ContainerView) -> String {
    let mut out = format!("  {}:\n", c.name);
    if let Some(id) = &c.container_id {
        out.push_str(&format!("    Container ID:   {id}\n"));
    }
    out.push_str(&format!("    Image:          {}\n", c.image));
    match &c.state {
        State::Waiting { reason, message } => {
            out.push_str("    State:          Waiting\n");
            out.push_str(&format!("      Reason:       {reason}\n"));
            if !message.is_empty() {
                out.push_str(&format!("      Message:      {message}\n"));
            }
        }
        State::Running { started_at } => {
            out.push_str("    State:          Running\n");
            out.push_str(&format!("      Started:      {} ago\n", ago(*started_at)));
        }
        State::Terminated(t) => {
            out.push_str("    State:          Terminated\n");
            terminated_lines(&mut out, t, "      ");
        }
    }
    if let Some(t) = &c.last_state {
        out.push_str("    Last State:     Terminated\n");
        terminated_lines(&mut out, t, "      ");
    }
    out.push_str(&format!("    Ready:          {}\n", c.ready));
    out.push_str(&format!("    Started:        {}\n", c.started));
    out.push_str(&format!("    Restart Count:  {}\n", c.restart_count));
    for p in &c.probes {
        let last = p
            .last_probe_at
            .map(|t| format!(", last {} ago", ago(t)))
            .unwrap_or_default();
        out.push_str(&format!(
            "    {:<15} {} ({} passed, {} failed{last})\n",
            format!("{}:", p.kind),
            p.result,
            p.successes,
            p.failures
        ));
        if !p.message.is_empty() {
            out.push_str(&format!("      Last failure: {}\n", p.message));
        }
    }
    out
}

/// `berth describe POD`.
pub fn describe(k: &Kube, namespace: &str, name: &str) -> anyhow::Result<()> {
    let p = crate::kube::need_pod(k, namespace, name)?;
    let mut out = String::new();
    out.push_str(&format!("Name:         {}\n", p.name));
    out.push_str(&format!("Namespace:    {}\n", p.namespace));
    out.push_str(&format!("UID:          {}\n", p.uid));
    out.push_str(&format!("Manifest:     {}\n", p.source.display()));
    out.push_str(&format!("Status:       {} ({})\n", p.phase, p.status));
    out.push_str(&format!(
        "IP:           {}\n",
        p.pod_ip.as_deref().unwrap_or("<none>")
    ));
    if let Some(id) = &p.sandbox_id {
        out.push_str(&format!("Sandbox:      {id}\n"));
    }
    out.push_str(&format!("Age:          {}\n", ago(p.created_at)));
    if let Some(m) = &p.message {
        out.push_str(&format!("Message:      {m}\n"));
    }
    if !p.init_containers.is_empty() {
        out.push_str("Init Containers:\n");
        p.init_containers
            .iter()
            .for_each(|c| out.push_str(&container_text(c)));
    }
    out.push_str("Containers:\n");
    p.containers
        .iter()
        .for_each(|c| out.push_str(&container_text(c)));
    out.push_str("Conditions:\n  Type              Status\n");
    for c in &p.conditions {
        let s = if c.status { "True" } else { "False" };
        out.push_str(&format!("  {:<17} {s}\n", c.kind));
    }
    out.push_str("Events:\n");
    let rows: Vec<Vec<String>> = p
        .events
        .iter()
        .map(|e| {
            let what = match &e.container {
                Some(c) => format!("{c}: {}", e.message),
                None => e.message.clone(),
            };
            vec![e.kind.clone(), e.reason.clone(), ago(e.at), what]
        })
        .collect();
    print!("{out}");
    table::print(&["  TYPE", "REASON", "AGE", "MESSAGE"], &indent(rows));
    Ok(())
}

fn indent(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    for r in &mut rows {
        if let Some(first) = r.first_mut() {
            *first = format!("  {first}");
        }
    }
    rows
}

/// The pods of the manifest `file` (by their status files).
fn pods_of(k: &Kube, file: &Path) -> Vec<(String, String)> {
    k.pods()
        .into_iter()
        .filter(|p| p.source == file)
        .map(|p| (p.namespace, p.name))
        .collect()
}

async fn wait(k: &Kube, pods: &[(String, String)]) -> anyhow::Result<()> {
    if !k.wait_gone(pods, Duration::from_secs(330)).await {
        anyhow::bail!("the pods did not stop in time");
    }
    Ok(())
}

/// `berth stop POD`: `false` when no manifest pod has that name.
pub async fn stop(k: &Kube, namespace: &str, name: &str) -> anyhow::Result<bool> {
    let Some(p) = k.pod(namespace, name) else {
        return Ok(false);
    };
    let file = p.source.clone();
    let pods = pods_of(k, &file);
    let base = file
        .file_name()
        .and_then(|n| n.to_str())
        .context("manifest without a file name")?;
    let hidden = file.with_file_name(format!(".{base}.stopped"));
    std::fs::rename(&file, &hidden)
        .with_context(|| format!("rename {} to {}", file.display(), hidden.display()))?;
    wait(k, &pods).await?;
    for (_, n) in &pods {
        println!("pod/{n} stopped");
    }
    Ok(true)
}

/// `berth rm POD`: `false` when no manifest pod (running or stopped) has
/// that name.
pub async fn rm(k: &Kube, namespace: &str, name: &str) -> anyhow::Result<bool> {
    if let Some(p) = k.pod(namespace, name) {
        let pods = pods_of(k, &p.source);
        std::fs::remove_file(&p.source)
            .with_context(|| format!("remove {}", p.source.display()))?;
        wait(k, &pods).await?;
        for (_, n) in &pods {
            println!("pod/{n} removed");
        }
        return Ok(true);
    }
    let Ok(dir) = k.manifest_dir() else {
        return Ok(false);
    };
    let wanted = (namespace.to_string(), name.to_string());
    for (file, pods) in stopped(&dir) {
        if pods.contains(&wanted) {
            std::fs::remove_file(&file).with_context(|| format!("remove {}", file.display()))?;
            for (_, n) in &pods {
                println!("pod/{n} removed");
            }
            return Ok(true);
        }
    }
    Ok(false)
}
