//! Kubernetes' name formats (RFC 1123 labels and subdomains, qualified label
//! keys, IANA service names for ports, env var names, ConfigMap keys), each
//! returning the apiserver's message when a name does not fit.

/// An RFC 1123 label: container, volume and port-less object names.
pub fn dns_label(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    if !is_label(s) {
        return Err("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character".into());
    }
    Ok(())
}

/// An RFC 1123 subdomain: pod, ConfigMap and Secret names, hostAliases.
pub fn dns_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err("must be no more than 253 characters".into());
    }
    if s.is_empty() || !s.split('.').all(is_label) {
        return Err("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into());
    }
    Ok(())
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A label or annotation key: `[prefix/]name`, prefix a DNS subdomain,
/// name up to 63 alphanumerics, `-`, `_`, `.`, alphanumeric at both ends.
pub fn qualified_name(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        dns_subdomain(p).map_err(|e| format!("prefix part {e}"))?;
    }
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric();
    if !ok {
        return Err("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63)".into());
    }
    Ok(())
}

/// A port name (IANA_SVC_NAME): at most 15 lowercase alphanumerics or '-',
/// at least one letter, no '-' at either end or twice in a row.
pub fn port_name(s: &str) -> Result<(), String> {
    if s.len() > 15 {
        return Err("must be no more than 15 characters".into());
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        return Err(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into(),
        );
    }
    if s.starts_with('-') || s.ends_with('-') || s.contains("--") {
        return Err("must not begin or end with a hyphen, nor contain adjacent hyphens".into());
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        return Err("must contain at least one letter (a-z)".into());
    }
    Ok(())
}

/// An environment variable name: printable ASCII other than '='.
pub fn env_var_name(s: &str) -> Result<(), String> {
    if s.is_empty() || !s.bytes().all(|c| (b' '..=b'~').contains(&c) && c != b'=') {
        return Err("a valid environment variable name must consist only of printable ASCII characters other than '='".into());
    }
    Ok(())
}

/// A ConfigMap or Secret key: `[-._a-zA-Z0-9]+`, not `.` or `..`.
pub fn config_key(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err("must be no more than 253 characters".into());
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._".contains(&c))
    {
        return Err(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'".into(),
        );
    }
    if s == "." || s == ".." {
        return Err("must not be '.' or '..'".into());
    }
    Ok(())
}

/// A relative path that stays below its base: not absolute, no `..`
/// element (volumeMounts' subPath, hostPath without backsteps).
pub fn local_descending_path(s: &str) -> Result<(), String> {
    if s.starts_with('/') {
        return Err("must be a relative path".into());
    }
    no_backsteps(s)
}

/// No `..` element.
pub fn no_backsteps(s: &str) -> Result<(), String> {
    if s.split('/').any(|p| p == "..") {
        return Err("must not contain '..'".into());
    }
    Ok(())
}

/// A projected file's path: local, descending, and not starting with `..`
/// (the atomic writer's own names).
pub fn projected_path(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("required".into());
    }
    local_descending_path(s)?;
    if s.starts_with("..") {
        return Err("must not start with '..'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(dns_label("web-1").is_ok());
        for bad in ["", "Web", "-a", "a-", "a_b", &"a".repeat(64)] {
            assert!(dns_label(bad).is_err(), "{bad}");
        }
        assert!(dns_subdomain("a.b-c.d").is_ok());
        assert!(dns_subdomain("a..b").is_err());
        assert!(qualified_name("app.kubernetes.io/name").is_ok());
        assert!(qualified_name("App_1").is_ok());
        assert!(qualified_name("bad/").is_err());
        assert!(qualified_name("-x").is_err());
        assert!(port_name("http").is_ok());
        for bad in ["8080", "h--p", "-h", "toolongportname1", "HTTP"] {
            assert!(port_name(bad).is_err(), "{bad}");
        }
        assert!(env_var_name("MY_VAR.1-x").is_ok());
        assert!(env_var_name("A=B").is_err());
        assert!(env_var_name("").is_err());
        assert!(config_key("app.conf").is_ok());
        for bad in [".", "..", "a/b", ""] {
            assert!(config_key(bad).is_err(), "{bad}");
        }
        assert!(local_descending_path("a/b").is_ok());
        assert!(local_descending_path("a/../b").is_err());
        assert!(local_descending_path("/etc").is_err());
        assert!(local_descending_path("a..b").is_ok());
        assert!(projected_path("..data").is_err());
        assert!(projected_path("conf/app.conf").is_ok());
    }
}
