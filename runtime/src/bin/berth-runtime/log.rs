//! Diagnostics: tracing to stderr, and errors also appended to `--log` in
//! runc's text or JSON form (shims and podman read that file).

use std::io::Write;

use crate::cli::{Cli, LogFormat};

/// Sets up tracing on stderr (warnings, or debug with `--debug`).
pub fn init(debug: bool) {
    let level = if debug { "debug" } else { "warn" };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .try_init();
}

/// Reports a fatal error on stderr and in the `--log` file.
pub fn error(cli: &Cli, msg: &str) {
    eprintln!("berth-runtime: {msg}");
    let Some(path) = &cli.log else { return };
    let time = berth_runtime::time::rfc3339_nano(std::time::SystemTime::now());
    let line = match cli.log_format {
        LogFormat::Json => {
            serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
        }
        LogFormat::Text => format!("time={time:?} level=error msg={msg:?}"),
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}
