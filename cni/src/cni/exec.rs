//! Running one CNI plugin binary: the `CNI_*` environment, the config on
//! stdin, a time limit, and turning failures into errors that name the
//! plugin and the command.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::conf::find_plugin;
use crate::error::NetError;

/// The `CNI_*` parameters of one call.
#[derive(Debug, Clone)]
pub(crate) struct Invocation<'a> {
    pub container_id: &'a str,
    pub netns: &'a str,
    pub ifname: &'a str,
    /// `CNI_ARGS`: `;`-separated `KEY=VALUE` pairs.
    pub args: &'a str,
    pub bin_dirs: &'a [PathBuf],
    pub timeout: Duration,
}

/// Runs plugin `plugin` with `command` (`ADD`, `DEL`, `CHECK`, `VERSION`)
/// and `config` on stdin; returns its parsed stdout (`None` when empty).
pub(crate) async fn run(
    plugin: &str,
    command: &'static str,
    inv: &Invocation<'_>,
    config: &Value,
) -> Result<Option<Value>, NetError> {
    let fail = |reason: String| NetError::CniPlugin {
        plugin: plugin.to_string(),
        command,
        reason,
    };
    let path = find_plugin(plugin, inv.bin_dirs)
        .ok_or_else(|| fail(format!("not found in {:?}", inv.bin_dirs)))?;
    let cni_path = std::env::join_paths(inv.bin_dirs)
        .map_err(|e| fail(format!("bad plugin directory list: {e}")))?;
    let input = serde_json::to_vec(config).map_err(|e| fail(format!("encoding config: {e}")))?;
    let mut cmd = Command::new(&path);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CNI_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", inv.container_id)
        .env("CNI_NETNS", inv.netns)
        .env("CNI_IFNAME", inv.ifname)
        .env("CNI_ARGS", inv.args)
        .env("CNI_PATH", cni_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot start {}: {e}", path.display())))?;
    let output = tokio::time::timeout(inv.timeout, async {
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(&input).await?;
        }
        child.wait_with_output().await
    })
    .await
    .map_err(|_| fail(format!("timed out after {:?}", inv.timeout)))?
    .map_err(|e| fail(format!("running {}: {e}", path.display())))?;

    if !output.status.success() {
        return Err(fail(describe_failure(&output)));
    }
    if output.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&output.stdout)
        .map(Some)
        .map_err(|e| {
            fail(format!(
                "unparsable output ({e}): {}",
                lossy(&output.stdout)
            ))
        })
}

/// The spec's error object (`code`, `msg`, `details`) if the plugin printed
/// one, else its stderr and exit status.
fn describe_failure(output: &std::process::Output) -> String {
    let parsed: Option<Value> = serde_json::from_slice(&output.stdout).ok();
    if let Some(err) = parsed.as_ref().and_then(Value::as_object) {
        let code = err.get("code").and_then(Value::as_u64).unwrap_or(0);
        let msg = err.get("msg").and_then(Value::as_str).unwrap_or("");
        let details = err.get("details").and_then(Value::as_str).unwrap_or("");
        if details.is_empty() {
            return format!("error code {code}: {msg}");
        }
        return format!("error code {code}: {msg} ({details})");
    }
    let stderr = lossy(&output.stderr);
    let stdout = lossy(&output.stdout);
    format!(
        "{}: {}",
        output.status,
        if stderr.is_empty() { stdout } else { stderr }
    )
}

fn lossy(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes).trim().to_string();
    match text.char_indices().nth(500) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}
