//! Pod manifests to CRI requests: the kubelet half of `berth run pod.yaml`
//! and of static pods, as pure logic.
//!
//! A manifest file (YAML, multi-document, or JSON, as `kubectl apply` and
//! `podman kube play` take it) holds v1 Pods and the ConfigMaps and Secrets
//! they use. [`load`] parses it ([`parse`]), checks it with the apiserver's
//! and kubelet's rules, and turns each pod into a [`PodPlan`]: the CRI
//! `PodSandboxConfig`, the volumes to set up on the host, and per init and
//! app container the CRI `ContainerConfig` with its probes, hooks, restart
//! policy and termination settings, everything defaulted as kubelet does.
//! Every error names its field (`spec.containers[1].livenessProbe.httpGet.port:
//! no port named "web"`); the first invalid object (in file order) fails the
//! file with all of its errors, always in the same order (structural checks,
//! then pod-level fields, volumes, and each container in turn).
//!
//! The runner executes a plan: [`hostpath::check_host_path`] and
//! [`files::write_atomic`] prepare volumes, [`ContainerPlan::render`] fills
//! the values only the running sandbox knows (pod and host IPs), and
//! [`backoff::CrashLoopBackoff`] paces restarts.
//!
//! One module per concern: [`parse`], [`validate`], [`names`], [`field`]
//! (paths and errors), [`quantity`], [`resources`], [`env`], [`downward`],
//! [`security`], [`probes`], [`lifecycle`], [`dns`], [`volumes`],
//! [`payload`] (configMap/secret/downwardAPI/projected files), [`hostpath`],
//! [`files`] (the atomic writer), [`labels`], [`restart`], [`backoff`],
//! [`plan`] (the types), [`translate`] (the walk), [`options`] (node facts).

pub mod backoff;
mod context;
pub mod dns;
pub mod downward;
pub mod env;
pub mod error;
pub mod field;
pub mod files;
pub mod hostpath;
pub mod labels;
pub mod lifecycle;
pub mod names;
pub mod options;
pub mod parse;
pub mod payload;
pub mod plan;
pub mod probes;
pub mod quantity;
pub mod resources;
pub mod restart;
pub mod security;
pub mod translate;
pub mod validate;
pub mod volumes;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use env::{Deferred, RuntimeValues};
pub use error::ManifestError;
pub use field::{Errors, FieldError, FieldPath};
pub use options::PlanOptions;
pub use parse::{parse, Manifest};
pub use plan::{ContainerPlan, PodPlan, PullPolicy};
pub use restart::{ContainerKind, RestartPolicy};
pub use translate::plan_pods;

/// Parses and plans the manifest `text`; `source` names it (a path, or
/// `-`), for derived pod uids.
pub fn load(text: &str, source: &str, opts: &PlanOptions) -> Result<Vec<PodPlan>, ManifestError> {
    plan_pods(&parse(text)?, source, opts)
}

/// [`load`] of the file at `path`.
pub fn load_file(path: &Path, opts: &PlanOptions) -> Result<Vec<PodPlan>, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load(&text, &path.to_string_lossy(), opts)
}
