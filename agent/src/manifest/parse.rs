//! Reading a manifest file's text: YAML (one or more `---` documents) or
//! JSON (one object or a stream of them), holding v1 Pods, ConfigMaps and
//! Secrets, or `v1/List`s of them, as `kubectl apply -f` takes them. Objects
//! are decoded into `k8s-openapi` types; a Secret's `stringData` is merged
//! into its `data` as the apiserver does on write.
//!
//! kubectl reads YAML 1.1, where `defaultMode: 0644` is an octal integer;
//! the YAML 1.2 parser used here reads it as the string "0644". So the
//! `defaultMode`/`mode` fields under a Pod's `spec.volumes` that hold such a
//! string are turned into the octal number kubectl would see.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::ByteString;
use serde::Deserialize;
use serde_json::Value;

use super::error::ManifestError;

/// Namespace of objects that name none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A Pod and where it came from.
#[derive(Debug, Clone)]
pub struct PodDoc {
    /// 1-based document number in the file.
    pub document: usize,
    pub pod: Pod,
}

/// Everything a manifest file holds, keyed by `(namespace, name)`.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    /// Pods in file order.
    pub pods: Vec<PodDoc>,
    pub config_maps: BTreeMap<(String, String), ConfigMap>,
    pub secrets: BTreeMap<(String, String), Secret>,
}

impl Manifest {
    pub fn config_map(&self, namespace: &str, name: &str) -> Option<&ConfigMap> {
        self.config_maps
            .get(&(namespace.to_string(), name.to_string()))
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<&Secret> {
        self.secrets.get(&(namespace.to_string(), name.to_string()))
    }
}

/// Parses `text` (YAML or JSON).
pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
    let mut manifest = Manifest::default();
    for (i, value) in documents(text)?.into_iter().enumerate() {
        add_object(&mut manifest, i + 1, value)?;
    }
    Ok(manifest)
}

/// The documents of `text` as JSON values, null (empty) documents dropped.
fn documents(text: &str) -> Result<Vec<Value>, ManifestError> {
    let trimmed = text.trim_start();
    let mut out = Vec::new();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        for (i, v) in serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .enumerate()
        {
            let v = v.map_err(|e| syntax(i + 1, e))?;
            if let Value::Array(items) = v {
                out.extend(items);
            } else {
                out.push(v);
            }
        }
    } else {
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let v = Value::deserialize(doc).map_err(|e| syntax(i + 1, e))?;
            out.push(v);
        }
    }
    out.retain(|v| !v.is_null());
    Ok(out)
}

fn syntax(document: usize, e: impl std::fmt::Display) -> ManifestError {
    ManifestError::Syntax {
        document,
        message: e.to_string(),
    }
}

fn add_object(m: &mut Manifest, document: usize, value: Value) -> Result<(), ManifestError> {
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    if api_version != "v1" {
        return Err(ManifestError::UnsupportedKind {
            document,
            api_version,
            kind,
        });
    }
    match kind.as_str() {
        "List" => {
            let items = match value.get("items") {
                Some(Value::Array(items)) => items.clone(),
                None | Some(Value::Null) => Vec::new(),
                Some(_) => return Err(syntax(document, "List.items: expected a list")),
            };
            for item in items {
                add_object(m, document, item)?;
            }
        }
        "Pod" => {
            let mut value = value;
            if let Some(volumes) = value.pointer_mut("/spec/volumes") {
                octal_modes(volumes);
            }
            let pod: Pod = decode(document, value)?;
            m.pods.push(PodDoc { document, pod });
        }
        "ConfigMap" => {
            let cm: ConfigMap = decode(document, value)?;
            let key = object_key(&cm.metadata);
            insert(&mut m.config_maps, document, "ConfigMap", key, cm)?;
        }
        "Secret" => {
            let mut secret: Secret = decode(document, value)?;
            merge_string_data(&mut secret);
            let key = object_key(&secret.metadata);
            insert(&mut m.secrets, document, "Secret", key, secret)?;
        }
        _ => {
            return Err(ManifestError::UnsupportedKind {
                document,
                api_version,
                kind,
            })
        }
    }
    Ok(())
}

fn decode<T: serde::de::DeserializeOwned>(
    document: usize,
    value: Value,
) -> Result<T, ManifestError> {
    serde_json::from_value(value).map_err(|e| syntax(document, e))
}

fn object_key(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> (String, String) {
    (
        meta.namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
        meta.name.clone().unwrap_or_default(),
    )
}

fn insert<T>(
    map: &mut BTreeMap<(String, String), T>,
    document: usize,
    kind: &'static str,
    key: (String, String),
    object: T,
) -> Result<(), ManifestError> {
    if key.1.is_empty() {
        return Err(syntax(document, format!("{kind} metadata.name: required")));
    }
    if map.contains_key(&key) {
        return Err(ManifestError::Duplicate {
            document,
            kind,
            namespace: key.0,
            name: key.1,
        });
    }
    map.insert(key, object);
    Ok(())
}

/// Turns YAML 1.1 octal strings (`"0644"`) of `defaultMode`/`mode` keys
/// under `v` into numbers.
pub(crate) fn octal_modes(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(octal_modes),
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "defaultMode" || k == "mode" {
                    if let Some(n) = v.as_str().and_then(yaml11_octal) {
                        *v = Value::from(n);
                        continue;
                    }
                }
                octal_modes(v);
            }
        }
        _ => {}
    }
}

/// `0644` → 420 (a leading 0 and octal digits only).
fn yaml11_octal(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('0')?;
    if digits.is_empty() || !digits.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
        return None;
    }
    i64::from_str_radix(digits, 8).ok()
}

/// The apiserver's write-time merge: `stringData` entries override `data`.
fn merge_string_data(secret: &mut Secret) {
    if let Some(strings) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(BTreeMap::new);
        for (k, v) in strings {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: conf}
data: {a: "1"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: prod}
data: {user: YWRtaW4=}
stringData: {pass: hunter2, user: root}
---
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers: [{name: c, image: berth.local/busybox:latest}]
"#;

    #[test]
    fn multi_document_yaml() {
        let m = parse(MULTI).unwrap();
        assert_eq!(m.pods.len(), 1);
        assert_eq!(m.pods[0].document, 3);
        assert_eq!(m.pods[0].pod.metadata.name.as_deref(), Some("web"));
        assert!(m.config_map("default", "conf").is_some());
        let s = m.secret("prod", "creds").unwrap();
        let data = s.data.as_ref().unwrap();
        assert_eq!(data["user"].0, b"root");
        assert_eq!(data["pass"].0, b"hunter2");
    }

    #[test]
    fn json_object_stream_and_list() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[]}},
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}]}
            {"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"},"spec":{"containers":[]}}"#;
        let m = parse(text).unwrap();
        let names: Vec<_> = m
            .pods
            .iter()
            .map(|p| p.pod.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(m.config_maps.len(), 1);
    }

    #[test]
    fn unsupported_kinds_and_versions() {
        let e = parse("apiVersion: apps/v1\nkind: Deployment\n").unwrap_err();
        assert!(
            matches!(e, ManifestError::UnsupportedKind { document: 1, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("apps/v1/Deployment"));
        let e = parse("apiVersion: v1\nkind: Service\n").unwrap_err();
        assert!(matches!(e, ManifestError::UnsupportedKind { .. }));
    }

    #[test]
    fn syntax_and_schema_errors_name_the_document() {
        let e = parse("apiVersion: v1\nkind: Pod\n---\nkey: [unclosed\n").unwrap_err();
        assert!(
            matches!(e, ManifestError::Syntax { document: 2, .. }),
            "{e}"
        );
        let e = parse("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: 3}\n")
            .unwrap_err();
        assert!(
            matches!(e, ManifestError::Syntax { document: 1, .. }),
            "{e}"
        );
    }

    #[test]
    fn yaml11_octal_modes_in_pod_volumes() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: []\n  volumes:\n  - name: c\n    configMap: {name: c, defaultMode: 0400, items: [{key: k, path: k, mode: 0600}]}\n  - name: s\n    secret: {secretName: s, defaultMode: 0o440}\n  - name: d\n    downwardAPI: {defaultMode: 420}\n";
        let m = parse(text).unwrap();
        let v = m.pods[0]
            .pod
            .spec
            .as_ref()
            .unwrap()
            .volumes
            .as_ref()
            .unwrap();
        let cm = v[0].config_map.as_ref().unwrap();
        assert_eq!(cm.default_mode, Some(0o400));
        assert_eq!(cm.items.as_ref().unwrap()[0].mode, Some(0o600));
        assert_eq!(v[1].secret.as_ref().unwrap().default_mode, Some(0o440));
        assert_eq!(v[2].downward_api.as_ref().unwrap().default_mode, Some(420));
        // ConfigMap data keeps its strings.
        let m =
            parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {mode: \"0644\"}\n")
                .unwrap();
        assert_eq!(
            m.config_map("default", "c").unwrap().data.as_ref().unwrap()["mode"],
            "0644"
        );
        assert_eq!(yaml11_octal("08"), None);
        assert_eq!(yaml11_octal("0"), None);
    }

    #[test]
    fn duplicates_are_refused() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n";
        let e = parse(text).unwrap_err();
        assert!(
            matches!(e, ManifestError::Duplicate { document: 2, .. }),
            "{e}"
        );
    }
}
