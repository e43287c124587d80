//! The downward API's `fieldRef`s: which pod fields an env var or a
//! downwardAPI file may read, and their values. `status.podIP(s)` and
//! `status.hostIP(s)` are only known once the sandbox runs, so they come out
//! as deferred values the runner fills.

use std::collections::BTreeMap;

use super::context::PodCtx;
use super::env::{Deferred, Template};
use super::field::{Errors, FieldPath};
use super::names;

/// Where a fieldRef is used: env vars and volumes allow different fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldUse {
    Env,
    Volume,
}

const ENV_FIELDS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

const VOLUME_FIELDS: [&str; 5] = [
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

/// The value of `field_path` (checked against `use_`), errors at `path`
/// (the `fieldRef`).
pub(crate) fn field_value(
    ctx: &PodCtx<'_>,
    api_version: Option<&str>,
    field_path: &str,
    use_: FieldUse,
    path: &FieldPath,
    errs: &mut Errors,
) -> Option<Template> {
    if let Some(v) = api_version.filter(|v| !v.is_empty() && *v != "v1") {
        errs.unsupported(&path.child("apiVersion"), v, &["v1"]);
        return None;
    }
    let fp = path.child("fieldPath");
    if field_path.is_empty() {
        errs.required(&fp);
        return None;
    }
    if let Some((base, key)) = subscripted(field_path) {
        let map = match base {
            "metadata.labels" => &ctx.labels,
            "metadata.annotations" => &ctx.annotations,
            _ => {
                errs.add(
                    &fp,
                    format!("field path {field_path:?} does not support a subscript"),
                );
                return None;
            }
        };
        if let Err(e) = names::qualified_name(key) {
            errs.add(&fp, format!("invalid key {key:?}: {e}"));
            return None;
        }
        return Some(Template::text(map.get(key).cloned().unwrap_or_default()));
    }
    let allowed: &[&str] = match use_ {
        FieldUse::Env => &ENV_FIELDS,
        FieldUse::Volume => &VOLUME_FIELDS,
    };
    if !allowed.contains(&field_path) {
        errs.unsupported(&fp, field_path, allowed);
        return None;
    }
    let text = |s: &str| Some(Template::text(s.to_string()));
    match field_path {
        "metadata.name" => text(&ctx.name),
        "metadata.namespace" => text(&ctx.namespace),
        "metadata.uid" => text(&ctx.uid),
        "metadata.labels" => text(&format_map(&ctx.labels)),
        "metadata.annotations" => text(&format_map(&ctx.annotations)),
        "spec.nodeName" => text(&ctx.node_name),
        "spec.serviceAccountName" => text(&ctx.service_account),
        "status.hostIP" => Some(Template::deferred(Deferred::HostIp)),
        "status.hostIPs" => Some(Template::deferred(Deferred::HostIps)),
        "status.podIP" => Some(Template::deferred(Deferred::PodIp)),
        "status.podIPs" => Some(Template::deferred(Deferred::PodIps)),
        _ => None,
    }
}

/// `metadata.labels['app']` → `("metadata.labels", "app")`.
fn subscripted(path: &str) -> Option<(&str, &str)> {
    let inner = path.strip_suffix("']")?;
    let (base, key) = inner.split_once("['")?;
    (!base.is_empty()).then_some((base, key))
}

/// A label or annotation map as a downwardAPI file holds it: `key="value"`
/// lines sorted by key, values quoted as Go's `%q` does.
pub fn format_map(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote`: escapes quotes, backslashes and non-printable
/// characters.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::options::PlanOptions;
    use crate::manifest::parse::Manifest;

    fn ctx<'a>(m: &'a Manifest, o: &'a PlanOptions) -> PodCtx<'a> {
        let mut c = PodCtx::new(m, o, "web".into(), "prod".into(), "u-1".into());
        c.labels.insert("app".into(), "web".into());
        c.labels.insert("tier".into(), "front \"end\"".into());
        c
    }

    #[test]
    fn env_fields() {
        let (m, o) = (Manifest::default(), PlanOptions::default());
        let c = ctx(&m, &o);
        let mut e = Errors::new();
        let p = FieldPath::root("f");
        let v = |fp: &str, e: &mut Errors| field_value(&c, None, fp, FieldUse::Env, &p, e);
        assert_eq!(
            v("metadata.name", &mut e).unwrap().as_static().unwrap(),
            "web"
        );
        assert_eq!(
            v("metadata.namespace", &mut e)
                .unwrap()
                .as_static()
                .unwrap(),
            "prod"
        );
        assert_eq!(
            v("metadata.labels['app']", &mut e)
                .unwrap()
                .as_static()
                .unwrap(),
            "web"
        );
        assert_eq!(
            v("metadata.labels['none']", &mut e)
                .unwrap()
                .as_static()
                .unwrap(),
            ""
        );
        assert_eq!(
            v("spec.nodeName", &mut e).unwrap().as_static().unwrap(),
            "localhost"
        );
        assert_eq!(
            v("spec.serviceAccountName", &mut e)
                .unwrap()
                .as_static()
                .unwrap(),
            "default"
        );
        assert!(v("status.podIP", &mut e).unwrap().as_static().is_none());
        assert!(e.is_empty(), "{e}");
        assert!(
            v("metadata.labels", &mut e).is_none(),
            "whole maps only in volumes"
        );
        assert!(v("spec.hostname", &mut e).is_none());
        assert!(v("metadata.name['x']", &mut e).is_none());
        assert!(field_value(&c, Some("v2"), "metadata.name", FieldUse::Env, &p, &mut e).is_none());
        assert_eq!(e.len(), 4);
        assert!(e
            .to_string()
            .contains("f.apiVersion: unsupported value \"v2\""));
    }

    #[test]
    fn volume_fields_and_map_format() {
        let (m, o) = (Manifest::default(), PlanOptions::default());
        let c = ctx(&m, &o);
        let mut e = Errors::new();
        let p = FieldPath::root("f");
        let v = field_value(
            &c,
            Some("v1"),
            "metadata.labels",
            FieldUse::Volume,
            &p,
            &mut e,
        )
        .unwrap();
        assert_eq!(
            v.as_static().unwrap(),
            "app=\"web\"\ntier=\"front \\\"end\\\"\""
        );
        assert!(field_value(&c, None, "status.podIP", FieldUse::Volume, &p, &mut e).is_none());
        assert_eq!(e.len(), 1);
        assert_eq!(go_quote("a\u{1}\u{85}é"), "\"a\\x01\\u0085é\"");
    }
}
