//! What translating one pod reads besides the container at hand: the pod's
//! identity and metadata, the file's ConfigMaps and Secrets, every
//! container's resources, the node's facts, and the warnings (kubelet's
//! events) gathered on the way.

use std::cell::RefCell;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::options::PlanOptions;
use super::parse::Manifest;
use super::quantity::Amount;
use super::resources::{ContainerResources, CPU, EPHEMERAL_STORAGE, MEMORY};

/// The pod being translated.
pub(crate) struct PodCtx<'a> {
    pub manifest: &'a Manifest,
    pub opts: &'a PlanOptions,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `spec.nodeName`, or the node's name.
    pub node_name: String,
    /// `spec.serviceAccountName`, or `default` as admission would set it.
    pub service_account: String,
    /// Every container's resources, by container name.
    pub resources: BTreeMap<String, ContainerResources>,
    warnings: RefCell<Vec<String>>,
}

impl<'a> PodCtx<'a> {
    pub fn new(
        manifest: &'a Manifest,
        opts: &'a PlanOptions,
        name: String,
        namespace: String,
        uid: String,
    ) -> Self {
        Self {
            manifest,
            opts,
            name,
            namespace,
            uid,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            node_name: opts.node_name.clone(),
            service_account: "default".into(),
            resources: BTreeMap::new(),
            warnings: RefCell::new(Vec::new()),
        }
    }

    pub fn config_map(&self, name: &str) -> Option<&'a ConfigMap> {
        self.manifest.config_map(&self.namespace, name)
    }

    pub fn secret(&self, name: &str) -> Option<&'a Secret> {
        self.manifest.secret(&self.namespace, name)
    }

    /// Node allocatable amounts, the values of unset limits.
    pub fn node_allocatable(&self) -> BTreeMap<&'static str, Amount> {
        [
            (CPU, Amount::from_milli(self.opts.cpu_capacity_millis)),
            (MEMORY, Amount::from_units(self.opts.memory_capacity_bytes)),
            (
                EPHEMERAL_STORAGE,
                Amount::from_units(self.opts.ephemeral_storage_bytes),
            ),
        ]
        .into_iter()
        .collect()
    }

    /// Records a warning (something kubelet reports as an event and goes on).
    pub fn warn(&self, message: impl Into<String>) {
        self.warnings.borrow_mut().push(message.into());
    }

    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.warnings.borrow_mut())
    }
}
