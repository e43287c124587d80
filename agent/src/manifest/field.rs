//! Field paths (`spec.containers[1].livenessProbe.httpGet.port`) and the
//! error list that validation and translation fill, in the order the pod is
//! walked, so the same manifest always gives the same errors.

use std::fmt;

/// A path to a field of a manifest object, written as `kubectl` and the
/// apiserver write them: `spec.containers[0].ports[1].hostPort`, map keys in
/// brackets (`data[app.conf]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath(String);

impl FieldPath {
    /// A path starting at the top-level field `name`.
    pub fn root(name: &str) -> Self {
        Self(name.to_string())
    }

    /// The field `name` of this one.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            return Self::root(name);
        }
        Self(format!("{}.{name}", self.0))
    }

    /// Element `index` of this list field.
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// Entry `key` of this map field.
    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One problem with one field: displayed as `path: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: FieldPath,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for FieldError {}

/// The errors found in one object, in walk order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` against `path`.
    pub fn add(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.clone(),
            message: message.into(),
        });
    }

    /// `path: required`.
    pub fn required(&mut self, path: &FieldPath) {
        self.add(path, "required");
    }

    /// `path: unsupported value "x": supported values: "a", "b"`.
    pub fn unsupported(&mut self, path: &FieldPath, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        self.add(
            path,
            format!(
                "unsupported value {value:?}: supported values: {}",
                list.join(", ")
            ),
        );
    }

    /// `path: duplicate value "x"`.
    pub fn duplicate(&mut self, path: &FieldPath, value: &str) {
        self.add(path, format!("duplicate value {value:?}"));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    /// Appends `other`'s errors after this list's.
    pub fn extend(&mut self, other: Errors) {
        self.0.extend(other.0);
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_kubectl() {
        let p = FieldPath::root("spec")
            .child("containers")
            .index(1)
            .child("livenessProbe")
            .child("httpGet")
            .child("port");
        assert_eq!(p.as_str(), "spec.containers[1].livenessProbe.httpGet.port");
        assert_eq!(
            FieldPath::root("data").key("a.conf").as_str(),
            "data[a.conf]"
        );
    }

    #[test]
    fn errors_keep_order_and_format() {
        let mut e = Errors::new();
        let p = FieldPath::root("spec").child("restartPolicy");
        e.unsupported(&p, "Sometimes", &["Always", "Never"]);
        e.required(&FieldPath::root("metadata").child("name"));
        assert_eq!(
            e.to_string(),
            "spec.restartPolicy: unsupported value \"Sometimes\": supported values: \"Always\", \"Never\"\nmetadata.name: required"
        );
        assert_eq!(e.len(), 2);
    }
}
