//! The pod's `hostname`, `hosts` and `resolv.conf` files, written once into
//! the pod directory and bind-mounted into every container of the pod.
//! A host-network pod gets the host's hostname and `/etc/hosts`; a pod
//! without `dns_config` gets the host's `/etc/resolv.conf`.

use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use berth_proto::v1::{DnsConfig, NamespaceMode, PodSandboxConfig};

use super::SpecError;

/// File names in the pod directory (also their names under `/etc`).
pub const HOSTNAME: &str = "hostname";
pub const HOSTS: &str = "hosts";
pub const RESOLV_CONF: &str = "resolv.conf";

/// Longest hostname the kernel accepts.
const MAX_HOSTNAME: usize = 64;

const LOCAL_HOSTS: &str = "# Kubernetes-managed hosts file (berth).\n\
127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\n\
fe00::0\tip6-mcastprefix\n\
fe00::1\tip6-allnodes\n\
fe00::2\tip6-allrouters\n";

/// Where the host's own files are (tests point these elsewhere).
#[derive(Debug, Clone)]
pub(crate) struct HostFiles {
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
}

impl Default for HostFiles {
    fn default() -> Self {
        Self {
            hosts: "/etc/hosts".into(),
            resolv_conf: "/etc/resolv.conf".into(),
        }
    }
}

/// Writes `hostname`, `hosts` and `resolv.conf` into `pod_dir` (which must
/// exist). `pod_ip` is the pod's primary IP, when known, for its hosts entry.
pub fn write_pod_files(
    pod_dir: &Path,
    sandbox: &PodSandboxConfig,
    pod_ip: Option<IpAddr>,
) -> Result<(), SpecError> {
    write_with(pod_dir, sandbox, pod_ip, &HostFiles::default())
}

pub(crate) fn write_with(
    pod_dir: &Path,
    sandbox: &PodSandboxConfig,
    pod_ip: Option<IpAddr>,
    host: &HostFiles,
) -> Result<(), SpecError> {
    let host_network = host_network(sandbox);
    let hostname = pod_hostname(sandbox, host_network)?;
    let hosts = if host_network {
        read_host(&host.hosts)?
    } else {
        let mut hosts = LOCAL_HOSTS.to_string();
        if let Some(ip) = pod_ip {
            let _ = writeln!(hosts, "{ip}\t{hostname}");
        }
        hosts
    };
    let resolv = match &sandbox.dns_config {
        Some(dns) => resolv_conf(dns)?,
        None => read_host(&host.resolv_conf)?,
    };
    write(&pod_dir.join(HOSTNAME), &format!("{hostname}\n"))?;
    write(&pod_dir.join(HOSTS), &hosts)?;
    write(&pod_dir.join(RESOLV_CONF), &resolv)
}

/// Whether the pod uses the host's network namespace.
pub(crate) fn host_network(sandbox: &PodSandboxConfig) -> bool {
    sandbox
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|sc| sc.namespace_options.as_ref())
        .is_some_and(|ns| ns.network == NamespaceMode::Node as i32)
}

/// The pod's hostname: the sandbox's, or the host's for a host-network pod
/// that names none.
pub(crate) fn pod_hostname(
    sandbox: &PodSandboxConfig,
    host_network: bool,
) -> Result<String, SpecError> {
    const FIELD: &str = "sandbox_config.hostname";
    let name = sandbox.hostname.as_str();
    if name.is_empty() {
        if !host_network {
            return Err(SpecError::invalid(
                FIELD,
                "hostname is empty but the pod has its own network",
            ));
        }
        return nix::unistd::gethostname()
            .map_err(io::Error::from)
            .and_then(|h| {
                h.into_string()
                    .map_err(|_| io::Error::other("host name is not UTF-8"))
            })
            .map_err(|source| SpecError::HostPath {
                field: FIELD.into(),
                path: "/proc/sys/kernel/hostname".into(),
                source,
            });
    }
    if name.len() > MAX_HOSTNAME
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(SpecError::invalid(
            FIELD,
            format!("invalid hostname {name:?}"),
        ));
    }
    Ok(name.to_string())
}

/// `resolv.conf` content for the pod's DNS config.
fn resolv_conf(dns: &DnsConfig) -> Result<String, SpecError> {
    let check = |list: &[String], name: &str| {
        for (i, v) in list.iter().enumerate() {
            if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(SpecError::invalid(
                    format!("sandbox_config.dns_config.{name}[{i}]"),
                    format!("invalid value {v:?}"),
                ));
            }
        }
        Ok(())
    };
    check(&dns.servers, "servers")?;
    check(&dns.searches, "searches")?;
    check(&dns.options, "options")?;
    for (i, server) in dns.servers.iter().enumerate() {
        if server.parse::<IpAddr>().is_err() {
            return Err(SpecError::invalid(
                format!("sandbox_config.dns_config.servers[{i}]"),
                format!("{server:?} is not an IP address"),
            ));
        }
    }
    let mut out = String::new();
    if !dns.searches.is_empty() {
        let _ = writeln!(out, "search {}", dns.searches.join(" "));
    }
    for server in &dns.servers {
        let _ = writeln!(out, "nameserver {server}");
    }
    if !dns.options.is_empty() {
        let _ = writeln!(out, "options {}", dns.options.join(" "));
    }
    Ok(out)
}

/// A host file's content; an absent file reads as empty.
fn read_host(path: &Path) -> Result<String, SpecError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(SpecError::PodFile {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `content` to `path` with mode 0644, replacing it atomically.
fn write(path: &Path, content: &str) -> Result<(), SpecError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source| SpecError::PodFile {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, content).map_err(err)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::v1::{LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceOption};

    fn sandbox(hostname: &str, dns: Option<DnsConfig>) -> PodSandboxConfig {
        PodSandboxConfig {
            hostname: hostname.into(),
            dns_config: dns,
            ..Default::default()
        }
    }

    fn host_net(mut s: PodSandboxConfig) -> PodSandboxConfig {
        s.linux = Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        s
    }

    struct Fixture {
        pod: tempfile::TempDir,
        host_dir: tempfile::TempDir,
        host: HostFiles,
    }

    fn fixture() -> Fixture {
        let host_dir = tempfile::tempdir().unwrap();
        std::fs::write(host_dir.path().join("hosts"), "10.0.0.1 node\n").unwrap();
        std::fs::write(host_dir.path().join("resolv.conf"), "nameserver 9.9.9.9\n").unwrap();
        let host = HostFiles {
            hosts: host_dir.path().join("hosts"),
            resolv_conf: host_dir.path().join("resolv.conf"),
        };
        Fixture {
            pod: tempfile::tempdir().unwrap(),
            host_dir,
            host,
        }
    }

    fn read(f: &Fixture, name: &str) -> String {
        std::fs::read_to_string(f.pod.path().join(name)).unwrap()
    }

    #[test]
    fn pod_network_files() {
        let f = fixture();
        let dns = DnsConfig {
            servers: vec!["10.96.0.10".into(), "fd00::10".into()],
            searches: vec!["ns.svc.cluster.local".into(), "svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        };
        let ip: IpAddr = "10.244.1.7".parse().unwrap();
        write_with(
            f.pod.path(),
            &sandbox("web-0", Some(dns)),
            Some(ip),
            &f.host,
        )
        .unwrap();
        assert_eq!(read(&f, HOSTNAME), "web-0\n");
        let hosts = read(&f, HOSTS);
        assert!(hosts.contains("127.0.0.1\tlocalhost\n"), "{hosts}");
        assert!(hosts.contains("::1\tlocalhost"), "{hosts}");
        assert!(hosts.ends_with("10.244.1.7\tweb-0\n"), "{hosts}");
        assert_eq!(
            read(&f, RESOLV_CONF),
            "search ns.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver fd00::10\noptions ndots:5\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f.pod.path().join(HOSTS))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        assert!(f.host_dir.path().exists());
    }

    #[test]
    fn no_ip_means_no_pod_entry_and_no_dns_copies_the_host() {
        let f = fixture();
        write_with(f.pod.path(), &sandbox("web-0", None), None, &f.host).unwrap();
        assert_eq!(read(&f, HOSTS), LOCAL_HOSTS);
        assert_eq!(read(&f, RESOLV_CONF), "nameserver 9.9.9.9\n");
    }

    #[test]
    fn host_network_uses_host_files_and_name() {
        let f = fixture();
        write_with(f.pod.path(), &host_net(sandbox("", None)), None, &f.host).unwrap();
        assert_eq!(read(&f, HOSTS), "10.0.0.1 node\n");
        let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
        assert_eq!(read(&f, HOSTNAME), format!("{host}\n"));
    }

    #[test]
    fn bad_values_name_the_field() {
        let f = fixture();
        let cases = [
            (sandbox("", None), "sandbox_config.hostname"),
            (sandbox("a b", None), "sandbox_config.hostname"),
            (sandbox(&"x".repeat(65), None), "sandbox_config.hostname"),
            (
                sandbox(
                    "h",
                    Some(DnsConfig {
                        servers: vec!["1.1.1.1\nnameserver 6.6.6.6".into()],
                        ..Default::default()
                    }),
                ),
                "sandbox_config.dns_config.servers[0]",
            ),
            (
                sandbox(
                    "h",
                    Some(DnsConfig {
                        servers: vec!["dns.example".into()],
                        ..Default::default()
                    }),
                ),
                "sandbox_config.dns_config.servers[0]",
            ),
            (
                sandbox(
                    "h",
                    Some(DnsConfig {
                        searches: vec!["a".into(), "".into()],
                        ..Default::default()
                    }),
                ),
                "sandbox_config.dns_config.searches[1]",
            ),
        ];
        for (s, field) in cases {
            let err = write_with(f.pod.path(), &s, None, &f.host).unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
        }
    }

    #[test]
    fn missing_pod_dir_is_a_pod_file_error() {
        let f = fixture();
        let missing = f.pod.path().join("gone");
        let err = write_with(&missing, &sandbox("h", None), None, &f.host).unwrap_err();
        assert!(matches!(err, SpecError::PodFile { .. }), "{err}");
    }
}
