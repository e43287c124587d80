//! The process spec of an exec in a container: the container's own process
//! (user, capabilities, rlimits, environment...) with other arguments, extra
//! environment, and a terminal or not; and starting it through the runtime
//! with the monitor's choice of stdio.

use std::os::fd::RawFd;

use berth_runtime::{
    container::{self as runtime, ExecOptions, Execed},
    StateRoot,
};
use oci_spec::runtime::Process;

use crate::monitor::error::{MonitorError, Result};

/// Container `id`'s process running `args` with `extra_env` added.
pub fn exec_process(
    root: &StateRoot,
    id: &str,
    args: &[String],
    extra_env: Option<&[String]>,
    terminal: bool,
) -> Result<Process> {
    let st = root.load(id)?;
    let mut process = st
        .spec
        .process()
        .clone()
        .ok_or_else(|| MonitorError::NoProcess(id.to_string()))?;
    process.set_args(Some(args.to_vec()));
    process.set_terminal(Some(terminal));
    process.set_console_size(None);
    if let Some(extra) = extra_env {
        let mut env = process.env().clone().unwrap_or_default();
        env.extend(extra.iter().cloned());
        process.set_env(Some(env));
    }
    Ok(process)
}

/// Starts `args` in container `id` (see [`exec_process`]) with `stdio` as
/// its fds 0-2 (ignored with a terminal: the runtime makes a pty).
pub fn spawn(
    root: &StateRoot,
    id: &str,
    args: &[String],
    extra_env: Option<&[String]>,
    terminal: bool,
    stdio: [RawFd; 3],
) -> Result<Execed> {
    let process = exec_process(root, id, args, extra_env, terminal)?;
    Ok(runtime::exec(
        root,
        id,
        &ExecOptions {
            process,
            pid_file: None,
            console_socket: None,
            preserve_fds: 0,
            stdio: Some(stdio),
        },
    )?)
}
