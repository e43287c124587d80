//! The container's seccomp filter: the request's `seccomp` profile
//! (RuntimeDefault, Unconfined, or Localhost with a node file path), else the
//! deprecated `seccomp_profile_path` string (`runtime/default`,
//! `docker/default`, `unconfined`, `localhost/<path>`, empty = unconfined).
//! Privileged containers get none.

use std::path::Path;

use berth_proto::v1::security_profile::ProfileType;
use berth_proto::v1::LinuxContainerSecurityContext;
use berth_runtime::seccomp::{parse_profile, runtime_default};
use oci_spec::runtime::LinuxSeccomp;

use super::SpecError;

const SC: &str = "config.linux.security_context";

/// The `linux.seccomp` object, `None` for no filter.
pub(crate) fn seccomp(
    sc: Option<&LinuxContainerSecurityContext>,
    privileged: bool,
) -> Result<Option<LinuxSeccomp>, SpecError> {
    let Some(sc) = sc.filter(|_| !privileged) else {
        return Ok(None);
    };
    if let Some(profile) = &sc.seccomp {
        let field = format!("{SC}.seccomp");
        return match ProfileType::try_from(profile.profile_type) {
            Ok(ProfileType::RuntimeDefault) => Ok(Some(runtime_default())),
            Ok(ProfileType::Unconfined) => Ok(None),
            Ok(ProfileType::Localhost) => {
                localhost(&format!("{field}.localhost_ref"), &profile.localhost_ref).map(Some)
            }
            Err(_) => Err(SpecError::invalid(
                format!("{field}.profile_type"),
                format!("unknown profile type {}", profile.profile_type),
            )),
        };
    }
    #[allow(deprecated)]
    let path = sc.seccomp_profile_path.as_str();
    let field = format!("{SC}.seccomp_profile_path");
    match path {
        "" | "unconfined" => Ok(None),
        "runtime/default" | "docker/default" => Ok(Some(runtime_default())),
        _ => match path.strip_prefix("localhost/") {
            Some(file) => localhost(&field, file).map(Some),
            None => Err(SpecError::invalid(
                field,
                format!("unknown seccomp profile {path:?}"),
            )),
        },
    }
}

/// A profile read from a node file.
fn localhost(field: &str, file: &str) -> Result<LinuxSeccomp, SpecError> {
    if !file.starts_with('/') {
        return Err(SpecError::invalid(
            field,
            format!("profile path {file:?} is not absolute"),
        ));
    }
    let json = std::fs::read_to_string(file).map_err(|source| SpecError::HostPath {
        field: field.to_string(),
        path: Path::new(file).to_path_buf(),
        source,
    })?;
    parse_profile(&json).map_err(|source| SpecError::Seccomp {
        field: field.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::v1::SecurityProfile;
    use oci_spec::runtime::LinuxSeccompAction;

    fn with_profile(
        profile_type: ProfileType,
        localhost_ref: &str,
    ) -> LinuxContainerSecurityContext {
        LinuxContainerSecurityContext {
            seccomp: Some(SecurityProfile {
                profile_type: profile_type as i32,
                localhost_ref: localhost_ref.into(),
            }),
            ..Default::default()
        }
    }

    #[allow(deprecated)]
    fn with_path(path: &str) -> LinuxContainerSecurityContext {
        LinuxContainerSecurityContext {
            seccomp_profile_path: path.into(),
            ..Default::default()
        }
    }

    #[test]
    fn runtime_default_and_unconfined() {
        let sc = with_profile(ProfileType::RuntimeDefault, "");
        assert_eq!(seccomp(Some(&sc), false).unwrap(), Some(runtime_default()));
        let sc = with_profile(ProfileType::Unconfined, "");
        assert_eq!(seccomp(Some(&sc), false).unwrap(), None);
        assert_eq!(seccomp(None, false).unwrap(), None);
    }

    #[test]
    fn privileged_has_no_filter() {
        let sc = with_profile(ProfileType::RuntimeDefault, "");
        assert_eq!(seccomp(Some(&sc), true).unwrap(), None);
    }

    #[test]
    fn localhost_profile_is_read_and_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.json");
        std::fs::write(
            &file,
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let got = seccomp(Some(&with_profile(ProfileType::Localhost, path)), false)
            .unwrap()
            .unwrap();
        assert_eq!(got.default_action(), LinuxSeccompAction::ScmpActErrno);
        let got = seccomp(Some(&with_path(&format!("localhost/{path}"))), false).unwrap();
        assert!(got.is_some());
    }

    #[test]
    fn localhost_errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let sc = with_profile(ProfileType::Localhost, missing.to_str().unwrap());
        let err = seccomp(Some(&sc), false).unwrap_err();
        assert_eq!(
            err.field(),
            Some("config.linux.security_context.seccomp.localhost_ref")
        );
        let sc = with_profile(ProfileType::Localhost, "relative.json");
        assert!(seccomp(Some(&sc), false).is_err());

        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#).unwrap();
        let sc = with_profile(ProfileType::Localhost, bad.to_str().unwrap());
        let err = seccomp(Some(&sc), false).unwrap_err();
        assert!(matches!(err, SpecError::Seccomp { .. }), "{err}");
    }

    #[test]
    fn deprecated_path_strings() {
        assert_eq!(seccomp(Some(&with_path("")), false).unwrap(), None);
        assert_eq!(
            seccomp(Some(&with_path("unconfined")), false).unwrap(),
            None
        );
        assert!(seccomp(Some(&with_path("runtime/default")), false)
            .unwrap()
            .is_some());
        assert!(seccomp(Some(&with_path("docker/default")), false)
            .unwrap()
            .is_some());
        let err = seccomp(Some(&with_path("weird")), false).unwrap_err();
        assert_eq!(
            err.field(),
            Some("config.linux.security_context.seccomp_profile_path")
        );
    }

    #[test]
    fn unknown_profile_type_is_rejected() {
        let mut sc = with_profile(ProfileType::Localhost, "");
        if let Some(p) = sc.seccomp.as_mut() {
            p.profile_type = 9;
        }
        let err = seccomp(Some(&sc), false).unwrap_err();
        assert_eq!(
            err.field(),
            Some("config.linux.security_context.seccomp.profile_type")
        );
    }
}
