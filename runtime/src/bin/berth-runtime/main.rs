//! `berth-runtime`: a runc-compatible command line over the berth runtime library.

mod cli;
mod foreground;
mod log;

use std::{path::Path, process::ExitCode, str::FromStr};

use anyhow::{bail, Context, Result};
use berth_runtime::{
    container::{self, CreateOptions, ExecOptions},
    StateRoot,
};
use clap::Parser;
use cli::{Cli, Command, CreateArgs, ExecArgs, Format};
use oci_spec::runtime::{Capability, Process, Spec};

fn main() -> ExitCode {
    let cli = Cli::parse();
    log::init(cli.debug);
    match run(&cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            log::error(&cli, &format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<i32> {
    let root = StateRoot::new(&cli.root);
    match &cli.command {
        Command::Create(a) => {
            if console_needed(a)? && a.console_socket.is_none() {
                bail!("process.terminal is set: --console-socket is required with create");
            }
            container::create(&root, &create_options(a))?;
            Ok(0)
        }
        Command::Start { id } => {
            container::start(&root, id)?;
            Ok(0)
        }
        Command::State { id } => {
            println!("{}", container::state_json(&root, id)?);
            Ok(0)
        }
        Command::Kill { all, id, signal } => {
            container::kill(&root, id, container::parse_signal(signal)?, *all)?;
            Ok(0)
        }
        Command::Delete { force, id } => {
            container::delete(&root, id, *force)?;
            Ok(0)
        }
        Command::Run {
            create,
            detach,
            keep,
        } => run_container(&root, create, *detach, *keep),
        Command::Exec(a) => exec(&root, a),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(&root, id, *format, ps_args),
        Command::List { format, quiet } => list(&root, *format, *quiet),
        Command::Spec { bundle, .. } => spec(bundle),
    }
}

fn create_options(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
        stdio: None,
    }
}

fn console_needed(a: &CreateArgs) -> Result<bool> {
    let b = berth_runtime::bundle::load(&a.bundle)?;
    Ok(b.spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false))
}

fn run_container(root: &StateRoot, a: &CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    if detach && console_needed(a)? && a.console_socket.is_none() {
        bail!("process.terminal is set: --console-socket is required with --detach");
    }
    let created = container::create(root, &create_options(a))?;
    if let Err(e) = container::start(root, &a.id) {
        let _ = container::delete(root, &a.id, true);
        return Err(e.into());
    }
    if detach {
        return Ok(0);
    }
    let code = foreground::wait(created.state.pid, created.pty_master);
    if !keep {
        container::delete(root, &a.id, true)?;
    }
    code
}

fn exec(root: &StateRoot, a: &ExecArgs) -> Result<i32> {
    let process = exec_process(root, a)?;
    if a.detach && process.terminal().unwrap_or(false) && a.console_socket.is_none() {
        bail!("--tty with --detach needs --console-socket");
    }
    let opts = ExecOptions {
        process,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        stdio: None,
    };
    let e = container::exec(root, &a.id, &opts)?;
    if a.detach {
        return Ok(0);
    }
    foreground::wait(e.pid, e.pty_master)
}

/// The exec process: `--process FILE`, or the container's process with the
/// command line's changes, as runc builds it.
fn exec_process(root: &StateRoot, a: &ExecArgs) -> Result<Process> {
    if let Some(f) = &a.process {
        let data = std::fs::read(f).with_context(|| format!("read {}", f.display()))?;
        return serde_json::from_slice(&data).with_context(|| format!("parse {}", f.display()));
    }
    if a.command.is_empty() {
        bail!("exec: a command is required (or --process FILE)");
    }
    let st = root.load(&a.id)?;
    let mut p = st.spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let mut user = p.user().clone();
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        user.set_uid(
            uid.parse()
                .with_context(|| format!("--user {u}: bad uid"))?,
        );
        user.set_gid(
            gid.parse()
                .with_context(|| format!("--user {u}: bad gid"))?,
        );
        p.set_user(user);
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &a.cap {
            let c = Capability::from_str(name.trim_start_matches("CAP_"))
                .map_err(|_| anyhow::anyhow!("--cap {name}: unknown capability"))?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = set.clone().unwrap_or_default();
                s.insert(c);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

fn ps(root: &StateRoot, id: &str, format: Format, ps_args: &[String]) -> Result<i32> {
    let pids = container::pids(root, id)?;
    if format == Format::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    println!("{header}");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{l}");
        }
    }
    Ok(0)
}

fn list(root: &StateRoot, format: Format, quiet: bool) -> Result<i32> {
    let all = container::list(root)?;
    if quiet {
        for (st, _) in &all {
            println!("{}", st.id);
        }
    } else if format == Format::Json {
        let v: Vec<_> = all.iter().map(|(st, s)| st.oci(*s)).collect();
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!(
            "{:<24} {:<8} {:<8} {:<40} {:<32} OWNER",
            "ID", "PID", "STATUS", "BUNDLE", "CREATED"
        );
        for (st, s) in &all {
            let o = st.oci(*s);
            println!(
                "{:<24} {:<8} {:<8} {:<40} {:<32} root",
                st.id,
                o.pid,
                s,
                st.bundle.display(),
                st.created
            );
        }
    }
    Ok(0)
}

fn spec(bundle: &Path) -> Result<i32> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{} exists: remove it first", path.display());
    }
    let mut s = Spec::default();
    if let Some(p) = s.process_mut() {
        p.set_terminal(Some(true));
        p.set_args(Some(vec!["sh".into()]));
    }
    s.save(&path)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}
