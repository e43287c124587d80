//! The pod's volumes plan: for each volume, what the runner creates on the
//! host and where (`<pod dir>/volumes/kubernetes.io~<plugin>/<name>`, or the
//! hostPath itself), and per container the CRI mounts (subPath and
//! subPathExpr inside the volume, readOnly, mountPropagation).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use berth_proto::v1::{Mount, MountPropagation};
use k8s_openapi::api::core::v1::{Container, PodSpec, Volume};

use super::context::PodCtx;
use super::env::EnvVars;
use super::field::{Errors, FieldPath};
use super::files::{Ownership, ProjectedFile};
use super::hostpath::HostPathType;
use super::names;
use super::payload::{self, KeySource, DEFAULT_MODE};
use super::quantity::Amount;

/// `emptyDir.medium`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageMedium {
    /// A directory on the node's disk.
    Disk,
    /// A tmpfs.
    Memory,
}

/// Which plugin's files a [`VolumeSetup::Files`] volume holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilesKind {
    ConfigMap,
    Secret,
    DownwardApi,
    Projected,
}

impl FilesKind {
    fn plugin(self) -> &'static str {
        match self {
            Self::ConfigMap => "configmap",
            Self::Secret => "secret",
            Self::DownwardApi => "downward-api",
            Self::Projected => "projected",
        }
    }
}

/// What the runner sets up for a volume before the containers start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSetup {
    /// Create the directory (mode `mode`); for Memory, mount a tmpfs of
    /// `size_limit` bytes on it. A Disk `size_limit` is advisory (kubelet
    /// enforces it by eviction).
    EmptyDir {
        medium: StorageMedium,
        size_limit: Option<u64>,
        mode: u32,
    },
    /// Check (and for the *OrCreate types create) the path with
    /// [`check_host_path`](super::hostpath::check_host_path); nothing else.
    HostPath { kind: HostPathType },
    /// Create the directory (a tmpfs when `tmpfs`: secrets, downwardAPI and
    /// projected volumes, as kubelet) and write `files` into it with
    /// [`write_atomic`](super::files::write_atomic). Mounted read-only.
    Files {
        kind: FilesKind,
        tmpfs: bool,
        files: Vec<ProjectedFile>,
        owner: Option<Ownership>,
    },
}

/// One volume of the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumePlan {
    pub name: String,
    /// The host directory (or file) containers mount.
    pub host_path: PathBuf,
    pub setup: VolumeSetup,
}

impl VolumePlan {
    /// Whether every mount of it is read-only whatever the volumeMount says.
    pub fn always_read_only(&self) -> bool {
        matches!(self.setup, VolumeSetup::Files { .. })
    }
}

const UNSUPPORTED_SOURCES: [&str; 24] = [
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "csi",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "image",
    "iscsi",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

/// The volume source fields that are set, by their API names.
fn sources(v: &Volume) -> Vec<String> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(m)) => m
            .into_iter()
            .filter(|(k, v)| k != "name" && !v.is_null())
            .map(|(k, _)| k)
            .collect(),
        _ => Vec::new(),
    }
}

/// Plans `spec.volumes` of a pod whose directory is `pod_dir`;
/// `pod_memory_limit` is the pod's memory limit when every container has
/// one (a memory emptyDir is never larger).
pub(crate) fn pod_volumes(
    ctx: &PodCtx<'_>,
    spec: &PodSpec,
    pod_dir: &Path,
    pod_memory_limit: Option<i64>,
    path: &FieldPath,
    errs: &mut Errors,
) -> Vec<VolumePlan> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let owner = spec
        .security_context
        .as_ref()
        .and_then(|s| s.fs_group)
        .and_then(|g| u32::try_from(g).ok())
        .map(|fs_group| Ownership { fs_group });
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let vp = path.child("volumes").index(i);
        if v.name.is_empty() {
            errs.required(&vp.child("name"));
            continue;
        }
        if let Err(e) = names::dns_label(&v.name) {
            errs.add(&vp.child("name"), e);
        }
        if !seen.insert(v.name.clone()) {
            errs.duplicate(&vp.child("name"), &v.name);
            continue;
        }
        let set = sources(v);
        if set.is_empty() {
            errs.add(&vp, "must specify a volume type");
            continue;
        }
        if set.len() > 1 {
            errs.add(
                &vp,
                format!(
                    "may not specify more than 1 volume type (found {})",
                    set.join(", ")
                ),
            );
            continue;
        }
        if UNSUPPORTED_SOURCES.contains(&set[0].as_str()) {
            errs.add(
                &vp.child(&set[0]),
                "this volume type is not supported by berth (no cluster storage)",
            );
            continue;
        }
        let plugin_dir = |plugin: &str| {
            pod_dir
                .join("volumes")
                .join(format!("kubernetes.io~{plugin}"))
                .join(&v.name)
        };
        let files = |kind: FilesKind, files: Vec<ProjectedFile>| VolumePlan {
            name: v.name.clone(),
            host_path: plugin_dir(kind.plugin()),
            setup: VolumeSetup::Files {
                kind,
                tmpfs: kind != FilesKind::ConfigMap,
                files,
                owner,
            },
        };
        let plan = if let Some(e) = &v.empty_dir {
            let ep = vp.child("emptyDir");
            let medium = match e.medium.as_deref() {
                None | Some("") => StorageMedium::Disk,
                Some("Memory") => StorageMedium::Memory,
                Some(m) => {
                    errs.unsupported(&ep.child("medium"), m, &["", "Memory"]);
                    continue;
                }
            };
            let limit = match e.size_limit.as_ref().map(|q| Amount::parse(&q.0)) {
                None => None,
                Some(Ok(a)) if a.is_negative() => {
                    errs.add(&ep.child("sizeLimit"), "must be greater than or equal to 0");
                    None
                }
                Some(Ok(a)) => u64::try_from(a.value()).ok().filter(|n| *n > 0),
                Some(Err(err)) => {
                    errs.add(&ep.child("sizeLimit"), err.to_string());
                    None
                }
            };
            let size_limit = match medium {
                StorageMedium::Disk => limit,
                StorageMedium::Memory => Some(memory_size(
                    ctx.opts.memory_capacity_bytes,
                    pod_memory_limit,
                    limit,
                )),
            };
            VolumePlan {
                name: v.name.clone(),
                host_path: plugin_dir("empty-dir"),
                setup: VolumeSetup::EmptyDir {
                    medium,
                    size_limit,
                    mode: payload::mode(e.mode, 0o777, &ep.child("mode"), errs),
                },
            }
        } else if let Some(h) = &v.host_path {
            let hp = vp.child("hostPath");
            let kind = match HostPathType::parse(h.type_.as_deref().unwrap_or_default()) {
                Some(k) => k,
                None => {
                    errs.unsupported(
                        &hp.child("type"),
                        h.type_.as_deref().unwrap_or_default(),
                        &HostPathType::NAMES,
                    );
                    continue;
                }
            };
            if h.path.is_empty() {
                errs.required(&hp.child("path"));
                continue;
            }
            if !h.path.starts_with('/') {
                errs.add(&hp.child("path"), "must be an absolute path");
                continue;
            }
            if let Err(e) = names::no_backsteps(&h.path) {
                errs.add(&hp.child("path"), e);
                continue;
            }
            VolumePlan {
                name: v.name.clone(),
                host_path: PathBuf::from(&h.path),
                setup: VolumeSetup::HostPath { kind },
            }
        } else if let Some(c) = &v.config_map {
            let cp = vp.child("configMap");
            payload::no_user(c.default_user, &cp.child("defaultUser"), errs);
            let m = payload::mode(c.default_mode, DEFAULT_MODE, &cp.child("defaultMode"), errs);
            let f = payload::key_files(
                &KeySource::config_map(ctx, &c.name),
                c.items.as_deref(),
                m,
                c.optional == Some(true),
                &cp,
                &cp.child("name"),
                errs,
            );
            files(FilesKind::ConfigMap, f)
        } else if let Some(s) = &v.secret {
            let sp = vp.child("secret");
            payload::no_user(s.default_user, &sp.child("defaultUser"), errs);
            let m = payload::mode(s.default_mode, DEFAULT_MODE, &sp.child("defaultMode"), errs);
            let name = s.secret_name.as_deref().unwrap_or_default();
            let f = payload::key_files(
                &KeySource::secret(ctx, name),
                s.items.as_deref(),
                m,
                s.optional == Some(true),
                &sp,
                &sp.child("secretName"),
                errs,
            );
            files(FilesKind::Secret, f)
        } else if let Some(d) = &v.downward_api {
            let dp = vp.child("downwardAPI");
            payload::no_user(d.default_user, &dp.child("defaultUser"), errs);
            let m = payload::mode(d.default_mode, DEFAULT_MODE, &dp.child("defaultMode"), errs);
            let f =
                payload::downward_files(ctx, d.items.as_deref().unwrap_or_default(), m, &dp, errs);
            files(FilesKind::DownwardApi, f)
        } else if let Some(p) = &v.projected {
            let f = payload::projected_files(ctx, p, &vp.child("projected"), errs);
            files(FilesKind::Projected, f)
        } else {
            errs.add(
                &vp.child(&set[0]),
                "this volume type is not supported by berth",
            );
            continue;
        };
        out.push(plan);
    }
    out
}

/// kubelet's size of a memory emptyDir: the node's memory, or the pod's
/// memory limit if smaller, or the volume's sizeLimit if smaller still.
fn memory_size(node: i64, pod_limit: Option<i64>, size_limit: Option<u64>) -> u64 {
    let mut size = u64::try_from(node).unwrap_or(0);
    if let Some(p) = pod_limit
        .and_then(|p| u64::try_from(p).ok())
        .filter(|p| *p > 0 && *p <= size)
    {
        size = p;
    }
    if let Some(s) = size_limit.filter(|s| *s > 0 && *s <= size) {
        size = s;
    }
    size
}

/// The CRI mounts of `container` (at `path`) over `volumes`; `env` expands
/// subPathExpr.
pub(crate) fn container_mounts(
    container: &Container,
    volumes: &[VolumePlan],
    declared: &BTreeSet<String>,
    env: &EnvVars,
    privileged: bool,
    path: &FieldPath,
    errs: &mut Errors,
) -> Vec<Mount> {
    let mut out = Vec::new();
    let mut mount_points = BTreeSet::new();
    for (i, m) in container.volume_mounts.iter().flatten().enumerate() {
        let mp = path.child("volumeMounts").index(i);
        if m.name.is_empty() {
            errs.required(&mp.child("name"));
            continue;
        }
        let Some(vol) = volumes.iter().find(|v| v.name == m.name) else {
            // A declared volume that failed its own checks has its error already.
            if !declared.contains(&m.name) {
                errs.add(&mp.child("name"), format!("volume {:?} not found", m.name));
            }
            continue;
        };
        if m.mount_path.is_empty() {
            errs.required(&mp.child("mountPath"));
            continue;
        }
        if !m.mount_path.starts_with('/') {
            errs.add(&mp.child("mountPath"), "must be an absolute path");
            continue;
        }
        if !mount_points.insert(m.mount_path.trim_end_matches('/').to_string()) {
            errs.add(&mp.child("mountPath"), "must be unique");
            continue;
        }
        let sub_path = match (
            m.sub_path.as_deref().filter(|s| !s.is_empty()),
            m.sub_path_expr.as_deref().filter(|s| !s.is_empty()),
        ) {
            (Some(_), Some(_)) => {
                errs.add(
                    &mp.child("subPathExpr"),
                    "subPathExpr and subPath are mutually exclusive",
                );
                continue;
            }
            (Some(s), None) => Some((s.to_string(), mp.child("subPath"))),
            (None, Some(expr)) => {
                let ep = mp.child("subPathExpr");
                match expand_sub_path(expr, env) {
                    Ok(s) => Some((s, ep)),
                    Err(e) => {
                        errs.add(&ep, e);
                        continue;
                    }
                }
            }
            (None, None) => None,
        };
        let mut host_path = vol.host_path.clone();
        if let Some((s, sp)) = &sub_path {
            if let Err(e) = names::local_descending_path(s) {
                errs.add(sp, e);
                continue;
            }
            host_path = host_path.join(s);
        }
        let propagation = match m.mount_propagation.as_deref() {
            None | Some("") | Some("None") => MountPropagation::PropagationPrivate,
            Some("HostToContainer") => MountPropagation::PropagationHostToContainer,
            Some("Bidirectional") => {
                if !privileged {
                    errs.add(&mp.child("mountPropagation"), "Bidirectional mount propagation is available only to privileged containers");
                    continue;
                }
                MountPropagation::PropagationBidirectional
            }
            Some(p) => {
                errs.unsupported(
                    &mp.child("mountPropagation"),
                    p,
                    &["Bidirectional", "HostToContainer", "None"],
                );
                continue;
            }
        };
        let readonly = m.read_only == Some(true) || vol.always_read_only();
        let recursive_read_only = match m.recursive_read_only.as_deref() {
            None | Some("") | Some("Disabled") | Some("IfPossible") => false,
            Some("Enabled") => {
                if !readonly || propagation != MountPropagation::PropagationPrivate {
                    errs.add(
                        &mp.child("recursiveReadOnly"),
                        "may only be specified when readOnly is true and mountPropagation is None",
                    );
                    continue;
                }
                true
            }
            Some(r) => {
                errs.unsupported(
                    &mp.child("recursiveReadOnly"),
                    r,
                    &["Disabled", "Enabled", "IfPossible"],
                );
                continue;
            }
        };
        out.push(Mount {
            container_path: m.mount_path.clone(),
            host_path: host_path.to_string_lossy().into_owned(),
            readonly,
            propagation: propagation as i32,
            recursive_read_only,
            ..Default::default()
        });
    }
    out
}

/// kubelet's subPathExpr expansion: every reference must have a non-empty,
/// static value.
fn expand_sub_path(expr: &str, env: &EnvVars) -> Result<String, String> {
    let missing: Vec<String> = references(expr)
        .into_iter()
        .filter(|k| {
            env.get(k)
                .is_none_or(|v| v.as_static().is_none_or(|s| s.is_empty()))
        })
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing value for {}", missing.join(", ")));
    }
    env.expand(expr)
        .as_static()
        .ok_or_else(|| "references a value only known at run time".to_string())
}

/// The `$(NAME)` references in `s` (not `$$(NAME)`).
fn references(s: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'$' {
                i += 2;
                continue;
            }
            if b[i + 1] == b'(' {
                if let Some(end) = s[i + 2..].find(')') {
                    out.insert(s[i + 2..i + 2 + end].to_string());
                    i += end + 3;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::env::Template;
    use crate::manifest::options::PlanOptions;
    use crate::manifest::parse::{parse, Manifest};

    fn spec(yaml: &str) -> PodSpec {
        let mut v: serde_json::Value = serde_yaml_ng::from_str(yaml).unwrap();
        if let Some(vols) = v.pointer_mut("/volumes") {
            crate::manifest::parse::octal_modes(vols);
        }
        serde_json::from_value(v).unwrap()
    }

    const OBJECTS: &str =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: conf}\ndata: {a: \"1\"}\n";

    #[test]
    fn volume_plans() {
        let m = parse(OBJECTS).unwrap();
        let o = PlanOptions::default();
        let c = PodCtx::new(&m, &o, "p".into(), "default".into(), "u".into());
        let s = spec(
            r#"
containers: []
securityContext: {fsGroup: 2000}
volumes:
- {name: cache, emptyDir: {}}
- {name: shm, emptyDir: {medium: Memory, sizeLimit: 64Mi}}
- {name: big, emptyDir: {medium: Memory, sizeLimit: 100Gi}}
- {name: host, hostPath: {path: /var/log, type: Directory}}
- {name: conf, configMap: {name: conf}}
- {name: info, downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}}
"#,
        );
        let mut e = Errors::new();
        let v = pod_volumes(
            &c,
            &s,
            Path::new("/pods/u"),
            Some(256 << 20),
            &FieldPath::root("spec"),
            &mut e,
        );
        assert!(e.is_empty(), "{e}");
        assert_eq!(
            v[0].host_path,
            Path::new("/pods/u/volumes/kubernetes.io~empty-dir/cache")
        );
        assert_eq!(
            v[0].setup,
            VolumeSetup::EmptyDir {
                medium: StorageMedium::Disk,
                size_limit: None,
                mode: 0o777
            }
        );
        assert_eq!(
            v[1].setup,
            VolumeSetup::EmptyDir {
                medium: StorageMedium::Memory,
                size_limit: Some(64 << 20),
                mode: 0o777
            }
        );
        assert_eq!(
            v[2].setup,
            VolumeSetup::EmptyDir {
                medium: StorageMedium::Memory,
                size_limit: Some(256 << 20),
                mode: 0o777
            },
            "capped by the pod's limit"
        );
        assert_eq!(v[3].host_path, Path::new("/var/log"));
        assert_eq!(
            v[3].setup,
            VolumeSetup::HostPath {
                kind: HostPathType::Directory
            }
        );
        assert_eq!(
            v[4].host_path,
            Path::new("/pods/u/volumes/kubernetes.io~configmap/conf")
        );
        match &v[4].setup {
            VolumeSetup::Files {
                kind,
                tmpfs,
                files,
                owner,
            } => {
                assert_eq!(
                    (*kind, *tmpfs, files.len()),
                    (FilesKind::ConfigMap, false, 1)
                );
                assert_eq!(*owner, Some(Ownership { fs_group: 2000 }));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            v[5].setup,
            VolumeSetup::Files {
                kind: FilesKind::DownwardApi,
                tmpfs: true,
                ..
            }
        ));
        assert_eq!(memory_size(1000, None, None), 1000);
        assert_eq!(memory_size(1000, Some(2000), Some(500)), 500);
    }

    #[test]
    fn volume_errors() {
        let m = Manifest::default();
        let o = PlanOptions::default();
        let c = PodCtx::new(&m, &o, "p".into(), "default".into(), "u".into());
        let s = spec(
            r#"
containers: []
volumes:
- {name: a, emptyDir: {}}
- {name: a, emptyDir: {}}
- {name: b}
- {name: c, emptyDir: {}, hostPath: {path: /x}}
- {name: d, persistentVolumeClaim: {claimName: x}}
- {name: e, hostPath: {path: relative}}
- {name: f, hostPath: {path: /x, type: Dir}}
- {name: g, emptyDir: {medium: HugePages}}
- {name: h, configMap: {name: missing}}
- {name: i, hostPath: {path: /a/../etc}}
"#,
        );
        let mut e = Errors::new();
        pod_volumes(
            &c,
            &s,
            Path::new("/p"),
            None,
            &FieldPath::root("spec"),
            &mut e,
        );
        let v: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            v,
            [
                "spec.volumes[1].name: duplicate value \"a\"",
                "spec.volumes[2]: must specify a volume type",
                "spec.volumes[3]: may not specify more than 1 volume type (found emptyDir, hostPath)",
                "spec.volumes[4].persistentVolumeClaim: this volume type is not supported by berth (no cluster storage)",
                "spec.volumes[5].hostPath.path: must be an absolute path",
                "spec.volumes[6].hostPath.type: unsupported value \"Dir\": supported values: \"\", \"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", \"File\", \"FileOrCreate\", \"Socket\"",
                "spec.volumes[7].emptyDir.medium: unsupported value \"HugePages\": supported values: \"\", \"Memory\"",
                "spec.volumes[8].configMap.name: configmap \"missing\" not found in the file",
                "spec.volumes[9].hostPath.path: must not contain '..'",
            ]
        );
    }

    fn container(yaml: &str) -> Container {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn mounts() {
        let vols = vec![
            VolumePlan {
                name: "data".into(),
                host_path: "/pods/u/volumes/kubernetes.io~empty-dir/data".into(),
                setup: VolumeSetup::EmptyDir {
                    medium: StorageMedium::Disk,
                    size_limit: None,
                    mode: 0o777,
                },
            },
            VolumePlan {
                name: "conf".into(),
                host_path: "/pods/u/volumes/kubernetes.io~configmap/conf".into(),
                setup: VolumeSetup::Files {
                    kind: FilesKind::ConfigMap,
                    tmpfs: false,
                    files: vec![],
                    owner: None,
                },
            },
        ];
        let declared: BTreeSet<String> = ["data".to_string(), "conf".to_string()].into();
        let mut env = EnvVars::default();
        env.set("POD", Template::text("web-1"));
        let c = container(
            r#"
name: c
volumeMounts:
- {name: data, mountPath: /data}
- {name: data, mountPath: /logs, subPathExpr: "logs/$(POD)", mountPropagation: HostToContainer}
- {name: conf, mountPath: /etc/app}
- {name: data, mountPath: /ro, readOnly: true, subPath: ro, recursiveReadOnly: Enabled}
"#,
        );
        let mut e = Errors::new();
        let m = container_mounts(
            &c,
            &vols,
            &declared,
            &env,
            false,
            &FieldPath::root("c"),
            &mut e,
        );
        assert!(e.is_empty(), "{e}");
        let got: Vec<(&str, &str, bool, i32)> = m
            .iter()
            .map(|m| {
                (
                    m.container_path.as_str(),
                    m.host_path.as_str(),
                    m.readonly,
                    m.propagation,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/data",
                    "/pods/u/volumes/kubernetes.io~empty-dir/data",
                    false,
                    0
                ),
                (
                    "/logs",
                    "/pods/u/volumes/kubernetes.io~empty-dir/data/logs/web-1",
                    false,
                    1
                ),
                (
                    "/etc/app",
                    "/pods/u/volumes/kubernetes.io~configmap/conf",
                    true,
                    0
                ),
                (
                    "/ro",
                    "/pods/u/volumes/kubernetes.io~empty-dir/data/ro",
                    true,
                    0
                ),
            ]
        );
        assert!(m[3].recursive_read_only);

        let bad = container(
            r#"
name: c
volumeMounts:
- {name: nope, mountPath: /x}
- {name: data, mountPath: /data, subPath: ../etc}
- {name: data, mountPath: /abs, subPath: /etc}
- {name: data, mountPath: rel}
- {name: data, mountPath: /b, mountPropagation: Bidirectional}
- {name: data, mountPath: /c, subPathExpr: "$(MISSING)/x"}
- {name: data, mountPath: /d}
- {name: data, mountPath: /d/}
- {name: data, mountPath: /e, subPath: a, subPathExpr: b}
"#,
        );
        let mut e = Errors::new();
        container_mounts(
            &bad,
            &vols,
            &declared,
            &env,
            false,
            &FieldPath::root("spec").child("containers").index(0),
            &mut e,
        );
        let v: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            v,
            [
                "spec.containers[0].volumeMounts[0].name: volume \"nope\" not found",
                "spec.containers[0].volumeMounts[1].subPath: must not contain '..'",
                "spec.containers[0].volumeMounts[2].subPath: must be a relative path",
                "spec.containers[0].volumeMounts[3].mountPath: must be an absolute path",
                "spec.containers[0].volumeMounts[4].mountPropagation: Bidirectional mount propagation is available only to privileged containers",
                "spec.containers[0].volumeMounts[5].subPathExpr: missing value for MISSING",
                "spec.containers[0].volumeMounts[7].mountPath: must be unique",
                "spec.containers[0].volumeMounts[8].subPathExpr: subPathExpr and subPath are mutually exclusive",
            ]
        );
    }

    #[test]
    fn sub_path_references() {
        let r: Vec<String> = references("$(A)/$$(B)/$(C").into_iter().collect();
        assert_eq!(r, ["A"]);
    }
}
