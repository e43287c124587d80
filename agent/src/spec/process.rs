//! The container process's command line, environment and working directory,
//! from the CRI request layered over the image config, with Kubernetes'
//! rules: `command` replaces the image Entrypoint (and drops the image Cmd),
//! `args` replace the image Cmd; CRI envs override image envs by key.

use std::path::PathBuf;

use berth_proto::v1::ContainerConfig;
use oci_spec::image::Config as ImageConfig;

use super::{paths, SpecError};

/// PATH when neither the image nor the request sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process's `args`.
pub(crate) fn args(
    config: &ContainerConfig,
    image: Option<&ImageConfig>,
) -> Result<Vec<String>, SpecError> {
    let image_list = |list: Option<&Vec<String>>| list.cloned().unwrap_or_default();
    let entrypoint = image_list(image.and_then(|i| i.entrypoint().as_ref()));
    let cmd = image_list(image.and_then(|i| i.cmd().as_ref()));
    let mut argv = if config.command.is_empty() {
        entrypoint
    } else {
        config.command.clone()
    };
    if !config.args.is_empty() {
        argv.extend(config.args.iter().cloned());
    } else if config.command.is_empty() {
        argv.extend(cmd);
    }
    match argv.first() {
        None => Err(SpecError::invalid(
            "config.command",
            "no command given and the image has no Entrypoint or Cmd",
        )),
        Some(first) if first.is_empty() => Err(SpecError::invalid(
            "config.command",
            "the executable is an empty string",
        )),
        Some(_) => Ok(argv),
    }
}

/// The process's environment: PATH default, HOSTNAME, the image's Env, then
/// the request's envs, each later entry replacing an earlier one of the same
/// key in place.
pub(crate) fn env(
    config: &ContainerConfig,
    image: Option<&ImageConfig>,
    hostname: &str,
) -> Result<Vec<String>, SpecError> {
    let mut env = Env::default();
    env.set(format!("PATH={DEFAULT_PATH}"));
    if !hostname.is_empty() {
        env.set(format!("HOSTNAME={hostname}"));
    }
    // An image entry without `=` sets nothing; the runtime would refuse it.
    let image_env = image.and_then(|i| i.env().as_ref()).into_iter().flatten();
    for entry in image_env.filter(|e| e.contains('=')) {
        env.set(entry.clone());
    }
    for (i, kv) in config.envs.iter().enumerate() {
        if kv.key.is_empty() || kv.key.contains('=') || kv.key.contains('\0') {
            return Err(SpecError::invalid(
                format!("config.envs[{i}].key"),
                format!("invalid environment variable name {:?}", kv.key),
            ));
        }
        if kv.value.contains('\0') {
            return Err(SpecError::invalid(
                format!("config.envs[{i}].value"),
                "value contains a NUL byte",
            ));
        }
        env.set(format!("{}={}", kv.key, kv.value));
    }
    Ok(env.0)
}

/// Adds `HOME=<home>` unless the environment already has a HOME.
pub(crate) fn add_home(env: &mut Vec<String>, home: &str) {
    if !env.iter().any(|e| key(e) == "HOME") {
        env.push(format!("HOME={home}"));
    }
}

/// The working directory: the request's, else the image's, else `/`.
pub(crate) fn cwd(
    config: &ContainerConfig,
    image: Option<&ImageConfig>,
) -> Result<PathBuf, SpecError> {
    if !config.working_dir.is_empty() {
        return absolute("config.working_dir", &config.working_dir);
    }
    match image.and_then(|i| i.working_dir().as_deref()) {
        Some(dir) if !dir.is_empty() => absolute("image config WorkingDir", dir),
        _ => Ok(PathBuf::from("/")),
    }
}

/// An absolute working directory; unlike mount paths it may be unclean (the
/// kernel resolves it inside the container).
fn absolute(field: &str, dir: &str) -> Result<PathBuf, SpecError> {
    if !dir.starts_with('/') {
        return Err(SpecError::invalid(
            field,
            format!("working directory {dir:?} is not absolute"),
        ));
    }
    if dir.contains('\0') {
        return paths::clean_absolute(field, dir);
    }
    Ok(PathBuf::from(dir))
}

/// The variable name of a `KEY=value` entry.
fn key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// An environment with replace-by-key semantics that keeps first positions.
#[derive(Default)]
struct Env(Vec<String>);

impl Env {
    fn set(&mut self, entry: String) {
        let k = key(&entry);
        match self.0.iter_mut().find(|e| key(e) == k) {
            Some(slot) => *slot = entry,
            None => self.0.push(entry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::v1::KeyValue;
    use oci_spec::image::ConfigBuilder;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageConfig {
        let mut b = ConfigBuilder::default();
        if !entrypoint.is_empty() {
            b = b.entrypoint(strings(entrypoint));
        }
        if !cmd.is_empty() {
            b = b.cmd(strings(cmd));
        }
        b.build().unwrap()
    }

    fn request(command: &[&str], args: &[&str]) -> ContainerConfig {
        ContainerConfig {
            command: strings(command),
            args: strings(args),
            ..Default::default()
        }
    }

    #[test]
    fn image_entrypoint_and_cmd_when_request_has_neither() {
        let img = image(&["/ep", "-x"], &["c1", "c2"]);
        assert_eq!(
            args(&request(&[], &[]), Some(&img)).unwrap(),
            strings(&["/ep", "-x", "c1", "c2"])
        );
    }

    #[test]
    fn command_replaces_entrypoint_and_drops_image_cmd() {
        let img = image(&["/ep"], &["c1"]);
        assert_eq!(
            args(&request(&["/bin/sh"], &[]), Some(&img)).unwrap(),
            strings(&["/bin/sh"])
        );
        assert_eq!(
            args(&request(&["/bin/sh"], &["-c", "true"]), Some(&img)).unwrap(),
            strings(&["/bin/sh", "-c", "true"])
        );
    }

    #[test]
    fn args_replace_image_cmd_keeping_entrypoint() {
        let img = image(&["/ep"], &["c1"]);
        assert_eq!(
            args(&request(&[], &["a1"]), Some(&img)).unwrap(),
            strings(&["/ep", "a1"])
        );
        // No entrypoint: the args are the whole command line.
        let img = image(&[], &["c1"]);
        assert_eq!(
            args(&request(&[], &["/bin/a1"]), Some(&img)).unwrap(),
            strings(&["/bin/a1"])
        );
    }

    #[test]
    fn empty_command_line_is_an_error_naming_command() {
        let err = args(&request(&[], &[]), Some(&image(&[], &[]))).unwrap_err();
        assert!(err.to_string().starts_with("config.command: "), "{err}");
        let err = args(&request(&[""], &[]), None).unwrap_err();
        assert_eq!(err.field(), Some("config.command"));
    }

    #[test]
    fn env_layers_defaults_image_and_request_by_key() {
        let img = ConfigBuilder::default()
            .env(strings(&[
                "PATH=/img/bin",
                "A=image",
                "NOEQUALS",
                "B=image",
            ]))
            .build()
            .unwrap();
        let mut config = request(&[], &[]);
        config.envs = vec![
            KeyValue {
                key: "B".into(),
                value: "request".into(),
            },
            KeyValue {
                key: "C".into(),
                value: "x=y".into(),
            },
        ];
        let got = env(&config, Some(&img), "pod-1").unwrap();
        assert_eq!(
            got,
            strings(&[
                "PATH=/img/bin",
                "HOSTNAME=pod-1",
                "A=image",
                "B=request",
                "C=x=y"
            ])
        );
    }

    #[test]
    fn env_defaults_path_and_home() {
        let mut got = env(&request(&[], &[]), None, "").unwrap();
        assert_eq!(got, vec![format!("PATH={DEFAULT_PATH}")]);
        add_home(&mut got, "/root");
        assert_eq!(got.last().map(String::as_str), Some("HOME=/root"));
        add_home(&mut got, "/other");
        assert_eq!(got.iter().filter(|e| e.starts_with("HOME=")).count(), 1);
    }

    #[test]
    fn bad_env_key_names_the_entry() {
        let mut config = request(&[], &[]);
        config.envs = vec![
            KeyValue {
                key: "OK".into(),
                value: String::new(),
            },
            KeyValue {
                key: "A=B".into(),
                value: String::new(),
            },
        ];
        let err = env(&config, None, "h").unwrap_err();
        assert_eq!(err.field(), Some("config.envs[1].key"));
    }

    #[test]
    fn cwd_prefers_request_then_image_then_root() {
        let img = ConfigBuilder::default()
            .working_dir("/srv".to_string())
            .build()
            .unwrap();
        let mut config = request(&[], &[]);
        assert_eq!(cwd(&config, None).unwrap(), PathBuf::from("/"));
        assert_eq!(cwd(&config, Some(&img)).unwrap(), PathBuf::from("/srv"));
        config.working_dir = "/work".into();
        assert_eq!(cwd(&config, Some(&img)).unwrap(), PathBuf::from("/work"));
        config.working_dir = "rel".into();
        assert_eq!(
            cwd(&config, Some(&img)).unwrap_err().field(),
            Some("config.working_dir")
        );
    }
}
