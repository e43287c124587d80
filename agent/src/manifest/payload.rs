//! The files of configMap, secret, downwardAPI and projected volumes, as
//! kubelet's volume plugins compute them: every key (or only `items`, each
//! with its own path and mode) at `defaultMode` (0644); a missing optional
//! ConfigMap/Secret gives an empty volume, a missing optional key is left
//! out; downwardAPI files hold pod fields or resource values.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, KeyToPath, ProjectedVolumeSource};

use super::context::PodCtx;
use super::downward::{self, FieldUse};
use super::env;
use super::field::{Errors, FieldPath};
use super::files::ProjectedFile;
use super::names;

/// The default file mode of these volumes.
pub const DEFAULT_MODE: u32 = 0o644;

/// Checks a `defaultMode`/`mode` and returns it (or `default`).
pub(crate) fn mode(v: Option<i32>, default: u32, path: &FieldPath, errs: &mut Errors) -> u32 {
    match v {
        None => default,
        Some(m) => match u32::try_from(m) {
            Ok(m) if m <= 0o777 => m,
            _ => {
                errs.add(
                    path,
                    "must be a number between 0 and 0777 (octal), both inclusive",
                );
                default
            }
        },
    }
}

/// Refuses the file-ownership fields berth does not implement yet.
pub(crate) fn no_user(v: Option<i64>, path: &FieldPath, errs: &mut Errors) {
    if v.is_some() {
        errs.add(
            path,
            "setting the owner of volume files is not supported by berth",
        );
    }
}

/// A ConfigMap's or Secret's entries, `None` when the file has no such object.
pub(crate) struct KeySource<'a> {
    /// "configmap" or "secret", for messages.
    pub kind: &'static str,
    pub name: &'a str,
    pub entries: Option<BTreeMap<String, Vec<u8>>>,
}

impl<'a> KeySource<'a> {
    pub fn config_map(ctx: &PodCtx<'_>, name: &'a str) -> Self {
        let entries = ctx.config_map(name).map(|cm| {
            let mut m: BTreeMap<String, Vec<u8>> = cm
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                .collect();
            for (k, v) in cm.binary_data.iter().flatten() {
                m.entry(k.clone()).or_insert_with(|| v.0.clone());
            }
            m
        });
        Self {
            kind: "configmap",
            name,
            entries,
        }
    }

    pub fn secret(ctx: &PodCtx<'_>, name: &'a str) -> Self {
        let entries = ctx.secret(name).map(|s| {
            s.data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect()
        });
        Self {
            kind: "secret",
            name,
            entries,
        }
    }
}

/// The files of a ConfigMap/Secret source (kubelet's `MakePayload`);
/// `name_path` is the field naming the object.
pub(crate) fn key_files(
    src: &KeySource<'_>,
    items: Option<&[KeyToPath]>,
    default_mode: u32,
    optional: bool,
    path: &FieldPath,
    name_path: &FieldPath,
    errs: &mut Errors,
) -> Vec<ProjectedFile> {
    if src.name.is_empty() {
        errs.required(name_path);
        return Vec::new();
    }
    let Some(entries) = &src.entries else {
        if !optional {
            errs.add(
                name_path,
                format!("{} {:?} not found in the file", src.kind, src.name),
            );
        }
        return Vec::new();
    };
    let Some(items) = items.filter(|i| !i.is_empty()) else {
        return entries
            .iter()
            .map(|(k, v)| ProjectedFile {
                path: k.clone(),
                data: v.clone(),
                mode: default_mode,
            })
            .collect();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = path.child("items").index(i);
        if item.key.is_empty() {
            errs.required(&ip.child("key"));
            continue;
        }
        if let Err(e) = names::config_key(&item.key) {
            errs.add(&ip.child("key"), e);
            continue;
        }
        if let Err(e) = names::projected_path(&item.path) {
            errs.add(&ip.child("path"), e);
            continue;
        }
        no_user(item.user, &ip.child("user"), errs);
        let m = mode(item.mode, default_mode, &ip.child("mode"), errs);
        match entries.get(&item.key) {
            Some(data) => out.push(ProjectedFile {
                path: item.path.clone(),
                data: data.clone(),
                mode: m,
            }),
            None if optional => {}
            None => errs.add(
                &ip.child("key"),
                format!("{} {:?} has no key {:?}", src.kind, src.name, item.key),
            ),
        }
    }
    out
}

/// The files of a downwardAPI source.
pub(crate) fn downward_files(
    ctx: &PodCtx<'_>,
    items: &[DownwardAPIVolumeFile],
    default_mode: u32,
    path: &FieldPath,
    errs: &mut Errors,
) -> Vec<ProjectedFile> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = path.child("items").index(i);
        if let Err(e) = names::projected_path(&item.path) {
            errs.add(&ip.child("path"), e);
            continue;
        }
        no_user(item.user, &ip.child("user"), errs);
        let m = mode(item.mode, default_mode, &ip.child("mode"), errs);
        let value = match (&item.field_ref, &item.resource_field_ref) {
            (Some(f), None) => downward::field_value(
                ctx,
                f.api_version.as_deref(),
                &f.field_path,
                FieldUse::Volume,
                &ip.child("fieldRef"),
                errs,
            )
            .and_then(|t| t.as_static()),
            (None, Some(r)) => {
                let rp = ip.child("resourceFieldRef");
                match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                    None => {
                        errs.required(&rp.child("containerName"));
                        None
                    }
                    Some(c) => env::resource_ref(
                        ctx,
                        c,
                        &r.resource,
                        r.divisor.as_ref().map(|d| d.0.as_str()),
                        &rp,
                        errs,
                    ),
                }
            }
            (None, None) => {
                errs.add(&ip, "must specify one of: `fieldRef` or `resourceFieldRef`");
                None
            }
            (Some(_), Some(_)) => {
                errs.add(
                    &ip,
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                );
                None
            }
        };
        if let Some(v) = value {
            out.push(ProjectedFile {
                path: item.path.clone(),
                data: v.into_bytes(),
                mode: m,
            });
        }
    }
    out
}

/// The files of a projected volume.
pub(crate) fn projected_files(
    ctx: &PodCtx<'_>,
    p: &ProjectedVolumeSource,
    path: &FieldPath,
    errs: &mut Errors,
) -> Vec<ProjectedFile> {
    let default_mode = mode(
        p.default_mode,
        DEFAULT_MODE,
        &path.child("defaultMode"),
        errs,
    );
    no_user(p.default_user, &path.child("defaultUser"), errs);
    let mut out: Vec<ProjectedFile> = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, s) in p.sources.iter().flatten().enumerate() {
        let sp = path.child("sources").index(i);
        let count = [
            s.config_map.is_some(),
            s.secret.is_some(),
            s.downward_api.is_some(),
            s.service_account_token.is_some(),
            s.cluster_trust_bundle.is_some(),
            s.pod_certificate.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if count != 1 {
            errs.add(
                &sp,
                if count == 0 {
                    "must specify exactly 1 of: configMap, secret, downwardAPI"
                } else {
                    "may not specify more than 1 volume type per source"
                },
            );
            continue;
        }
        let files = if let Some(c) = &s.config_map {
            let cp = sp.child("configMap");
            key_files(
                &KeySource::config_map(ctx, &c.name),
                c.items.as_deref(),
                default_mode,
                c.optional == Some(true),
                &cp,
                &cp.child("name"),
                errs,
            )
        } else if let Some(c) = &s.secret {
            let cp = sp.child("secret");
            key_files(
                &KeySource::secret(ctx, &c.name),
                c.items.as_deref(),
                default_mode,
                c.optional == Some(true),
                &cp,
                &cp.child("name"),
                errs,
            )
        } else if let Some(d) = &s.downward_api {
            downward_files(
                ctx,
                d.items.as_deref().unwrap_or_default(),
                default_mode,
                &sp.child("downwardAPI"),
                errs,
            )
        } else {
            let which = if s.service_account_token.is_some() {
                "serviceAccountToken"
            } else if s.cluster_trust_bundle.is_some() {
                "clusterTrustBundle"
            } else {
                "podCertificate"
            };
            errs.add(
                &sp.child(which),
                "not supported by berth (there is no cluster to issue it)",
            );
            continue;
        };
        for f in files {
            if !seen.insert(f.path.clone()) {
                errs.add(&sp, format!("conflicting duplicate paths: {:?}", f.path));
                continue;
            }
            out.push(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::options::PlanOptions;
    use crate::manifest::parse::{parse, Manifest};
    use crate::manifest::resources::container_resources;
    use k8s_openapi::api::core::v1::{ConfigMapVolumeSource, SecretVolumeSource, Volume};

    const OBJECTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: conf}
data: {app.conf: "a=1", other: "o"}
binaryData: {logo.png: iVBORw==}
---
apiVersion: v1
kind: Secret
metadata: {name: tls}
data: {tls.key: a2V5}
"#;

    fn ctx<'a>(m: &'a Manifest, o: &'a PlanOptions) -> PodCtx<'a> {
        let mut c = PodCtx::new(m, o, "web".into(), "default".into(), "uid-1".into());
        c.labels.insert("app".into(), "web".into());
        let mut e = Errors::new();
        let r: k8s_openapi::api::core::v1::ResourceRequirements =
            serde_yaml_ng::from_str("{limits: {memory: 64Mi}}").unwrap();
        c.resources.insert(
            "c".into(),
            container_resources(&FieldPath::root("x"), Some(&r), &mut e),
        );
        c
    }

    fn volume(yaml: &str) -> Volume {
        let mut v: serde_json::Value = serde_yaml_ng::from_str(yaml).unwrap();
        crate::manifest::parse::octal_modes(&mut v);
        serde_json::from_value(v).unwrap()
    }

    fn cm_files(c: &PodCtx<'_>, v: &ConfigMapVolumeSource, e: &mut Errors) -> Vec<ProjectedFile> {
        let p = FieldPath::root("v");
        let m = mode(v.default_mode, DEFAULT_MODE, &p.child("defaultMode"), e);
        key_files(
            &KeySource::config_map(c, &v.name),
            v.items.as_deref(),
            m,
            v.optional == Some(true),
            &p,
            &p.child("name"),
            e,
        )
    }

    #[test]
    fn config_map_all_keys_and_items() {
        let m = parse(OBJECTS).unwrap();
        let o = PlanOptions::default();
        let c = ctx(&m, &o);
        let mut e = Errors::new();
        let v = volume("{name: v, configMap: {name: conf, defaultMode: 0400}}");
        let f = cm_files(&c, v.config_map.as_ref().unwrap(), &mut e);
        let paths: Vec<(&str, u32)> = f.iter().map(|f| (f.path.as_str(), f.mode)).collect();
        assert_eq!(
            paths,
            [("app.conf", 0o400), ("logo.png", 0o400), ("other", 0o400)]
        );
        assert_eq!(f[1].data, [0x89, b'P', b'N', b'G']);
        let v = volume("{name: v, configMap: {name: conf, items: [{key: app.conf, path: etc/app.conf, mode: 0600}, {key: nope, path: x}]}}");
        let f = cm_files(&c, v.config_map.as_ref().unwrap(), &mut e);
        assert_eq!(
            f,
            [ProjectedFile {
                path: "etc/app.conf".into(),
                data: b"a=1".to_vec(),
                mode: 0o600
            }]
        );
        assert_eq!(
            e.to_string(),
            "v.items[1].key: configmap \"conf\" has no key \"nope\""
        );
        let v = volume(
            "{name: v, configMap: {name: conf, optional: true, items: [{key: nope, path: x}]}}",
        );
        let mut e = Errors::new();
        assert!(cm_files(&c, v.config_map.as_ref().unwrap(), &mut e).is_empty());
        assert!(e.is_empty());
    }

    #[test]
    fn missing_objects() {
        let m = Manifest::default();
        let o = PlanOptions::default();
        let c = ctx(&m, &o);
        let mut e = Errors::new();
        let v = volume("{name: v, configMap: {name: gone, optional: true}}");
        assert!(cm_files(&c, v.config_map.as_ref().unwrap(), &mut e).is_empty());
        assert!(e.is_empty());
        let v = volume(
            "{name: v, configMap: {name: gone, defaultMode: 01000, items: [{key: a, path: ../x}]}}",
        );
        cm_files(&c, v.config_map.as_ref().unwrap(), &mut e);
        let s = e.to_string();
        assert!(
            s.contains("v.defaultMode: must be a number between 0 and 0777"),
            "{s}"
        );
        assert!(
            s.contains("v.name: configmap \"gone\" not found in the file"),
            "{s}"
        );
        let sv: SecretVolumeSource = serde_yaml_ng::from_str("{secretName: nope}").unwrap();
        let mut e = Errors::new();
        let p = FieldPath::root("s");
        key_files(
            &KeySource::secret(&c, sv.secret_name.as_deref().unwrap()),
            None,
            DEFAULT_MODE,
            false,
            &p,
            &p.child("secretName"),
            &mut e,
        );
        assert_eq!(
            e.to_string(),
            "s.secretName: secret \"nope\" not found in the file"
        );
    }

    #[test]
    fn downward_api_files() {
        let m = Manifest::default();
        let o = PlanOptions::default();
        let c = ctx(&m, &o);
        let v = volume(
            r#"
name: info
downwardAPI:
  items:
  - {path: labels, fieldRef: {fieldPath: metadata.labels}}
  - {path: name, fieldRef: {fieldPath: metadata.name}, mode: 0600}
  - {path: mem, resourceFieldRef: {containerName: c, resource: limits.memory, divisor: 1Mi}}
  - {path: ip, fieldRef: {fieldPath: status.podIP}}
  - {path: bad, resourceFieldRef: {resource: limits.cpu}}
"#,
        );
        let mut e = Errors::new();
        let items = v.downward_api.unwrap().items.unwrap();
        let f = downward_files(&c, &items, DEFAULT_MODE, &FieldPath::root("d"), &mut e);
        let got: Vec<(&str, String, u32)> = f
            .iter()
            .map(|f| {
                (
                    f.path.as_str(),
                    String::from_utf8(f.data.clone()).unwrap(),
                    f.mode,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("labels", "app=\"web\"".into(), 0o644),
                ("name", "web".into(), 0o600),
                ("mem", "64".into(), 0o644)
            ]
        );
        let v: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(
            v[0].starts_with("d.items[3].fieldRef.fieldPath: unsupported value \"status.podIP\"")
        );
        assert_eq!(v[1], "d.items[4].resourceFieldRef.containerName: required");
    }

    #[test]
    fn projected_volume() {
        let m = parse(OBJECTS).unwrap();
        let o = PlanOptions::default();
        let c = ctx(&m, &o);
        let v = volume(
            r#"
name: all
projected:
  defaultMode: 0440
  sources:
  - configMap: {name: conf, items: [{key: other, path: other}]}
  - secret: {name: tls}
  - downwardAPI: {items: [{path: ns, fieldRef: {fieldPath: metadata.namespace}}]}
  - secret: {name: absent, optional: true}
  - configMap: {name: conf, items: [{key: app.conf, path: other}]}
  - serviceAccountToken: {path: token}
  - {}
"#,
        );
        let mut e = Errors::new();
        let f = projected_files(
            &c,
            v.projected.as_ref().unwrap(),
            &FieldPath::root("p"),
            &mut e,
        );
        let got: Vec<(&str, u32)> = f.iter().map(|f| (f.path.as_str(), f.mode)).collect();
        assert_eq!(got, [("other", 0o440), ("tls.key", 0o440), ("ns", 0o440)]);
        let v: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            v,
            [
                "p.sources[4]: conflicting duplicate paths: \"other\"",
                "p.sources[5].serviceAccountToken: not supported by berth (there is no cluster to issue it)",
                "p.sources[6]: must specify exactly 1 of: configMap, secret, downwardAPI",
            ]
        );
    }
}
