//! Whole-module tests: the files in examples/, a full pod's translation
//! checked field by field, and error reporting across a file.

use std::path::{Path, PathBuf};

use berth_proto::v1::{security_profile::ProfileType, MountPropagation, NamespaceMode, Protocol};

use super::files::write_atomic;
use super::probes::{ProbeAction, Scheme};
use super::resources::QosClass;
use super::volumes::{StorageMedium, VolumeSetup};
use super::*;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn opts() -> PlanOptions {
    PlanOptions {
        node_name: "node-1".into(),
        cpu_capacity_millis: 2000,
        memory_capacity_bytes: 4 << 30,
        host_resolv_conf: Some("nameserver 192.0.2.53\nsearch lan\n".into()),
        ..PlanOptions::default()
    }
}

fn load_example(name: &str) -> Vec<PodPlan> {
    let path = examples_dir().join(name);
    load_file(&path, &opts()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_example_parses_and_plans() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            continue;
        }
        let pods = load_file(&path, &opts()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!pods.is_empty(), "{}", path.display());
        for p in &pods {
            assert!(
                p.warnings
                    .iter()
                    .all(|w| w.starts_with("MissingClusterDNS")),
                "{}: {:?}",
                path.display(),
                p.warnings
            );
            for c in p.all_containers() {
                assert_eq!(
                    c.config.image.as_ref().unwrap().image,
                    "berth.local/busybox:latest"
                );
                assert_eq!(c.image_pull_policy, PullPolicy::IfNotPresent);
            }
        }
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} examples");
}

#[test]
fn web_server_example() {
    let pods = load_example("web-server.yaml");
    let p = &pods[0];
    assert_eq!((p.name.as_str(), p.namespace.as_str()), ("web", "default"));
    assert_eq!(p.uid.len(), 32);
    assert_eq!(p.qos, QosClass::Burstable);
    assert_eq!(p.termination_grace_period.as_secs(), 10);
    let s = &p.sandbox;
    assert_eq!(s.hostname, "web");
    assert_eq!(
        s.log_directory,
        format!("/var/log/pods/default_web_{}", p.uid)
    );
    assert_eq!(s.labels["app"], "web");
    assert_eq!(s.labels["io.kubernetes.pod.uid"], p.uid);
    let dns = s.dns_config.as_ref().unwrap();
    assert_eq!(
        (dns.servers.clone(), dns.searches.clone()),
        (vec!["192.0.2.53".to_string()], vec!["lan".to_string()])
    );
    assert!(p.warnings[0].starts_with("MissingClusterDNS"));
    assert_eq!(s.port_mappings.len(), 1);
    let pm = &s.port_mappings[0];
    assert_eq!(
        (pm.container_port, pm.host_port, pm.protocol),
        (8080, 8080, Protocol::Tcp as i32)
    );
    let linux = s.linux.as_ref().unwrap();
    let ns = linux
        .security_context
        .as_ref()
        .unwrap()
        .namespace_options
        .as_ref()
        .unwrap();
    assert_eq!(
        (ns.network, ns.pid, ns.ipc),
        (
            NamespaceMode::Pod as i32,
            NamespaceMode::Container as i32,
            NamespaceMode::Pod as i32
        )
    );
    let pod_res = linux.resources.as_ref().unwrap();
    assert_eq!(
        (
            pod_res.cpu_shares,
            pod_res.cpu_quota,
            pod_res.memory_limit_in_bytes
        ),
        (51, 20_000, 64 << 20)
    );

    let c = &p.containers[0];
    assert!(c.needs_runtime_values(), "POD_IP");
    let cfg = c.render(
        &RuntimeValues {
            pod_ips: vec!["10.88.0.7".into()],
            host_ips: vec![],
        },
        2,
    );
    assert_eq!(
        cfg.command,
        ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
    );
    let envs: Vec<(&str, &str)> = cfg
        .envs
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(envs, [("PORT", "8080"), ("POD_IP", "10.88.0.7")]);
    assert_eq!(cfg.metadata.as_ref().unwrap().attempt, 2);
    assert_eq!(cfg.log_path, "httpd/2.log");
    assert_eq!(cfg.annotations["io.kubernetes.container.restartCount"], "2");
    assert_eq!(cfg.labels["io.kubernetes.container.name"], "httpd");
    let r = cfg.linux.as_ref().unwrap().resources.as_ref().unwrap();
    assert_eq!(
        (
            r.cpu_shares,
            r.cpu_quota,
            r.cpu_period,
            r.memory_limit_in_bytes
        ),
        (51, 20_000, 100_000, 64 << 20)
    );
    let expected_oom = 1000 - (1000 * (16i64 << 20)) / (4i64 << 30);
    assert_eq!(r.oom_score_adj, expected_oom);
    let sc = cfg
        .linux
        .as_ref()
        .unwrap()
        .security_context
        .as_ref()
        .unwrap();
    assert!(sc.no_new_privs && sc.readonly_rootfs);
    assert_eq!(sc.capabilities.as_ref().unwrap().drop_capabilities, ["ALL"]);
    assert_eq!(
        sc.seccomp.as_ref().unwrap().profile_type,
        ProfileType::Unconfined as i32
    );
    let www = cfg
        .mounts
        .iter()
        .find(|m| m.container_path == "/www")
        .unwrap();
    assert!(www.readonly);
    assert_eq!(
        www.host_path,
        p.pod_dir
            .join("volumes/kubernetes.io~configmap/content")
            .to_string_lossy()
    );
    let term = cfg
        .mounts
        .iter()
        .find(|m| m.container_path == "/dev/termination-log")
        .unwrap();
    assert_eq!(Path::new(&term.host_path), c.termination_message_file(2));
    assert_eq!(cfg.mounts.len(), 2);

    let live = c.probes.liveness.as_ref().unwrap();
    match &live.action {
        ProbeAction::HttpGet(h) => {
            assert_eq!(
                (h.port, h.path.as_str(), h.scheme, h.host.as_deref()),
                (8080, "/", Scheme::Http, None)
            );
            assert_eq!(h.headers, [("X-Probe".to_string(), "liveness".to_string())]);
        }
        a => panic!("{a:?}"),
    }
    assert_eq!(
        (
            live.initial_delay.as_secs(),
            live.period.as_secs(),
            live.timeout.as_secs(),
            live.failure_threshold
        ),
        (2, 10, 1, 3)
    );
    assert_eq!(
        c.probes.startup.as_ref().unwrap().action,
        ProbeAction::TcpSocket {
            host: None,
            port: 8080
        }
    );
    assert!(matches!(c.lifecycle.pre_stop, Some(lifecycle::Hook::Sleep(d)) if d.as_secs() == 2));

    match &p.volumes[0].setup {
        VolumeSetup::Files { files, tmpfs, .. } => {
            assert!(!tmpfs);
            let names: Vec<(&str, u32)> = files.iter().map(|f| (f.path.as_str(), f.mode)).collect();
            assert_eq!(names, [("healthz", 0o444), ("index.html", 0o444)]);
            // The runner's step: write the files atomically; check one.
            let tmp = tempfile::tempdir().unwrap();
            write_atomic(tmp.path(), files, None).unwrap();
            let html = std::fs::read_to_string(tmp.path().join("index.html")).unwrap();
            assert!(html.contains("Hello from a berth pod."));
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn job_examples() {
    let p = &load_example("job.yaml")[0];
    assert_eq!(p.restart_policy, RestartPolicy::OnFailure);
    let init = &p.init_containers[0];
    assert_eq!(
        (init.kind, init.restart_policy),
        (ContainerKind::Init, RestartPolicy::OnFailure)
    );
    let sum = &p.containers[0];
    assert_eq!(
        sum.config.args[0].lines().nth(2).unwrap().trim(),
        "echo \"sum=$total\" | tee \"/work/result\""
    );
    assert!(
        sum.config.args[0].contains("$((total + n))"),
        "shell arithmetic is not a reference"
    );
    assert_eq!(sum.termination_message.path, "/work/result");
    assert_eq!(
        p.qos,
        QosClass::Burstable,
        "the init container has no limits"
    );
    let work = &p.volumes[0];
    assert_eq!(
        work.setup,
        VolumeSetup::EmptyDir {
            medium: StorageMedium::Disk,
            size_limit: None,
            mode: 0o777
        }
    );
    assert_eq!(
        init.config.mounts[0].host_path,
        sum.config.mounts[0].host_path
    );

    let p = &load_example("oneshot.yaml")[0];
    assert_eq!(p.restart_policy, RestartPolicy::Never);
    assert_eq!(p.containers[0].restart_policy, RestartPolicy::Never);
    assert_eq!(p.sandbox.hostname, "once");
    let c = &p.containers[0];
    assert!(c.run_as_non_root);
    assert!(!c.needs_runtime_values());
    let env: Vec<(&str, &str)> = c
        .config
        .envs
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("MY_NAME", "oneshot"),
            ("MY_NAMESPACE", "default"),
            ("MY_NODE", "node-1"),
            ("MEM_LIMIT_MI", "16")
        ]
    );
    match &p.volumes[0].setup {
        VolumeSetup::Files { files, tmpfs, .. } => {
            assert!(tmpfs);
            assert_eq!(
                (files[0].path.as_str(), files[1].path.as_str()),
                ("labels", "annotations")
            );
            assert_eq!(
                String::from_utf8_lossy(&files[0].data),
                "app=\"oneshot\"\ntier=\"batch\""
            );
            assert_eq!(
                String::from_utf8_lossy(&files[1].data),
                "berth.example/purpose=\"demo\""
            );
        }
        v => panic!("{v:?}"),
    }
    match &p.volumes[1].setup {
        VolumeSetup::Files { files, .. } => {
            assert_eq!(
                (
                    files[0].path.as_str(),
                    files[0].data.as_slice(),
                    files[0].mode
                ),
                ("token", b"not-a-real-secret".as_slice(), 0o440)
            );
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn sidecar_example() {
    let p = &load_example("sidecar.yaml")[0];
    let ns = p
        .sandbox
        .linux
        .as_ref()
        .unwrap()
        .security_context
        .as_ref()
        .unwrap()
        .namespace_options
        .as_ref()
        .unwrap();
    assert_eq!(ns.pid, NamespaceMode::Pod as i32);
    let (app, shipper) = (&p.containers[0], &p.containers[1]);
    assert_eq!(
        app.config.mounts[0].host_path,
        shipper.config.mounts[0].host_path
    );
    assert!(!app.config.mounts[0].readonly && shipper.config.mounts[0].readonly);
    assert!(
        app.config.command[2].contains("$(date)"),
        "unknown references stay"
    );
    assert_eq!(
        p.volumes[0].setup,
        VolumeSetup::EmptyDir {
            medium: StorageMedium::Disk,
            size_limit: Some(16 << 20),
            mode: 0o777
        }
    );
    assert_eq!(
        app.probes.liveness.as_ref().unwrap().action,
        ProbeAction::Exec {
            command: vec!["test".into(), "-s".into(), "/var/log/app/app.log".into()]
        }
    );
}

#[test]
fn uid_is_stable_per_content_and_source() {
    let text = std::fs::read_to_string(examples_dir().join("sidecar.yaml")).unwrap();
    let a = load(&text, "a.yaml", &opts()).unwrap();
    let b = load(&text, "a.yaml", &opts()).unwrap();
    let c = load(&text, "b.yaml", &opts()).unwrap();
    let d = load(&text.replace("sleep 1", "sleep 2"), "a.yaml", &opts()).unwrap();
    assert_eq!(a[0].uid, b[0].uid);
    assert_ne!(a[0].uid, c[0].uid);
    assert_ne!(a[0].uid, d[0].uid);
    let e = load(
        &text.replace(
            "  name: app-with-sidecar\n",
            "  name: app-with-sidecar\n  uid: fixed-uid\n",
        ),
        "a.yaml",
        &opts(),
    )
    .unwrap();
    assert_eq!(e[0].uid, "fixed-uid");
}

const BAD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  restartPolicy: Sometimes
  containers:
  - name: web
    image: berth.local/busybox:latest
    ports: [{name: http, containerPort: 80}]
  - name: side
    image: berth.local/busybox:latest
    livenessProbe:
      httpGet: {port: web}
      successThreshold: 3
    volumeMounts: [{name: nothing, mountPath: /x}]
    envFrom: [{configMapRef: {name: absent}}]
  - image: berth.local/busybox:latest
    ports: [{hostPort: 8080}]
"#;

#[test]
fn errors_name_their_fields_in_spec_order() {
    let e = load(BAD, "bad.yaml", &opts()).unwrap_err();
    let errs = e.field_errors().expect("field errors");
    let v: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        v,
        [
            "spec.containers[2].name: required",
            "spec.containers[2].ports[0].containerPort: required",
            "spec.restartPolicy: unsupported value \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            "spec.containers[1].envFrom[0].configMapRef.name: configmap \"absent\" not found in the file",
            "spec.containers[1].volumeMounts[0].name: volume \"nothing\" not found",
            "spec.containers[1].livenessProbe.successThreshold: must be 1",
            "spec.containers[1].livenessProbe.httpGet.port: no port named \"web\"",
        ]
    );
    assert!(e
        .to_string()
        .starts_with("invalid Pod \"bad\" (document 1):\n"));
    // Deterministic: the same input, the same errors.
    assert_eq!(
        load(BAD, "bad.yaml", &opts()).unwrap_err().to_string(),
        e.to_string()
    );
}

#[test]
fn multi_pod_json_and_no_pods() {
    let json = r#"{"apiVersion":"v1","kind":"List","items":[
      {"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"berth.local/busybox:latest"}]}},
      {"apiVersion":"v1","kind":"Pod","metadata":{"name":"b","namespace":"ns1"},"spec":{"hostNetwork":true,"containers":[{"name":"c","image":"berth.local/busybox:latest","ports":[{"containerPort":9000}]}]}}]}"#;
    let pods = load(json, "-", &opts()).unwrap();
    assert_eq!(pods.len(), 2);
    assert_eq!(pods[0].qos, QosClass::BestEffort);
    let c = &pods[0].containers[0];
    let r = c.config.linux.as_ref().unwrap().resources.as_ref().unwrap();
    assert_eq!(
        (r.cpu_shares, r.oom_score_adj, r.memory_limit_in_bytes),
        (2, 1000, 0)
    );
    assert_eq!(c.image_pull_policy, PullPolicy::Always);
    let b = &pods[1];
    assert_eq!(
        (
            b.namespace.as_str(),
            b.sandbox.hostname.as_str(),
            b.hostname.as_deref()
        ),
        ("ns1", "", None)
    );
    assert_eq!(
        b.sandbox.port_mappings[0].host_port, 9000,
        "hostNetwork defaults hostPort"
    );
    assert!(
        b.warnings.is_empty(),
        "a host-network pod uses the host's DNS without a warning"
    );
    assert!(matches!(
        load(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            "-",
            &opts()
        ),
        Err(ManifestError::NoPods)
    ));
    let e = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {\"a b\": x}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i}]}\n", "-", &opts()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("invalid ConfigMap \"x\":\ndata[a b]: a valid config key"),
        "{e}"
    );
}

#[test]
fn guaranteed_pod_sidecar_and_security() {
    let text = r#"
apiVersion: v1
kind: Pod
metadata: {name: g}
spec:
  priorityClassName: ""
  hostIPC: true
  securityContext: {runAsUser: 1000, fsGroup: 3000, supplementalGroups: [4000], seccompProfile: {type: RuntimeDefault}}
  initContainers:
  - name: proxy
    image: berth.local/busybox:latest
    restartPolicy: Always
    resources: {limits: {cpu: 100m, memory: 32Mi}}
  containers:
  - name: main
    image: berth.local/busybox:latest
    workingDir: /srv
    tty: true
    stdin: true
    stdinOnce: true
    resources: {limits: {cpu: "1", memory: 1Gi}, requests: {cpu: "1", memory: 1Gi}}
    securityContext: {privileged: true, runAsUser: 0}
    volumeMounts: [{name: host, mountPath: /host, mountPropagation: Bidirectional}]
  volumes:
  - {name: host, hostPath: {path: /tmp, type: Directory}}
  - {name: mem, emptyDir: {medium: Memory}}
"#;
    let p = &load(text, "-", &opts()).unwrap()[0];
    assert_eq!(p.qos, QosClass::Guaranteed);
    let proxy = &p.init_containers[0];
    assert_eq!(
        (proxy.kind, proxy.restart_policy),
        (ContainerKind::Sidecar, RestartPolicy::Always)
    );
    let main = &p.containers[0];
    let cfg = &main.config;
    assert_eq!(cfg.working_dir, "/srv");
    assert!(cfg.tty && cfg.stdin && cfg.stdin_once);
    let lx = cfg.linux.as_ref().unwrap();
    let r = lx.resources.as_ref().unwrap();
    assert_eq!(
        (
            r.cpu_shares,
            r.cpu_quota,
            r.memory_limit_in_bytes,
            r.oom_score_adj
        ),
        (1024, 100_000, 1 << 30, -997)
    );
    let sc = lx.security_context.as_ref().unwrap();
    assert!(sc.privileged);
    assert_eq!(sc.run_as_user.as_ref().unwrap().value, 0);
    assert_eq!(sc.supplemental_groups, [3000, 4000]);
    assert_eq!(
        sc.seccomp.as_ref().unwrap().profile_type,
        ProfileType::RuntimeDefault as i32
    );
    assert_eq!(
        sc.namespace_options.as_ref().unwrap().ipc,
        NamespaceMode::Node as i32
    );
    assert_eq!(
        cfg.mounts[0].propagation,
        MountPropagation::PropagationBidirectional as i32
    );
    assert_eq!(cfg.mounts[0].host_path, "/tmp");
    // Memory emptyDir: capped by the pod's memory limit (every container has one).
    let expected = (1u64 << 30) + (32 << 20);
    assert_eq!(
        p.volumes[1].setup,
        VolumeSetup::EmptyDir {
            medium: StorageMedium::Memory,
            size_limit: Some(expected),
            mode: 0o777
        }
    );
    let pod_res = p
        .sandbox
        .linux
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap();
    assert_eq!(
        pod_res.memory_limit_in_bytes,
        i64::try_from(expected).unwrap()
    );
    // The sandbox says privileged when any container is.
    assert!(
        p.sandbox
            .linux
            .as_ref()
            .unwrap()
            .security_context
            .as_ref()
            .unwrap()
            .privileged
    );
}

#[test]
fn hosts_extra_and_fqdn() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: h, namespace: shop}\nspec:\n  hostname: db-0\n  subdomain: db\n  setHostnameAsFQDN: true\n  hostAliases: [{ip: 10.0.0.9, hostnames: [cache, cache.local]}]\n  containers: [{name: c, image: berth.local/busybox:latest}]\n";
    let p = &load(text, "-", &opts()).unwrap()[0];
    assert_eq!(p.fqdn.as_deref(), Some("db-0.db.shop.svc.cluster.local"));
    assert_eq!(p.sandbox.hostname, "db-0.db.shop.svc.cluster.local");
    assert_eq!(
        p.hosts_file_extra(Some("10.88.0.3")),
        "10.88.0.3\tdb-0.db.shop.svc.cluster.local\tdb-0\n\n# Entries added by HostAliases.\n10.0.0.9\tcache\tcache.local\n"
    );
    assert_eq!(p.sandbox_config(3).metadata.unwrap().attempt, 3);
}
