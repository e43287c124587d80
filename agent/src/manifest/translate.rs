//! Turning a parsed manifest into [`PodPlan`]s: validates each object, then
//! walks the pod (structural checks, pod fields, volumes, init containers,
//! app containers) translating each part with its module and collecting
//! every error with its field path. The first invalid object (in file order)
//! fails the whole file, with all of its errors.

use std::collections::BTreeSet;
use std::time::Duration;

use berth_proto::v1::{
    ContainerConfig, ContainerMetadata, ImageSpec, LinuxContainerConfig, LinuxPodSandboxConfig,
    PodSandboxConfig, PodSandboxMetadata, PortMapping, Protocol,
};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use sha2::{Digest, Sha256};

use super::context::PodCtx;
use super::dns;
use super::env::{self, RuntimeValues};
use super::error::ManifestError;
use super::field::{Errors, FieldPath};
use super::labels::{self, AnnotationInput, PodId};
use super::lifecycle;
use super::names;
use super::options::PlanOptions;
use super::parse::{Manifest, PodDoc, DEFAULT_NAMESPACE};
use super::plan::{ContainerPlan, PodPlan, PullPolicy};
use super::probes;
use super::resources::{self, ContainerResources, OomContext, MEMORY, SYSTEM_NODE_CRITICAL};
use super::restart::{ContainerKind, RestartPolicy};
use super::security;
use super::validate;
use super::volumes::{self, VolumePlan};

/// kubelet's default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_PERIOD: i64 = 30;

/// Plans every pod of `manifest`; `source` names the file (it goes into
/// derived uids, so two files with the same pod get different ones).
pub fn plan_pods(
    manifest: &Manifest,
    source: &str,
    opts: &PlanOptions,
) -> Result<Vec<PodPlan>, ManifestError> {
    validate_objects(manifest)?;
    if manifest.pods.is_empty() {
        return Err(ManifestError::NoPods);
    }
    manifest
        .pods
        .iter()
        .map(|doc| {
            plan_pod(manifest, doc, source, opts).map_err(|errors| ManifestError::Invalid {
                object: format!(
                    "Pod {:?} (document {})",
                    doc.pod.metadata.name.as_deref().unwrap_or_default(),
                    doc.document
                ),
                errors,
            })
        })
        .collect()
}

/// Checks the ConfigMaps' and Secrets' keys.
fn validate_objects(m: &Manifest) -> Result<(), ManifestError> {
    let keys = |errs: &mut Errors, field: &str, list: Vec<&String>| {
        for k in list {
            if let Err(e) = names::config_key(k) {
                errs.add(&FieldPath::root(field).key(k), e);
            }
        }
    };
    for ((_, name), cm) in &m.config_maps {
        let mut errs = Errors::new();
        validate::metadata(&cm.metadata, &mut errs);
        keys(
            &mut errs,
            "data",
            cm.data.iter().flatten().map(|(k, _)| k).collect(),
        );
        keys(
            &mut errs,
            "binaryData",
            cm.binary_data.iter().flatten().map(|(k, _)| k).collect(),
        );
        for k in cm.binary_data.iter().flatten().map(|(k, _)| k) {
            if cm.data.as_ref().is_some_and(|d| d.contains_key(k)) {
                errs.add(
                    &FieldPath::root("binaryData").key(k),
                    "duplicate of key present in data",
                );
            }
        }
        if !errs.is_empty() {
            return Err(ManifestError::Invalid {
                object: format!("ConfigMap {name:?}"),
                errors: errs,
            });
        }
    }
    for ((_, name), s) in &m.secrets {
        let mut errs = Errors::new();
        validate::metadata(&s.metadata, &mut errs);
        keys(
            &mut errs,
            "data",
            s.data.iter().flatten().map(|(k, _)| k).collect(),
        );
        if !errs.is_empty() {
            return Err(ManifestError::Invalid {
                object: format!("Secret {name:?}"),
                errors: errs,
            });
        }
    }
    Ok(())
}

/// A uid for a pod without one: a hash of its content, the node and the
/// source, like kubelet's static pod uids.
fn derive_uid(doc: &PodDoc, source: &str, opts: &PlanOptions) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&doc.pod).unwrap_or_default());
    h.update(format!("host:{}", opts.node_name));
    h.update(format!("file:{source}"));
    hex::encode(&h.finalize()[..16])
}

/// One container's place in the pod.
struct Slot<'a> {
    container: &'a Container,
    kind: ContainerKind,
    path: FieldPath,
}

fn plan_pod(
    manifest: &Manifest,
    doc: &PodDoc,
    source: &str,
    opts: &PlanOptions,
) -> Result<PodPlan, Errors> {
    let pod = &doc.pod;
    let mut errs = Errors::new();
    validate::pod(pod, &mut errs);
    let Some(spec) = &pod.spec else {
        return Err(errs);
    };
    let sp = FieldPath::root("spec");
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.into());
    let uid = pod
        .metadata
        .uid
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| derive_uid(doc, source, opts));
    let mut ctx = PodCtx::new(manifest, opts, name.clone(), namespace.clone(), uid.clone());
    ctx.labels = pod.metadata.labels.clone().unwrap_or_default();
    ctx.annotations = pod.metadata.annotations.clone().unwrap_or_default();
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        ctx.node_name = n.to_string();
    }
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|n| !n.is_empty())
    {
        ctx.service_account = sa.to_string();
    }

    let restart_policy = validate::restart_policy(spec, &mut errs);
    security::validate_pod(spec, &sp, &mut errs);
    let dns_policy = dns::validate(spec, &sp, &mut errs);

    let init = spec.init_containers.as_deref().unwrap_or_default();
    let slots: Vec<Slot<'_>> = init
        .iter()
        .enumerate()
        .map(|(i, c)| Slot {
            container: c,
            kind: if validate::is_sidecar(c) {
                ContainerKind::Sidecar
            } else {
                ContainerKind::Init
            },
            path: sp.child("initContainers").index(i),
        })
        .chain(spec.containers.iter().enumerate().map(|(i, c)| Slot {
            container: c,
            kind: ContainerKind::App,
            path: sp.child("containers").index(i),
        }))
        .collect();
    let mut all_resources: Vec<ContainerResources> = Vec::new();
    for s in &slots {
        let r = resources::container_resources(&s.path, s.container.resources.as_ref(), &mut errs);
        ctx.resources
            .entry(s.container.name.clone())
            .or_insert_with(|| r.clone());
        all_resources.push(r);
    }
    let qos = resources::pod_qos(&all_resources);
    let grace = spec
        .termination_grace_period_seconds
        .unwrap_or(DEFAULT_GRACE_PERIOD)
        .max(0);
    let pod_dir = opts.pods_dir.join(&uid);

    let with_kind = || slots.iter().zip(&all_resources);
    let init_res = || {
        with_kind()
            .filter(|(s, _)| s.kind != ContainerKind::App)
            .map(|(s, r)| (r, s.kind == ContainerKind::Sidecar))
    };
    let app_res = || {
        with_kind()
            .filter(|(s, _)| s.kind == ContainerKind::App)
            .map(|(_, r)| r)
    };
    let pod_requests = resources::pod_totals(init_res(), app_res(), |r| &r.requests);
    let pod_limits = resources::pod_totals(init_res(), app_res(), |r| &r.limits);
    let all_memory_limited = all_resources.iter().all(|r| r.limit(MEMORY).is_some());
    let pod_memory_limit = all_memory_limited
        .then(|| pod_limits.get(MEMORY).map(|a| a.value()))
        .flatten();

    let volumes = volumes::pod_volumes(&ctx, spec, &pod_dir, pod_memory_limit, &sp, &mut errs);
    let declared: BTreeSet<String> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.clone())
        .collect();

    let oom = OomContext {
        qos,
        node_critical: spec.priority_class_name.as_deref() == Some(SYSTEM_NODE_CRITICAL),
        memory_capacity: opts.memory_capacity_bytes,
        min_app_memory_request: app_res()
            .map(|r| r.request(MEMORY).map(|a| a.value()).unwrap_or(0))
            .min(),
    };
    let id = PodId {
        name: &name,
        namespace: &namespace,
        uid: &uid,
    };
    let pod_in = PodInput {
        ctx: &ctx,
        spec,
        id,
        volumes: &volumes,
        declared: &declared,
        oom,
        restart_policy,
        grace,
        pod_dir: &pod_dir,
    };
    let mut init_containers = Vec::new();
    let mut containers = Vec::new();
    for (s, r) in slots.iter().zip(&all_resources) {
        let plan = container_plan(&pod_in, s, r, &mut errs);
        if s.kind == ContainerKind::App {
            containers.push(plan);
        } else {
            init_containers.push(plan);
        }
    }

    let host_network = spec.host_network == Some(true);
    let (hostname, fqdn) = dns::hostname(spec, &name, &namespace, opts);
    let mut sandbox_hostname = hostname.clone();
    if spec.set_hostname_as_fqdn == Some(true) {
        match &fqdn {
            Some(f) if f.len() > 64 => errs.add(
                &sp.child("setHostnameAsFQDN"),
                format!("pod hostname FQDN {f:?} is too long (64 characters is the max, {} characters requested)", f.len()),
            ),
            Some(f) => sandbox_hostname = f.clone(),
            None => {}
        }
    }
    let (dns_config, dns_warning) = match dns_policy {
        Some(p) => dns::dns_config(spec, p, &namespace, opts),
        None => Default::default(),
    };
    if let Some(w) = dns_warning {
        ctx.warn(w);
    }
    for w in validate::ignored(spec) {
        ctx.warn(w);
    }
    if !errs.is_empty() {
        return Err(errs);
    }

    let (security_context, sysctls) = security::sandbox_security(spec);
    let sandbox = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.clone(),
            uid: uid.clone(),
            namespace: namespace.clone(),
            attempt: 0,
        }),
        hostname: if host_network {
            String::new()
        } else {
            sandbox_hostname
        },
        log_directory: opts
            .log_dir
            .join(format!("{namespace}_{name}_{uid}"))
            .to_string_lossy()
            .into_owned(),
        dns_config: Some(dns_config),
        port_mappings: port_mappings(spec),
        labels: labels::sandbox_labels(&ctx.labels, id),
        annotations: ctx
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: String::new(),
            security_context: Some(security_context),
            sysctls,
            overhead: None,
            resources: Some(resources::linux_resources(
                pod_requests.get(resources::CPU).copied(),
                pod_limits.get(resources::CPU).copied(),
                pod_limits.get(MEMORY).copied(),
            )),
        }),
        windows: None,
    };
    Ok(PodPlan {
        name,
        namespace,
        uid,
        document: doc.document,
        sandbox,
        hostname: (!host_network).then_some(hostname),
        fqdn: if host_network { None } else { fqdn },
        host_aliases: dns::host_aliases(spec),
        restart_policy,
        qos,
        termination_grace_period: Duration::from_secs(grace.unsigned_abs()),
        active_deadline: spec
            .active_deadline_seconds
            .filter(|d| *d > 0)
            .map(|d| Duration::from_secs(d.unsigned_abs())),
        pod_dir,
        volumes,
        init_containers,
        containers,
        warnings: ctx.take_warnings(),
    })
}

/// kubelet's port mappings: every port of the app containers (a hostPort
/// of 0 maps nothing), hostPort defaulted to containerPort on the host
/// network.
fn port_mappings(spec: &PodSpec) -> Vec<PortMapping> {
    let host_network = spec.host_network == Some(true);
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .map(|p| {
            let protocol = match p.protocol.as_deref() {
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                _ => Protocol::Tcp,
            };
            let host_port = match p.host_port.unwrap_or(0) {
                0 if host_network => p.container_port,
                h => h,
            };
            PortMapping {
                protocol: protocol as i32,
                container_port: p.container_port,
                host_port,
                host_ip: p.host_ip.clone().unwrap_or_default(),
            }
        })
        .collect()
}

/// What every container of the pod shares.
struct PodInput<'a> {
    ctx: &'a PodCtx<'a>,
    spec: &'a PodSpec,
    id: PodId<'a>,
    volumes: &'a [VolumePlan],
    declared: &'a BTreeSet<String>,
    oom: OomContext,
    restart_policy: RestartPolicy,
    grace: i64,
    pod_dir: &'a std::path::Path,
}

fn container_plan(
    p: &PodInput<'_>,
    slot: &Slot<'_>,
    res: &ContainerResources,
    errs: &mut Errors,
) -> ContainerPlan {
    let c = slot.container;
    let path = &slot.path;
    let env = env::container_env(p.ctx, c, path, errs);
    let command: Vec<_> = c.command.iter().flatten().map(|s| env.expand(s)).collect();
    let args: Vec<_> = c.args.iter().flatten().map(|s| env.expand(s)).collect();
    let security = security::container_security(p.spec, c, p.ctx.opts, path, errs);
    let mounts = volumes::container_mounts(
        c,
        p.volumes,
        p.declared,
        &env,
        security.context.privileged,
        path,
        errs,
    );
    let probes = probes::container_probes(c, path, errs);
    let lifecycle = lifecycle::container_lifecycle(c, p.grace, path, errs);
    let termination_message = lifecycle::termination_message(c, path, errs);
    let mut lcr = resources::linux_resources(
        res.request(resources::CPU),
        res.limit(resources::CPU),
        res.limit(MEMORY),
    );
    lcr.oom_score_adj = resources::oom_score_adj(
        res.request(MEMORY).map(|a| a.value()).unwrap_or(0),
        slot.kind == ContainerKind::Sidecar,
        &p.oom,
    );
    let hash = labels::container_hash(c);
    let image = c.image.clone().unwrap_or_default();
    let annotations = labels::container_annotations(&AnnotationInput {
        container: c,
        hash: &hash,
        termination_message_path: &termination_message.path,
        termination_message_policy: termination_message.policy.as_str(),
        grace_period: p.spec.termination_grace_period_seconds,
    });
    let config = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: c.name.clone(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.clone(),
            user_specified_image: image.clone(),
            ..Default::default()
        }),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        mounts,
        labels: labels::container_labels(&c.name, p.id),
        annotations,
        stdin: c.stdin == Some(true),
        stdin_once: c.stdin_once == Some(true),
        tty: c.tty == Some(true),
        linux: Some(LinuxContainerConfig {
            resources: Some(lcr),
            security_context: Some(security.context),
        }),
        ..Default::default()
    };
    let mut plan = ContainerPlan {
        name: c.name.clone(),
        kind: slot.kind,
        restart_policy: slot.kind.restart_policy(p.restart_policy),
        image_pull_policy: PullPolicy::resolve(c.image_pull_policy.as_deref(), &image),
        config,
        run_as_non_root: security.run_as_non_root,
        probes,
        lifecycle,
        termination_message,
        hash,
        env,
        command,
        args,
        termination_dir: p.pod_dir.join("containers").join(&c.name),
    };
    plan.config = plan.render(&RuntimeValues::default(), 0);
    plan
}
