//! The last step of every container process: resolve `args[0]` through the
//! container's `PATH` and `execve` it with the spec's environment.

use std::{ffi::CString, os::unix::ffi::OsStrExt, path::Path};

use crate::error::{Error, Result};

/// Resolves `prog` like execvp does, with `PATH` taken from `env`.
pub fn resolve(prog: &str, env: &[String]) -> Result<std::path::PathBuf> {
    if prog.contains('/') {
        return Ok(prog.into());
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(prog);
        if let Ok(md) = std::fs::metadata(&cand) {
            use std::os::unix::fs::PermissionsExt;
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
        }
    }
    Err(Error::spec(
        "process.args[0]",
        format!("executable file {prog:?} not found in $PATH"),
    ))
}

fn cstrings(items: &[String], field: &str) -> Result<Vec<CString>> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| Error::spec(field, "contains a NUL byte")))
        .collect()
}

/// Prepared arguments for `execve`, built before the last security steps so
/// that nothing allocates after seccomp is installed.
pub struct Execve {
    path: CString,
    _args: Vec<CString>,
    _env: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl Execve {
    /// Resolves and converts `args` and `env`.
    pub fn prepare(args: &[String], env: &[String]) -> Result<Self> {
        let prog = args
            .first()
            .ok_or_else(|| Error::spec("process.args", "must not be empty"))?;
        let path = resolve(prog, env)?;
        let args = cstrings(args, "process.args")?;
        let env = cstrings(env, "process.env")?;
        // The pointers stay valid: CString data lives on the heap and never moves.
        let argv = args
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        let envp = env
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        Ok(Self {
            path: CString::new(path.as_os_str().as_bytes())
                .map_err(|_| Error::spec("process.args[0]", "contains a NUL byte"))?,
            _args: args,
            _env: env,
            argv,
            envp,
        })
    }

    /// Replaces the process image; returns only on failure.
    pub fn exec(&self) -> Error {
        // SAFETY: argv and envp are NULL-terminated arrays of pointers into the
        // CStrings this struct owns, alive for the call.
        unsafe { libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
        Error::Sys {
            op: format!("exec {:?}", self.path),
            source: std::io::Error::last_os_error(),
        }
    }
}
