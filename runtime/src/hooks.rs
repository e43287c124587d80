//! OCI hooks: each runs with the container state JSON on stdin, its own args
//! and env, and an optional timeout after which it is killed.

use std::{
    io::Write,
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Runs `hooks` in order; the first failure stops the list.
pub fn run(kind: &'static str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    for h in hooks {
        run_one(kind, h, state_json)?;
    }
    Ok(())
}

fn run_one(kind: &'static str, h: &Hook, state_json: &[u8]) -> Result<()> {
    let fail = |reason: String| Error::Hook {
        kind,
        path: h.path().clone(),
        reason,
    };
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that doesn't read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json);
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(fail(format!("exited with {st}"))),
            Ok(None) => {}
            Err(e) => return Err(fail(format!("wait: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "timed out after {}s",
                h.timeout().unwrap_or_default()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    #[test]
    fn hook_gets_state_and_failures_name_the_hook() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let ok = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "sh".into(),
                "-c".into(),
                format!("cat > {}", out.display()),
            ])
            .build()
            .unwrap();
        run("prestart", &[ok], br#"{"id":"x"}"#).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), r#"{"id":"x"}"#);

        let bad = HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".into(), "-c".into(), "exit 3".into()])
            .build()
            .unwrap();
        let e = run("poststart", &[bad], b"{}").unwrap_err().to_string();
        assert!(
            e.contains("poststart hook /bin/sh") && e.contains('3'),
            "{e}"
        );

        let slow = HookBuilder::default()
            .path("/bin/sleep")
            .args(vec!["sleep".into(), "5".into()])
            .timeout(1)
            .build()
            .unwrap();
        let e = run("createRuntime", &[slow], b"{}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("timed out"), "{e}");
    }
}
