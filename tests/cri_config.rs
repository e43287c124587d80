//! Every CreateContainer (and pod) config field's effect, observed from
//! inside the container through its CRI log or ExecSync, with kubelet's
//! semantics: command/args over the image's Entrypoint/Cmd, env, working
//! dir, hostPath mounts and propagation, users and groups, capabilities,
//! privileged, read-only rootfs, masked/read-only paths, no_new_privs,
//! seccomp, cgroup limits (and UpdateContainerResources), hostname, DNS,
//! hosts, sysctls, namespace modes, the pod's /dev/shm, tty and stdin; then
//! the stats calls and GetContainerEvents.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_agent::images::{ImageStore, RegistryConfig};
use berth_fixtures::image::{sha256, Layer};
use berth_fixtures::{APP_EXTRA_GIDS, APP_GID, APP_UID, APP_USER, NOBODY_ID};
use berth_proto::v1 as cri;
use berth_tests::daemon::{pod_config, sh_container, Berthd};
use berth_tests::need_root;
use futures_util::StreamExt;

// ---------------------------------------------------------------- helpers

/// One line of a CRI log file: its stream and text (partial lines joined).
#[derive(Debug, Clone, PartialEq, Eq)]
struct LogLine {
    stream: String,
    text: String,
}

/// Parses a CRI log file (`<time> <stream> <P|F> <text>`).
fn read_log(path: &str) -> Vec<LogLine> {
    let content = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    let mut partial = String::new();
    for line in content.lines() {
        let mut parts = line.splitn(4, ' ');
        let (_time, stream, tag) = (parts.next(), parts.next(), parts.next());
        let text = parts.next().unwrap_or_default();
        partial.push_str(text);
        if tag == Some("F") {
            out.push(LogLine {
                stream: stream.unwrap_or_default().to_string(),
                text: std::mem::take(&mut partial)
                    .trim_end_matches('\r')
                    .to_string(),
            });
        }
    }
    out
}

/// The stdout text of a log, one entry per line.
fn stdout_of(log: &[LogLine]) -> Vec<String> {
    log.iter()
        .filter(|l| l.stream == "stdout")
        .map(|l| l.text.clone())
        .collect()
}

/// Runs `c` to its end; returns its status and stdout lines.
async fn run_once(
    d: &mut Berthd,
    pod: &str,
    sandbox: &cri::PodSandboxConfig,
    c: cri::ContainerConfig,
) -> (cri::ContainerStatus, Vec<String>) {
    let id = d.start_container(pod, sandbox, c).await;
    let s = d.wait_exited(&id).await;
    let log = read_log(&s.log_path);
    // Shown when a test fails.
    for l in log.iter().filter(|l| l.stream != "stdout") {
        eprintln!("{id} {}: {}", l.stream, l.text);
    }
    (s, stdout_of(&log))
}

/// The value after `key` in the `key=value` lines a script printed.
fn value<'a>(lines: &'a [String], key: &str) -> &'a str {
    let prefix = format!("{key}=");
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= in {lines:#?}"))
}

/// [`Berthd::sh`] with stdout and stderr trimmed.
async fn exec(d: &mut Berthd, id: &str, script: &str) -> (i32, String, String) {
    let (code, out, err) = d.sh(id, script).await;
    (code, out.trim().to_string(), err.trim().to_string())
}

/// `exec` that must succeed; returns stdout.
async fn exec_ok(d: &mut Berthd, id: &str, script: &str) -> String {
    let (code, out, err) = exec(d, id, script).await;
    assert_eq!(code, 0, "{script:?}: stdout {out:?} stderr {err:?}");
    out
}

/// A container that sleeps until stopped (for ExecSync).
fn sleeper(name: &str) -> cri::ContainerConfig {
    sh_container(name, "exec sleep 1000")
}

/// The container's security context, created if absent.
fn sc(c: &mut cri::ContainerConfig) -> &mut cri::LinuxContainerSecurityContext {
    c.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

/// The pod's security context, created if absent.
fn pod_sc(p: &mut cri::PodSandboxConfig) -> &mut cri::LinuxSandboxSecurityContext {
    p.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

/// Sets namespace modes on the pod and on the container, as kubelet does.
fn namespaces(
    pod: &mut cri::PodSandboxConfig,
    containers: &mut [&mut cri::ContainerConfig],
    network: cri::NamespaceMode,
    pid: cri::NamespaceMode,
    ipc: cri::NamespaceMode,
) {
    let options = cri::NamespaceOption {
        network: network as i32,
        pid: pid as i32,
        ipc: ipc as i32,
        ..Default::default()
    };
    pod_sc(pod).namespace_options = Some(options.clone());
    for c in containers.iter_mut() {
        sc(c).namespace_options = Some(options.clone());
    }
}

/// The line of /proc/self/status starting with `key:`, without the key.
fn status_field<'a>(lines: &'a [String], key: &str) -> &'a str {
    let prefix = format!("{key}:");
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key}: in {lines:#?}"))
}

fn cap_mask(hex: &str) -> u64 {
    u64::from_str_radix(hex.trim(), 16).unwrap_or_else(|_| panic!("cap mask {hex:?}"))
}

/// Capability bit numbers (linux/capability.h).
const CAP_CHOWN: u32 = 0;
const CAP_KILL: u32 = 5;
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
/// The default set of an unprivileged container: chown, dac_override,
/// fowner, fsetid, kill, setgid, setuid, setpcap, net_bind_service,
/// net_raw, sys_chroot, mknod, audit_write, setfcap.
const DEFAULT_CAPS: u64 = 0xa804_25fb;

// ------------------------------------------------------- a config image

/// The image with Entrypoint, Cmd, Env, WorkingDir (and User).
const CONFIG_IMAGE: &str = "berth.local/config:latest";
/// The same image running as `app`.
const APP_IMAGE: &str = "berth.local/config-app:latest";

/// Imports, into the store of the running `d`, a two-layer image: busybox,
/// then accounts (`app` in two extra groups, `nobody`), `/srv` and
/// `/home/app`; config Entrypoint `echo ep`, Cmd `c1`, Env with IMG and
/// OVER, WorkingDir `/srv`, and `user` as User.
fn import_config_image(d: &Berthd, name: &str, user: Option<&str>) {
    let [extra1, extra2] = APP_EXTRA_GIDS;
    let passwd = format!(
        "root:x:0:0:root:/root:/bin/sh\n\
         {APP_USER}:x:{APP_UID}:{APP_GID}:app:/home/{APP_USER}:/bin/sh\n\
         nobody:x:{NOBODY_ID}:{NOBODY_ID}:nobody:/nonexistent:/bin/false\n"
    );
    let group = format!(
        "root:x:0:\n{APP_USER}:x:{APP_GID}:\nextra1:x:{extra1}:{APP_USER}\n\
         extra2:x:{extra2}:{APP_USER}\nnogroup:x:{NOBODY_ID}:\n"
    );
    let accounts = Layer::new()
        .dir("srv", 0o755)
        .dir("home", 0o755)
        .dir(&format!("home/{APP_USER}"), 0o755)
        .file("etc/passwd", passwd.as_bytes())
        .file("etc/group", group.as_bytes());
    let layers = [Layer::busybox().expect("busybox layer"), accounts];
    let mut config = serde_json::json!({
        "Entrypoint": ["/bin/echo", "ep"],
        "Cmd": ["c1"],
        "Env": ["PATH=/bin", "IMG=from-image", "OVER=image"],
        "WorkingDir": "/srv",
    });
    if let Some(u) = user {
        config["User"] = u.into();
    }

    let tmp = tempfile::tempdir().expect("temp");
    let layout = tmp.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("blobs dir");
    let write_blob = |data: &[u8]| -> (String, usize) {
        let digest = sha256(data);
        let hex = digest.trim_start_matches("sha256:");
        std::fs::write(blobs.join(hex), data).expect("blob");
        (digest, data.len())
    };
    let mut diff_ids = Vec::new();
    let mut layer_descs = Vec::new();
    for l in &layers {
        let tar = l.tar();
        let (digest, size) = write_blob(&tar);
        diff_ids.push(digest.clone());
        layer_descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest,
            "size": size,
        }));
    }
    let image_config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let (config_digest, config_size) =
        write_blob(&serde_json::to_vec(&image_config).expect("config json"));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": layer_descs,
    });
    let (manifest_digest, manifest_size) =
        write_blob(&serde_json::to_vec(&manifest).expect("manifest json"));
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": name},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).expect("index");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let archive = tmp.path().join("image.tar");
    let st = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout)
        .args(["oci-layout", "index.json", "blobs"])
        .status()
        .expect("tar");
    assert!(st.success(), "tar of the image layout failed");
    let store =
        ImageStore::open(&d.root().join("images"), RegistryConfig::default()).expect("image store");
    store.import(&archive).expect("import config image");
}

/// A container of `image` with `command` and `args`.
fn image_container(
    name: &str,
    image: &str,
    command: &[&str],
    args: &[&str],
) -> cri::ContainerConfig {
    let mut c = sh_container(name, "");
    c.image = Some(cri::ImageSpec {
        image: image.into(),
        ..Default::default()
    });
    c.command = command.iter().map(|s| s.to_string()).collect();
    c.args = args.iter().map(|s| s.to_string()).collect();
    c
}

// ------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_and_args_merge_with_the_image_entrypoint_and_cmd() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    import_config_image(&d, CONFIG_IMAGE, None);
    let sandbox = pod_config("cmd");
    let pod = d.run_pod(&sandbox).await;
    let cases: [(&str, &[&str], &[&str], &str); 4] = [
        // Neither: Entrypoint + Cmd.
        ("neither", &[], &[], "ep c1"),
        // args only: Entrypoint + args.
        ("args", &[], &["a1", "a2"], "ep a1 a2"),
        // command only: the image's Cmd is dropped too.
        ("command", &["/bin/echo", "own"], &[], "own"),
        // Both: command + args.
        ("both", &["/bin/echo"], &["x", "y"], "x y"),
    ];
    for (name, command, args, want) in cases {
        let c = image_container(name, CONFIG_IMAGE, command, args);
        let (s, out) = run_once(&mut d, &pod, &sandbox, c).await;
        assert_eq!(s.exit_code, 0, "{name}: {s:?}");
        assert_eq!(out, [want], "{name}");
    }
    // The busybox image has Cmd /bin/sh and no Entrypoint: args alone run.
    let mut c = sh_container("busybox-args", "");
    c.command.clear();
    c.args = vec!["sh".into(), "-c".into(), "echo from-args".into()];
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(out, ["from-args"]);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_layers_request_envs_over_the_image_env() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    import_config_image(&d, CONFIG_IMAGE, None);
    let sandbox = pod_config("env");
    let pod = d.run_pod(&sandbox).await;
    let mut c = image_container("env", CONFIG_IMAGE, &["/bin/sh", "-c", "env"], &[]);
    c.envs = [("OVER", "request"), ("NEW", "a b=c"), ("EMPTY", "")]
        .iter()
        .map(|(k, v)| cri::KeyValue {
            key: k.to_string(),
            value: v.to_string(),
        })
        .collect();
    let (s, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(s.exit_code, 0);
    assert_eq!(value(&out, "PATH"), "/bin", "the image's PATH wins");
    assert_eq!(value(&out, "IMG"), "from-image");
    assert_eq!(value(&out, "OVER"), "request");
    assert_eq!(value(&out, "NEW"), "a b=c");
    assert_eq!(value(&out, "EMPTY"), "");
    assert_eq!(value(&out, "HOSTNAME"), "env");
    assert_eq!(value(&out, "HOME"), "/root");
    assert_eq!(out.iter().filter(|l| l.starts_with("OVER=")).count(), 1);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn working_dir_from_the_request_else_the_image_else_root() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    import_config_image(&d, CONFIG_IMAGE, None);
    let sandbox = pod_config("cwd");
    let pod = d.run_pod(&sandbox).await;
    let c = image_container("image-cwd", CONFIG_IMAGE, &["/bin/sh", "-c", "pwd"], &[]);
    assert_eq!(run_once(&mut d, &pod, &sandbox, c).await.1, ["/srv"]);
    let mut c = image_container("req-cwd", CONFIG_IMAGE, &["/bin/sh", "-c", "pwd"], &[]);
    c.working_dir = "/tmp".into();
    assert_eq!(run_once(&mut d, &pod, &sandbox, c).await.1, ["/tmp"]);
    // busybox has no WorkingDir.
    let c = sh_container("default-cwd", "pwd");
    assert_eq!(run_once(&mut d, &pod, &sandbox, c).await.1, ["/"]);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_path_mounts_read_write_read_only_and_a_file() {
    if need_root() {
        return;
    }
    let host = tempfile::tempdir().expect("temp");
    let rw = host.path().join("rw");
    let ro = host.path().join("ro");
    std::fs::create_dir_all(&rw).expect("rw dir");
    std::fs::create_dir_all(&ro).expect("ro dir");
    std::fs::write(ro.join("data"), "ro-content\n").expect("ro file");
    let file = host.path().join("app.conf");
    std::fs::write(&file, "key=file-mount\n").expect("file");

    let mut d = Berthd::start().await;
    let sandbox = pod_config("mounts");
    let pod = d.run_pod(&sandbox).await;
    let mut c = sh_container(
        "mounts",
        "echo written > /data/rw/out; \
         cat /data/ro/data; \
         echo x > /data/ro/new 2>/dev/null; echo ro_write=$?; \
         cat /etc/app.conf; \
         echo y > /etc/app.conf 2>/dev/null; echo file_write=$?",
    );
    let mount = |host: &Path, ctr: &str, readonly: bool| cri::Mount {
        container_path: ctr.into(),
        host_path: host.display().to_string(),
        readonly,
        ..Default::default()
    };
    c.mounts = vec![
        mount(&rw, "/data/rw", false),
        mount(&ro, "/data/ro", true),
        mount(&file, "/etc/app.conf", true),
    ];
    let (s, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(s.exit_code, 0, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(rw.join("out")).expect("written through the mount"),
        "written\n"
    );
    assert!(out.contains(&"ro-content".to_string()), "{out:?}");
    assert_ne!(value(&out, "ro_write"), "0", "read-only mount was writable");
    assert!(!ro.join("new").exists());
    assert!(out.contains(&"key=file-mount".to_string()), "{out:?}");
    assert_ne!(value(&out, "file_write"), "0");
    assert_eq!(
        std::fs::read_to_string(&file).expect("file"),
        "key=file-mount\n"
    );
    // ContainerStatus lists the mounts.
    let paths: BTreeSet<String> = s.mounts.iter().map(|m| m.container_path.clone()).collect();
    assert!(paths.contains("/data/rw") && paths.contains("/etc/app.conf"));
    d.shutdown().await;
}

/// A host directory bind-mounted on itself and made shared, unmounted
/// (with everything under it) on drop.
struct SharedDir {
    dir: tempfile::TempDir,
}

impl SharedDir {
    fn new() -> SharedDir {
        use nix::mount::{mount, MsFlags};
        let dir = tempfile::tempdir().expect("temp");
        for sub in ["fromhost", "fromctr"] {
            std::fs::create_dir(dir.path().join(sub)).expect("sub dir");
        }
        mount(
            Some(dir.path()),
            dir.path(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .expect("bind the shared dir");
        let shared = SharedDir { dir };
        mount(
            None::<&str>,
            shared.path(),
            None::<&str>,
            MsFlags::MS_SHARED,
            None::<&str>,
        )
        .expect("make the dir shared");
        shared
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the host sees a mount at `sub`.
    fn host_has_mount(&self, sub: &str) -> bool {
        let want = self.path().join(sub).display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        use nix::mount::{umount2, MntFlags};
        for sub in ["fromhost", "fromctr"] {
            while umount2(&self.path().join(sub), MntFlags::MNT_DETACH).is_ok() {}
        }
        while umount2(self.path(), MntFlags::MNT_DETACH).is_ok() {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_propagation_private_host_to_container_and_bidirectional() {
    if need_root() {
        return;
    }
    let shared = SharedDir::new();
    let mut d = Berthd::start().await;
    // Bidirectional needs a privileged container (to mount), in a privileged pod.
    let mut sandbox = pod_config("propagation");
    pod_sc(&mut sandbox).privileged = true;
    let pod = d.run_pod(&sandbox).await;
    let with_mount = |name: &str, p: cri::MountPropagation| {
        let mut c = sleeper(name);
        c.mounts = vec![cri::Mount {
            container_path: "/shared".into(),
            host_path: shared.path().display().to_string(),
            propagation: p as i32,
            ..Default::default()
        }];
        c
    };
    let private = with_mount("private", cri::MountPropagation::PropagationPrivate);
    let slave = with_mount("slave", cri::MountPropagation::PropagationHostToContainer);
    let mut both = with_mount("both", cri::MountPropagation::PropagationBidirectional);
    sc(&mut both).privileged = true;
    let private = d.start_container(&pod, &sandbox, private).await;
    let slave = d.start_container(&pod, &sandbox, slave).await;
    let both = d.start_container(&pod, &sandbox, both).await;

    // The host mounts under the shared dir after the containers started.
    nix::mount::mount(
        Some("tmpfs"),
        &shared.path().join("fromhost"),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=64k"),
    )
    .expect("host tmpfs");
    let sees = "grep -q ' /shared/fromhost ' /proc/self/mountinfo && echo yes || echo no";
    assert_eq!(exec_ok(&mut d, &private, sees).await, "no", "private");
    assert_eq!(
        exec_ok(&mut d, &slave, sees).await,
        "yes",
        "host-to-container"
    );
    assert_eq!(exec_ok(&mut d, &both, sees).await, "yes", "bidirectional");

    // A mount made in the bidirectional container reaches the host; one
    // made in the host-to-container one would not (it cannot mount).
    exec_ok(
        &mut d,
        &both,
        "mount -t tmpfs -o size=64k tmpfs /shared/fromctr",
    )
    .await;
    assert!(shared.host_has_mount("fromctr"), "bidirectional mount");
    d.shutdown().await;
    drop(shared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_groups_and_home_from_the_image_accounts() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    import_config_image(&d, CONFIG_IMAGE, None);
    import_config_image(&d, APP_IMAGE, Some(APP_USER));
    let sandbox = pod_config("users");
    let pod = d.run_pod(&sandbox).await;
    let script = "grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo HOME=$HOME";
    let ids =
        |image: &str, name: &str| image_container(name, image, &["/bin/sh", "-c", script], &[]);
    let gids = |s: &str| -> BTreeSet<u32> {
        s.split_whitespace()
            .map(|g| g.parse().expect("gid"))
            .collect()
    };
    let first = |s: &str| s.split_whitespace().next().unwrap_or_default().to_string();
    let [extra1, extra2] = APP_EXTRA_GIDS;

    // run_as_user: gid and groups from /etc/passwd and /etc/group.
    let mut c = ids(CONFIG_IMAGE, "uid");
    sc(&mut c).run_as_user = Some(cri::Int64Value {
        value: APP_UID.into(),
    });
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(first(status_field(&out, "Uid")), APP_UID.to_string());
    assert_eq!(first(status_field(&out, "Gid")), APP_GID.to_string());
    assert_eq!(
        gids(status_field(&out, "Groups")),
        [APP_GID, extra1, extra2].into()
    );
    assert_eq!(value(&out, "HOME"), "/home/app");

    // run_as_group and supplemental_groups.
    let mut c = ids(CONFIG_IMAGE, "uid-gid");
    let s = sc(&mut c);
    s.run_as_user = Some(cri::Int64Value {
        value: APP_UID.into(),
    });
    s.run_as_group = Some(cri::Int64Value { value: 3000 });
    s.supplemental_groups = vec![4000];
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(first(status_field(&out, "Gid")), "3000");
    let groups = gids(status_field(&out, "Groups"));
    for g in [3000, 4000, extra1, extra2] {
        assert!(groups.contains(&g), "{g} not in {groups:?}");
    }

    // The Strict policy: no groups from /etc/group membership.
    let mut c = ids(CONFIG_IMAGE, "strict");
    let s = sc(&mut c);
    s.run_as_user = Some(cri::Int64Value {
        value: APP_UID.into(),
    });
    s.supplemental_groups = vec![4000];
    s.supplemental_groups_policy = cri::SupplementalGroupsPolicy::Strict as i32;
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(gids(status_field(&out, "Groups")), [APP_GID, 4000].into());

    // run_as_username.
    let mut c = ids(CONFIG_IMAGE, "username");
    sc(&mut c).run_as_username = "nobody".into();
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(first(status_field(&out, "Uid")), NOBODY_ID.to_string());
    assert_eq!(first(status_field(&out, "Gid")), NOBODY_ID.to_string());
    assert_eq!(value(&out, "HOME"), "/nonexistent");

    // The image's User, and run_as_user overriding it.
    let (_, out) = run_once(&mut d, &pod, &sandbox, ids(APP_IMAGE, "image-user")).await;
    assert_eq!(first(status_field(&out, "Uid")), APP_UID.to_string());
    let mut c = ids(APP_IMAGE, "image-user-root");
    sc(&mut c).run_as_user = Some(cri::Int64Value { value: 0 });
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(first(status_field(&out, "Uid")), "0");
    assert_eq!(value(&out, "HOME"), "/root");

    // A run_as_username the image does not know fails CreateContainer.
    let mut c = ids(CONFIG_IMAGE, "ghost");
    sc(&mut c).run_as_username = "ghost".into();
    let err = d
        .cri
        .runtime
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(c),
            sandbox_config: Some(sandbox.clone()),
        })
        .await
        .expect_err("unknown user");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert!(err.message().contains("run_as_username"), "{err}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_default_add_drop_and_non_root() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let sandbox = pod_config("caps");
    let pod = d.run_pod(&sandbox).await;
    let script = "grep -E '^Cap(Eff|Prm|Bnd|Inh):' /proc/self/status";
    let caps = |lines: &[String], key: &str| cap_mask(status_field(lines, key));

    let (_, out) = run_once(&mut d, &pod, &sandbox, sh_container("default", script)).await;
    assert_eq!(caps(&out, "CapEff"), DEFAULT_CAPS, "{out:?}");
    assert_eq!(caps(&out, "CapBnd"), DEFAULT_CAPS);
    assert_eq!(caps(&out, "CapInh"), 0);

    let mut c = sh_container("add-drop", script);
    sc(&mut c).capabilities = Some(cri::Capability {
        add_capabilities: vec!["NET_ADMIN".into()],
        drop_capabilities: vec!["CAP_KILL".into()],
        ..Default::default()
    });
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    let want = (DEFAULT_CAPS | 1 << CAP_NET_ADMIN) & !(1 << CAP_KILL);
    assert_eq!(caps(&out, "CapEff"), want, "{out:?}");
    assert_eq!(caps(&out, "CapBnd"), want);

    let mut c = sh_container("drop-all", script);
    sc(&mut c).capabilities = Some(cri::Capability {
        add_capabilities: vec!["chown".into()],
        drop_capabilities: vec!["ALL".into()],
        ..Default::default()
    });
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(caps(&out, "CapEff"), 1 << CAP_CHOWN, "drop ALL then add");

    // A non-root user keeps the bounding set but has no effective caps.
    let mut c = sh_container("non-root", script);
    sc(&mut c).run_as_user = Some(cri::Int64Value {
        value: NOBODY_ID.into(),
    });
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(caps(&out, "CapEff"), 0);
    assert_eq!(caps(&out, "CapBnd"), DEFAULT_CAPS);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_needs_a_privileged_pod_and_gets_everything() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let plain = pod_config("plain");
    let plain_pod = d.run_pod(&plain).await;
    let mut c = sh_container("refused", "true");
    sc(&mut c).privileged = true;
    let err = d
        .cri
        .runtime
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: plain_pod,
            config: Some(c.clone()),
            sandbox_config: Some(plain),
        })
        .await
        .expect_err("privileged container in an unprivileged pod");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");

    let mut sandbox = pod_config("priv");
    pod_sc(&mut sandbox).privileged = true;
    let pod = d.run_pod(&sandbox).await;
    let mut c = sh_container(
        "privileged",
        "grep -E '^(CapEff|Seccomp):' /proc/self/status; \
         grep ' /sys ' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1 | sed 's/^/sys=/'; \
         echo timer_list=$(cat /proc/timer_list | wc -c); \
         test -e /dev/$(ls /sys/class/mem | grep -v '^mem$' | head -n1) && echo devices=host",
    );
    sc(&mut c).privileged = true;
    // A seccomp profile is ignored for a privileged container.
    sc(&mut c).seccomp = Some(cri::SecurityProfile {
        profile_type: cri::security_profile::ProfileType::RuntimeDefault as i32,
        ..Default::default()
    });
    let (s, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(s.exit_code, 0, "{out:?}");
    let eff = cap_mask(status_field(&out, "CapEff"));
    assert_ne!(eff & 1 << CAP_SYS_ADMIN, 0, "{out:?}");
    // Everything the host's bounding set allows (root here lacks some).
    let host = std::fs::read_to_string("/proc/self/status").expect("status");
    let host_bnd = host
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(cap_mask)
        .expect("host CapBnd");
    assert_eq!(eff, host_bnd, "{out:?}");
    assert_eq!(status_field(&out, "Seccomp"), "0");
    assert_eq!(value(&out, "sys"), "rw");
    assert_ne!(value(&out, "timer_list"), "0", "/proc/timer_list is masked");
    assert_eq!(value(&out, "devices"), "host");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readonly_rootfs_and_masked_and_readonly_paths() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let sandbox = pod_config("ro");
    let pod = d.run_pod(&sandbox).await;
    let mut c = sh_container(
        "ro-root",
        "touch /newfile 2>/dev/null; echo root=$?; \
         touch /dev/shm/f; echo shm=$?; \
         touch /etc/hosts 2>/dev/null; echo hosts=$?",
    );
    sc(&mut c).readonly_rootfs = true;
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_ne!(value(&out, "root"), "0", "rootfs writable: {out:?}");
    assert_eq!(value(&out, "shm"), "0");
    assert_ne!(value(&out, "hosts"), "0", "pod files stay read-only");

    // Defaults: timer_list masked, /proc/sys read-only, the rootfs writable.
    let script = "echo timer_list=$(cat /proc/timer_list | wc -c); \
         echo version=$(cat /proc/version | wc -c); \
         echo 1 > /proc/sys/net/ipv4/ip_forward 2>/dev/null; echo sys=$?; \
         echo 1 > /proc/sys/net/ipv4/tcp_syncookies 2>/dev/null; echo cookies=$?; \
         touch /newfile; echo root=$?";
    let (_, out) = run_once(&mut d, &pod, &sandbox, sh_container("defaults", script)).await;
    assert_eq!(value(&out, "timer_list"), "0", "{out:?}");
    assert_ne!(value(&out, "version"), "0");
    assert_ne!(value(&out, "sys"), "0");
    assert_eq!(value(&out, "root"), "0");

    // The request's lists replace the defaults.
    let mut c = sh_container("custom", script);
    let s = sc(&mut c);
    s.masked_paths = vec!["/proc/version".into()];
    s.readonly_paths = vec!["/proc/sys/net/ipv4/tcp_syncookies".into()];
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(value(&out, "version"), "0", "{out:?}");
    assert_ne!(value(&out, "timer_list"), "0");
    assert_ne!(value(&out, "cookies"), "0");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_new_privs_and_seccomp_profiles() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let sandbox = pod_config("seccomp");
    let pod = d.run_pod(&sandbox).await;
    let script = "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; \
                  unshare -U true 2>/dev/null; echo unshare=$?";
    let profile = |c: &mut cri::ContainerConfig, t: cri::security_profile::ProfileType| {
        sc(c).seccomp = Some(cri::SecurityProfile {
            profile_type: t as i32,
            ..Default::default()
        });
    };
    use cri::security_profile::ProfileType;

    // No profile at all is unconfined (kubelet sends one when it wants one).
    let (_, out) = run_once(&mut d, &pod, &sandbox, sh_container("none", script)).await;
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out:?}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");
    assert_eq!(value(&out, "unshare"), "0");

    let mut c = sh_container("default", script);
    profile(&mut c, ProfileType::RuntimeDefault);
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out:?}");
    assert_ne!(
        value(&out, "unshare"),
        "0",
        "unshare allowed by RuntimeDefault"
    );
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");

    let mut c = sh_container("unconfined", script);
    profile(&mut c, ProfileType::Unconfined);
    sc(&mut c).no_new_privs = true;
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out:?}");
    assert_eq!(value(&out, "unshare"), "0");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    d.shutdown().await;
}

/// Prints the container's cgroup limits from inside (v1 or v2 layout).
const CGROUP_LIMITS: &str = "\
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then \
      echo memory=$(cat /sys/fs/cgroup/memory.max); \
      echo cpu_max=\"$(cat /sys/fs/cgroup/cpu.max)\"; \
      echo cpu_weight=$(cat /sys/fs/cgroup/cpu.weight); \
    else \
      echo memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); \
      cpu=/sys/fs/cgroup/cpu; [ -d $cpu ] || cpu=/sys/fs/cgroup/cpu,cpuacct; \
      echo cpu_max=\"$(cat $cpu/cpu.cfs_quota_us) $(cat $cpu/cpu.cfs_period_us)\"; \
      echo cpu_shares=$(cat $cpu/cpu.shares); \
    fi";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_are_the_container_cgroup_limits_and_can_be_updated() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let sandbox = pod_config("res");
    let pod = d.run_pod(&sandbox).await;
    let resources = cri::LinuxContainerResources {
        memory_limit_in_bytes: 64 << 20,
        cpu_shares: 512,
        cpu_quota: 50_000,
        cpu_period: 100_000,
        ..Default::default()
    };
    let mut c = sleeper("limited");
    c.linux.get_or_insert_with(Default::default).resources = Some(resources.clone());
    let id = d.start_container(&pod, &sandbox, c).await;
    let lines = |s: String| s.lines().map(str::to_string).collect::<Vec<_>>();
    let out = lines(exec_ok(&mut d, &id, CGROUP_LIMITS).await);
    assert_eq!(value(&out, "memory"), (64u64 << 20).to_string(), "{out:?}");
    assert_eq!(value(&out, "cpu_max"), "50000 100000");
    if out.iter().any(|l| l.starts_with("cpu_shares=")) {
        assert_eq!(value(&out, "cpu_shares"), "512");
    }
    let st = d.status(&id).await;
    let reported = st
        .resources
        .and_then(|r| r.linux)
        .expect("status resources");
    assert_eq!(reported.memory_limit_in_bytes, 64 << 20);

    // UpdateContainerResources raises the memory limit of the running container.
    let raised = cri::LinuxContainerResources {
        memory_limit_in_bytes: 128 << 20,
        ..resources
    };
    update(&mut d, &id, raised.clone()).await;
    let out = lines(exec_ok(&mut d, &id, CGROUP_LIMITS).await);
    assert_eq!(value(&out, "memory"), (128u64 << 20).to_string(), "{out:?}");
    let st = d.status(&id).await;
    let reported = st
        .resources
        .and_then(|r| r.linux)
        .expect("status resources");
    assert_eq!(reported.memory_limit_in_bytes, 128 << 20);

    // And lowers it, with the cpu quota, again.
    let lowered = cri::LinuxContainerResources {
        memory_limit_in_bytes: 32 << 20,
        cpu_quota: 20_000,
        ..raised
    };
    update(&mut d, &id, lowered).await;
    let out = lines(exec_ok(&mut d, &id, CGROUP_LIMITS).await);
    assert_eq!(value(&out, "memory"), (32u64 << 20).to_string(), "{out:?}");
    assert_eq!(value(&out, "cpu_max"), "20000 100000");
    d.shutdown().await;
}

/// UpdateContainerResources, which must succeed.
async fn update(d: &mut Berthd, id: &str, linux: cri::LinuxContainerResources) {
    d.cri
        .runtime
        .update_container_resources(cri::UpdateContainerResourcesRequest {
            container_id: id.into(),
            linux: Some(linux),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("UpdateContainerResources: {e}\n{}", d.log()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_ends_in_an_oom_kill() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let sandbox = pod_config("oom");
    let pod = d.run_pod(&sandbox).await;
    // dd's 64 MiB buffer cannot fit in 16 MiB (the host has no swap).
    let mut c = sh_container("hog", "exec dd if=/dev/zero of=/dev/null bs=64M count=1");
    c.linux.get_or_insert_with(Default::default).resources = Some(cri::LinuxContainerResources {
        memory_limit_in_bytes: 16 << 20,
        ..Default::default()
    });
    let id = d.start_container(&pod, &sandbox, c).await;
    let s = d.wait_exited(&id).await;
    assert_eq!(s.exit_code, 137, "{s:?}");
    assert_eq!(s.reason, "OOMKilled", "{s:?}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_hostname_dns_hosts_and_sysctls() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let mut sandbox = pod_config("podfiles");
    sandbox.hostname = "cfg-host".into();
    sandbox.dns_config = Some(cri::DnsConfig {
        servers: vec!["10.96.0.10".into()],
        searches: vec![
            "default.svc.cluster.local".into(),
            "svc.cluster.local".into(),
        ],
        options: vec!["ndots:5".into()],
    });
    let linux = sandbox.linux.get_or_insert_with(Default::default);
    linux.sysctls = [
        ("net.ipv4.ip_unprivileged_port_start", "0"),
        ("kernel.shm_rmid_forced", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let pod = d.run_pod(&sandbox).await;
    let ip = d.pod_status(&pod).await.network.expect("network").ip;
    let script = "echo hostname=$(hostname); echo etc_hostname=$(cat /etc/hostname); \
         echo port_start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start); \
         echo rmid=$(cat /proc/sys/kernel/shm_rmid_forced); \
         cat /etc/resolv.conf /etc/hosts";
    let (s, out) = run_once(&mut d, &pod, &sandbox, sh_container("files", script)).await;
    assert_eq!(s.exit_code, 0, "{out:?}");
    assert_eq!(value(&out, "hostname"), "cfg-host");
    assert_eq!(value(&out, "etc_hostname"), "cfg-host");
    assert_eq!(value(&out, "port_start"), "0");
    assert_eq!(value(&out, "rmid"), "1");
    let has = |l: &str| {
        out.iter()
            .any(|o| o.split_whitespace().eq(l.split_whitespace()))
    };
    assert!(has("nameserver 10.96.0.10"), "{out:#?}");
    assert!(
        has("search default.svc.cluster.local svc.cluster.local"),
        "{out:#?}"
    );
    assert!(has("options ndots:5"), "{out:#?}");
    assert!(
        out.iter().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&ip.as_str()) && f.contains(&"cfg-host")
        }),
        "no {ip} cfg-host line in /etc/hosts: {out:#?}"
    );
    assert!(out
        .iter()
        .any(|l| l.starts_with("127.0.0.1") && l.contains("localhost")));
    // The sysctl lets a non-root process bind port 80.
    let mut c = sh_container(
        "low-port",
        "nc -l -p 80 & pid=$!; sleep 0.3; kill -0 $pid && echo bound=yes; kill $pid",
    );
    sc(&mut c).run_as_user = Some(cri::Int64Value {
        value: NOBODY_ID.into(),
    });
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(value(&out, "bound"), "yes", "{out:?}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_network_shares_the_node_network_namespace() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let mut sandbox = pod_config("hostnet");
    let mut c = sh_container(
        "hostnet",
        "echo netns=$(readlink /proc/self/ns/net); echo hostname=$(hostname); \
         cat /proc/net/dev",
    );
    namespaces(
        &mut sandbox,
        &mut [&mut c],
        cri::NamespaceMode::Node,
        cri::NamespaceMode::Container,
        cri::NamespaceMode::Pod,
    );
    let pod = d.run_pod(&sandbox).await;
    let (s, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(s.exit_code, 0, "{out:?}");
    let host_ns = std::fs::read_link("/proc/self/ns/net").expect("host netns");
    assert_eq!(value(&out, "netns"), host_ns.display().to_string());
    let host_name = nix::unistd::gethostname().expect("hostname");
    assert_eq!(value(&out, "hostname"), host_name.to_string_lossy());
    // The node's default-route interface is there.
    let route = std::fs::read_to_string("/proc/net/route").expect("routes");
    let default_dev = route
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().nth(1) == Some("00000000"))
        .and_then(|l| l.split_whitespace().next())
        // A node without one (the cgroup v2 test VM): its loopback.
        .unwrap_or("lo")
        .to_string();
    assert!(
        out.iter()
            .any(|l| l.trim_start().starts_with(&format!("{default_dev}:"))),
        "{default_dev} missing: {out:#?}"
    );

    // A pod-network container has its own namespace.
    let plain = pod_config("podnet");
    let plain_pod = d.run_pod(&plain).await;
    let c = sh_container("podnet", "readlink /proc/self/ns/net");
    let (_, out) = run_once(&mut d, &plain_pod, &plain, c).await;
    assert_ne!(out, [host_ns.display().to_string()]);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pid_namespace_pod_shares_processes_and_container_isolates() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let mut sandbox = pod_config("pidpod");
    let mut a = sh_container("a", "exec sleep 4242");
    let mut b = sleeper("b");
    namespaces(
        &mut sandbox,
        &mut [&mut a, &mut b],
        cri::NamespaceMode::Pod,
        cri::NamespaceMode::Pod,
        cri::NamespaceMode::Pod,
    );
    let pod = d.run_pod(&sandbox).await;
    d.start_container(&pod, &sandbox, a).await;
    let b = d.start_container(&pod, &sandbox, b).await;
    let ps = exec_ok(&mut d, &b, "ps -o pid,args").await;
    assert!(ps.contains("sleep 4242"), "{ps}");
    assert!(ps.contains("sleep 1000"), "{ps}");
    // pid 1 is the pause process, not a container's.
    let init = exec_ok(&mut d, &b, "tr '\\0' ' ' < /proc/1/cmdline").await;
    assert!(!init.contains("sleep"), "pid 1 is {init:?}");
    assert!(
        init.contains("pause") || init.contains("berth"),
        "pid 1 is {init:?}"
    );

    // pid CONTAINER: the container's own init is pid 1 and sees no one else.
    let mut c = sh_container("alone", "echo self=$$; ps -o pid,args");
    sc(&mut c).namespace_options = Some(cri::NamespaceOption {
        pid: cri::NamespaceMode::Container as i32,
        ..Default::default()
    });
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(value(&out, "self"), "1", "{out:?}");
    assert!(!out.iter().any(|l| l.contains("sleep")), "{out:?}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipc_pod_shares_dev_shm_between_containers() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let sandbox = pod_config("shm");
    let pod = d.run_pod(&sandbox).await;
    let writer = d
        .start_container(
            &pod,
            &sandbox,
            sh_container("writer", "echo shared > /dev/shm/note; exec sleep 1000"),
        )
        .await;
    let reader = d.start_container(&pod, &sandbox, sleeper("reader")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = String::new();
    while Instant::now() < deadline && got != "shared" {
        got = exec(&mut d, &reader, "cat /dev/shm/note 2>/dev/null")
            .await
            .1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got, "shared");
    let ns = "readlink /proc/self/ns/ipc";
    assert_eq!(
        exec_ok(&mut d, &writer, ns).await,
        exec_ok(&mut d, &reader, ns).await
    );

    // ipc CONTAINER: a /dev/shm and an IPC namespace of its own.
    let mut c = sh_container(
        "own-ipc",
        "test -e /dev/shm/note && echo sees=yes || echo sees=no; \
         echo ns=$(readlink /proc/self/ns/ipc)",
    );
    sc(&mut c).namespace_options = Some(cri::NamespaceOption {
        ipc: cri::NamespaceMode::Container as i32,
        ..Default::default()
    });
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert_eq!(value(&out, "sees"), "no", "{out:?}");
    assert_ne!(value(&out, "ns"), exec_ok(&mut d, &reader, ns).await);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tty_output_is_logged_as_stdout_and_stdin_is_kept_open() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let sandbox = pod_config("tty");
    let pod = d.run_pod(&sandbox).await;
    let mut c = sh_container("tty", "tty; echo to-stderr >&2; echo done");
    c.tty = true;
    let id = d.start_container(&pod, &sandbox, c).await;
    let s = d.wait_exited(&id).await;
    assert_eq!(s.exit_code, 0);
    let log = read_log(&s.log_path);
    assert!(log.iter().all(|l| l.stream == "stdout"), "{log:#?}");
    let out = stdout_of(&log);
    assert!(
        out.first().is_some_and(|l| l.starts_with("/dev/pts/")),
        "{out:?}"
    );
    assert!(out.contains(&"to-stderr".to_string()), "{out:?}");

    // Without a tty, stdout and stderr stay apart and tty says so.
    let c = sh_container("no-tty", "tty; echo to-stderr >&2; true");
    let id = d.start_container(&pod, &sandbox, c).await;
    let s = d.wait_exited(&id).await;
    let log = read_log(&s.log_path);
    assert!(
        log.contains(&LogLine {
            stream: "stderr".into(),
            text: "to-stderr".into()
        }),
        "{log:#?}"
    );
    assert!(
        stdout_of(&log).iter().any(|l| l.contains("not a tty")),
        "{log:#?}"
    );

    // stdin: a pipe the monitor holds open (nothing attached yet, so a
    // read waits), versus /dev/null without it.
    let script = "echo stdin=$(readlink /proc/self/fd/0); \
                  read -t 1 line; echo read=$?";
    let mut c = sh_container("stdin", script);
    c.stdin = true;
    let (_, out) = run_once(&mut d, &pod, &sandbox, c).await;
    assert!(
        value(&out, "stdin").starts_with("pipe:") || value(&out, "stdin").starts_with("socket:"),
        "{out:?}"
    );
    assert_ne!(value(&out, "read"), "0", "stdin delivered data: {out:?}");
    let (_, out) = run_once(&mut d, &pod, &sandbox, sh_container("no-stdin", script)).await;
    assert_eq!(value(&out, "stdin"), "/dev/null", "{out:?}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_report_cpu_memory_and_pod_network() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let sandbox = pod_config("stats");
    let pod = d.run_pod(&sandbox).await;
    let busy = d
        .start_container(
            &pod,
            &sandbox,
            sh_container(
                "busy",
                "x=; while :; do x=$x.; [ ${#x} -gt 100000 ] && x=; done",
            ),
        )
        .await;
    // Some traffic on the pod's interface (towards the bridge's gateway).
    let gateway = format!("{}.1", d.subnet_prefix());
    exec(&mut d, &busy, &format!("ping -c 2 -W 1 {gateway}")).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let s = d
            .cri
            .runtime
            .container_stats(cri::ContainerStatsRequest {
                container_id: busy.clone(),
            })
            .await
            .expect("ContainerStats")
            .into_inner()
            .stats
            .expect("stats");
        let cpu = s
            .cpu
            .as_ref()
            .and_then(|c| c.usage_core_nano_seconds.as_ref())
            .map_or(0, |v| v.value);
        let nano_cores = s
            .cpu
            .as_ref()
            .and_then(|c| c.usage_nano_cores.as_ref())
            .map_or(0, |v| v.value);
        if cpu > 0 && nano_cores > 0 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let cpu = stats.cpu.expect("cpu");
    assert!(cpu.usage_core_nano_seconds.is_some_and(|v| v.value > 0));
    assert!(cpu.usage_nano_cores.is_some_and(|v| v.value > 0), "{cpu:?}");
    let memory = stats.memory.expect("memory");
    assert!(
        memory.working_set_bytes.is_some_and(|v| v.value > 0),
        "{memory:?}"
    );
    assert_eq!(stats.attributes.expect("attributes").id, busy);

    let list = d
        .cri
        .runtime
        .list_container_stats(cri::ListContainerStatsRequest {
            filter: Some(cri::ContainerStatsFilter {
                pod_sandbox_id: pod.clone(),
                ..Default::default()
            }),
        })
        .await
        .expect("ListContainerStats")
        .into_inner()
        .stats;
    assert_eq!(list.len(), 1);
    assert!(list[0]
        .cpu
        .as_ref()
        .and_then(|c| c.usage_core_nano_seconds.as_ref())
        .is_some_and(|v| v.value > 0));

    let ps = d.pod_stats(&pod).await;
    let linux = ps.linux.expect("linux");
    assert!(linux
        .cpu
        .and_then(|c| c.usage_core_nano_seconds)
        .is_some_and(|v| v.value > 0));
    assert!(linux
        .memory
        .and_then(|m| m.working_set_bytes)
        .is_some_and(|v| v.value > 0));
    let net = linux.network.expect("network");
    let iface = net.default_interface.expect("default interface");
    assert!(iface.tx_bytes.is_some_and(|v| v.value > 0), "{iface:?}");
    assert!(iface.rx_bytes.is_some_and(|v| v.value > 0), "{iface:?}");
    assert!(linux
        .process
        .and_then(|p| p.process_count)
        .is_some_and(|v| v.value >= 1));
    assert_eq!(linux.containers.len(), 1);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_events_are_exact_and_in_order() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let mut events = d.events().await;
    let sandbox = pod_config("events");
    let pod = d.run_pod(&sandbox).await;
    let short = d
        .start_container(&pod, &sandbox, sh_container("short", "exit 0"))
        .await;
    d.wait_exited(&short).await;
    let long = d.start_container(&pod, &sandbox, sleeper("long")).await;
    d.stop_container(&long, 5).await;
    for id in [&short, &long] {
        d.cri
            .runtime
            .remove_container(cri::RemoveContainerRequest {
                container_id: id.to_string(),
            })
            .await
            .expect("RemoveContainer");
    }

    // Read until both DELETED events came, then a little longer for extras.
    use cri::ContainerEventType as E;
    let mut seen: Vec<(String, i32)> = Vec::new();
    let done = |seen: &[(String, i32)]| {
        [&short, &long].iter().all(|id| {
            seen.iter()
                .any(|(c, t)| c == *id && *t == E::ContainerDeletedEvent as i32)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&seen) && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), events.next()).await {
            Ok(Some(Ok(e))) => seen.push((e.container_id, e.container_event_type)),
            Ok(other) => panic!("event stream ended: {other:?}"),
            Err(_) => {}
        }
    }
    let quiet = Instant::now() + Duration::from_secs(1);
    while Instant::now() < quiet {
        match tokio::time::timeout(Duration::from_millis(300), events.next()).await {
            Ok(Some(Ok(e))) => seen.push((e.container_id, e.container_event_type)),
            _ => break,
        }
    }
    let want = [
        E::ContainerCreatedEvent as i32,
        E::ContainerStartedEvent as i32,
        E::ContainerStoppedEvent as i32,
        E::ContainerDeletedEvent as i32,
    ];
    for id in [&short, &long] {
        let got: Vec<i32> = seen
            .iter()
            .filter(|(c, _)| c == id)
            .map(|(_, t)| *t)
            .collect();
        assert_eq!(got, want, "events of {id}: {seen:?}");
    }
    // berthd's SIGTERM waits for open streams: end ours first.
    drop(events);
    d.shutdown().await;
}
