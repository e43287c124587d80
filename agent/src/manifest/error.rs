//! The module's error type: a file that cannot be read or parsed, an object
//! berth does not run, or objects whose fields are invalid (every problem,
//! each naming its field path).

use std::path::PathBuf;

use super::field::Errors;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A document is not valid YAML/JSON, or does not fit its kind's schema.
    #[error("document {document}: {message}")]
    Syntax { document: usize, message: String },
    /// A document of a kind berth cannot run (or a bad `apiVersion`).
    #[error("document {document}: {api_version}/{kind} is not supported (berth reads v1 Pod, ConfigMap, Secret and List)")]
    UnsupportedKind {
        document: usize,
        api_version: String,
        kind: String,
    },
    /// Two objects of one kind with the same namespace and name.
    #[error("document {document}: duplicate {kind} {namespace}/{name}")]
    Duplicate {
        document: usize,
        kind: &'static str,
        namespace: String,
        name: String,
    },
    /// The file holds no Pod.
    #[error("the file holds no Pod")]
    NoPods,
    /// Invalid fields in `object` (`Pod "web"`, `ConfigMap "conf"`).
    #[error("invalid {object}:\n{errors}")]
    Invalid { object: String, errors: Errors },
}

impl ManifestError {
    /// The field errors, for [`ManifestError::Invalid`].
    pub fn field_errors(&self) -> Option<&Errors> {
        match self {
            Self::Invalid { errors, .. } => Some(errors),
            _ => None,
        }
    }
}
