//! Pulling from a real registry (Debian's docker-registry on a loopback
//! port, filled by skopeo): by tag, by digest, from an index, through a
//! mirror, with basic auth and bearer tokens, concurrently, and failing
//! half-way.

#[path = "images_common.rs"]
mod common;

use std::collections::HashMap;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use berth_agent::images::{ImageUser, RegistryAuth, RegistryConfig};
use berth_fixtures::image::{write_index_archive, BuiltImage, Compression, ImageSpec, Layer};
use common::{assert_layered_view, busybox, layered, scratch, store, store_with, MountGuard};
use token_server::TokenServer;

#[path = "images_token_server.rs"]
mod token_server;

/// How the registry authenticates clients.
enum Auth<'a> {
    /// Anyone may pull and push.
    Open,
    /// htpasswd (bcrypt) basic auth for this user and password.
    Basic(&'a str, &'a str),
    /// Bearer tokens from `server`, which wants this user and password.
    Token(&'a TokenServer, &'a str, &'a str),
}

/// A docker-registry process on 127.0.0.1, killed on drop.
struct Registry {
    child: Child,
    port: u16,
    dir: PathBuf,
    creds: Option<(String, String)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Starts a registry storing under `dir`, authenticating with `auth`.
    fn start(dir: &Path, auth: Auth<'_>) -> Registry {
        fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test\n",
            dir.join("data").display()
        );
        let creds = match auth {
            Auth::Open => None,
            Auth::Basic(user, pass) => Some((user, pass)),
            Auth::Token(server, user, pass) => {
                cfg += &server.registry_config();
                Some((user, pass))
            }
        };
        if let Auth::Basic(user, pass) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .unwrap();
            assert!(out.status.success(), "htpasswd failed");
            fs::write(dir.join("htpasswd"), out.stdout).unwrap();
            cfg += &format!(
                "auth:\n  htpasswd:\n    realm: berth\n    path: {}\n",
                dir.join("htpasswd").display()
            );
        }
        fs::write(dir.join("config.yml"), cfg).unwrap();
        let log = fs::File::create(dir.join("log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let reg = Registry {
            child,
            port,
            dir: dir.to_path_buf(),
            creds: creds.map(|(u, p)| (u.into(), p.into())),
        };
        for _ in 0..400 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return reg;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("registry on port {port} did not start");
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes an OCI archive as `repo:tag` (all platforms of an index).
    fn push(&self, archive: &Path, repo_tag: &str) {
        self.push_as(archive, repo_tag, None)
    }

    /// Pushes an OCI archive, converting manifests to `format` (`v2s2` for
    /// Docker schema2) if given.
    fn push_as(&self, archive: &Path, repo_tag: &str, format: Option<&str>) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--multi-arch",
            "all",
        ]);
        if let Some(f) = format {
            cmd.arg(format!("--format={f}"));
        }
        if let Some((u, p)) = &self.creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        let out = cmd
            .arg(format!("oci-archive:{}", archive.display()))
            .arg(format!("docker://{}/{repo_tag}", self.host()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo push failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Writes `spec` as an archive and pushes it as `repo_tag`.
    fn push_spec(&self, spec: &ImageSpec, repo_tag: &str) -> BuiltImage {
        let archive = self
            .dir
            .join(format!("{}.tar", repo_tag.replace(['/', ':'], "_")));
        let built = spec.write_oci_archive(&archive, repo_tag).unwrap();
        self.push(&archive, repo_tag);
        built
    }

    /// How many blob GETs for `digest` the registry answered with 200. The
    /// access log is written after a response is sent, so wait (bounded)
    /// for the first line to show up.
    fn blob_gets(&self, digest: &str) -> usize {
        let count = || {
            let log = fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            log.lines()
                .filter(|l| {
                    l.contains(&format!("/blobs/{digest}"))
                        && l.contains("\"GET ")
                        && l.contains("\" 200 ")
                })
                .count()
        };
        for _ in 0..200 {
            if count() > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        count()
    }

    /// Deletes a blob from the registry's storage.
    fn delete_blob(&self, digest: &str) {
        fs::remove_dir_all(self.blob_dir(digest)).unwrap();
    }

    /// Where the registry stores a blob.
    fn blob_dir(&self, digest: &str) -> PathBuf {
        let hex = &digest["sha256:".len()..];
        self.dir.join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{hex}",
            &hex[..2]
        ))
    }

    /// Flips a byte of a stored blob (the registry serves it unchecked).
    fn corrupt_blob(&self, digest: &str) {
        let path = self.blob_dir(digest).join("data");
        let mut data = fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        fs::write(path, data).unwrap();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mixed_layered() -> ImageSpec {
    let mut spec = layered();
    spec.layers[1].1 = Compression::Zstd;
    spec.layers[2].1 = Compression::None;
    spec.user = Some("1000:1000".into());
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_by_tag_then_by_digest() {
    let tmp = scratch("pull-tag");
    let reg = Registry::start(&tmp.path().join("registry"), Auth::Open);
    let built = reg.push_spec(&mixed_layered(), "berth/layered:v1");
    let s = store(tmp.path());
    let name = format!("{}/berth/layered:v1", reg.host());
    let img = s.pull(&name, None).await.unwrap();
    assert_eq!(img.id.as_str(), built.config_digest);
    assert_eq!(img.repo_tags, vec![name.clone()]);
    assert_eq!(img.user.as_deref(), Some("1000:1000"));
    assert_eq!(img.image_user(), ImageUser::Uid(1000));
    assert_eq!(img.repo_digests.len(), 1);
    assert_eq!(s.status(&name).unwrap().unwrap().id, img.id);
    let m = s
        .prepare_rootfs(img.id.as_str(), &tmp.path().join("c"), false)
        .unwrap();
    let _guard = MountGuard::new(&m);
    assert_layered_view(&m.target);

    let by_digest = img.repo_digests[0].clone();
    assert!(by_digest.starts_with(&format!("{}/berth/layered@sha256:", reg.host())));
    let other = scratch("pull-digest");
    let s2 = store(other.path());
    let img2 = s2.pull(&by_digest, None).await.unwrap();
    assert_eq!(img2.id, img.id);
    assert!(img2.repo_tags.is_empty());
    assert_eq!(s2.status(&by_digest).unwrap().unwrap().id, img.id);
    // Already stored by digest: answered from the store.
    assert_eq!(s2.pull(&by_digest, None).await.unwrap().id, img.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_index_picks_linux_amd64() {
    let tmp = scratch("pull-index");
    let reg = Registry::start(&tmp.path().join("registry"), Auth::Open);
    let mut arm = ImageSpec::new(vec![Layer::new().file("arch", b"arm64")]);
    arm.architecture = "arm64".into();
    let amd = ImageSpec::new(vec![Layer::new().file("arch", b"amd64")]);
    let archive = tmp.path().join("index.tar");
    let (index_digest, built) = write_index_archive(&archive, &[arm, amd], "multi:1").unwrap();
    reg.push(&archive, "berth/multi:1");
    let s = store(tmp.path());
    let img = s
        .pull(&format!("{}/berth/multi:1", reg.host()), None)
        .await
        .unwrap();
    assert_eq!(img.id.as_str(), built[1].config_digest);
    assert_eq!(
        img.repo_digests,
        vec![format!("{}/berth/multi@{index_digest}", reg.host())]
    );
    let snap = s.root().join("snapshots").join(img.chain_ids[0].hex());
    assert_eq!(fs::read(snap.join("arch")).unwrap(), b"amd64");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_through_mirrors_in_order() {
    let tmp = scratch("pull-mirror");
    let reg = Registry::start(&tmp.path().join("registry"), Auth::Open);
    let built = reg.push_spec(&busybox(), "library/berth-mirror-test:1");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let cfg = RegistryConfig {
        mirrors: HashMap::from([(
            "docker.io".to_string(),
            vec![dead, format!("http://{}", reg.host())],
        )]),
        insecure: Vec::new(),
    };
    let s = store_with(tmp.path(), cfg);
    let img = s.pull("berth-mirror-test:1", None).await.unwrap();
    assert_eq!(img.id.as_str(), built.config_digest);
    assert_eq!(img.repo_tags, vec!["docker.io/library/berth-mirror-test:1"]);
    assert!(s.status("berth-mirror-test:1").unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_with_basic_auth() {
    let tmp = scratch("pull-auth");
    let reg = Registry::start(&tmp.path().join("registry"), Auth::Basic("berth", "s3cret"));
    let built = reg.push_spec(&busybox(), "berth/private:1");
    let s = store(tmp.path());
    let name = format!("{}/berth/private:1", reg.host());
    assert!(
        s.pull(&name, None).await.is_err(),
        "anonymous pull must fail"
    );
    let wrong = RegistryAuth::Basic {
        username: "berth".into(),
        password: "nope".into(),
    };
    assert!(
        s.pull(&name, Some(wrong)).await.is_err(),
        "wrong password must fail"
    );
    assert!(s.list().unwrap().is_empty());
    let auth = RegistryAuth::Basic {
        username: "berth".into(),
        password: "s3cret".into(),
    };
    let img = s.pull(&name, Some(auth)).await.unwrap();
    assert_eq!(img.id.as_str(), built.config_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_download_each_layer_once() {
    let tmp = scratch("pull-concurrent");
    let reg = Registry::start(&tmp.path().join("registry"), Auth::Open);
    let built = reg.push_spec(&layered(), "berth/conc:1");
    let name = format!("{}/berth/conc:1", reg.host());
    let (a, b) = (store(tmp.path()), store(tmp.path()));
    let (ra, rb) = tokio::join!(a.pull(&name, None), b.pull(&name, None));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.id, rb.id);
    assert_eq!(ra.id.as_str(), built.config_digest);
    for layer in &ra.layers {
        let digest = layer.digest.as_str();
        assert_eq!(reg.blob_gets(digest), 1, "layer {digest} downloaded once");
    }
    assert_eq!(fs::read_dir(a.root().join("snapshots")).unwrap().count(), 3);
    assert_eq!(a.list().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_pull_leaves_no_image() {
    let tmp = scratch("pull-fail");
    let reg = Registry::start(&tmp.path().join("registry"), Auth::Open);
    let built = reg.push_spec(&layered(), "berth/broken:1");
    reg.delete_blob(&built.layer_digests[2]);
    let s = store(tmp.path());
    assert!(s
        .pull(&format!("{}/berth/missing:1", reg.host()), None)
        .await
        .is_err());
    let err = s
        .pull(&format!("{}/berth/broken:1", reg.host()), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(reg.host().as_str()), "{err}");
    assert!(s.list().unwrap().is_empty(), "no half image");
    assert!(s
        .status(&format!("{}/berth/broken:1", reg.host()))
        .unwrap()
        .is_none());
    assert_eq!(fs::read_dir(s.root().join("tmp")).unwrap().count(), 0);
    // Blobs and snapshots of the aborted pull are garbage for the next GC.
    s.remove("nothing-to-remove").unwrap();
    assert_eq!(fs::read_dir(s.root().join("snapshots")).unwrap().count(), 0);
    assert_eq!(
        fs::read_dir(s.root().join("blobs/sha256")).unwrap().count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_docker_schema2_manifest_list() {
    let tmp = scratch("pull-v2s2");
    let reg = Registry::start(&tmp.path().join("registry"), Auth::Open);
    let mut arm = ImageSpec::new(vec![
        Layer::busybox().unwrap(),
        Layer::new().file("arch", b"arm64"),
    ]);
    arm.architecture = "arm64".into();
    let amd = ImageSpec::new(vec![
        Layer::busybox().unwrap(),
        Layer::new().file("arch", b"amd64"),
    ]);
    let archive = tmp.path().join("index.tar");
    write_index_archive(&archive, &[arm, amd], "multi:1").unwrap();
    reg.push_as(&archive, "berth/docker:1", Some("v2s2"));
    let s = store(tmp.path());
    let img = s
        .pull(&format!("{}/berth/docker:1", reg.host()), None)
        .await
        .unwrap();
    let manifest = fs::read(
        s.root()
            .join("blobs/sha256")
            .join(img.manifest_digest.hex()),
    )
    .unwrap();
    assert!(
        String::from_utf8_lossy(&manifest)
            .contains("application/vnd.docker.distribution.manifest.v2+json"),
        "skopeo pushed a Docker schema2 manifest"
    );
    let m = s
        .prepare_rootfs(img.id.as_str(), &tmp.path().join("c"), false)
        .unwrap();
    let _guard = MountGuard::new(&m);
    assert_eq!(fs::read(m.target.join("arch")).unwrap(), b"amd64");
    assert!(m.target.join("bin/busybox").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_blob_is_refused() {
    let tmp = scratch("pull-corrupt");
    let reg = Registry::start(&tmp.path().join("registry"), Auth::Open);
    let built = reg.push_spec(&layered(), "berth/corrupt:1");
    reg.corrupt_blob(&built.layer_digests[1]);
    let s = store(tmp.path());
    let err = s
        .pull(&format!("{}/berth/corrupt:1", reg.host()), None)
        .await
        .unwrap_err();
    assert!(err.to_string().to_lowercase().contains("digest"), "{err}");
    assert!(s.list().unwrap().is_empty());
    assert!(!s
        .root()
        .join("blobs/sha256")
        .join(&built.layer_digests[1]["sha256:".len()..])
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_with_bearer_token() {
    let tmp = scratch("pull-token");
    let tokens = TokenServer::start(&tmp.path().join("token"), "berth", "t0ken");
    let reg = Registry::start(
        &tmp.path().join("registry"),
        Auth::Token(&tokens, "berth", "t0ken"),
    );
    let built = reg.push_spec(&busybox(), "berth/bearer:1");
    let s = store(tmp.path());
    let name = format!("{}/berth/bearer:1", reg.host());
    assert!(
        s.pull(&name, None).await.is_err(),
        "no token without credentials"
    );
    let auth = RegistryAuth::Basic {
        username: "berth".into(),
        password: "t0ken".into(),
    };
    let img = s.pull(&name, Some(auth)).await.unwrap();
    assert_eq!(img.id.as_str(), built.config_digest);
    assert!(
        tokens.issued() >= 2,
        "the push and the pull both got tokens"
    );
}

/// Child half of `pulls_in_two_processes_download_each_layer_once`: pulls
/// when started by it (the environment names store and reference), and
/// does nothing in a normal test run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_pull_helper() {
    let (Ok(root), Ok(reference)) = (
        std::env::var("BERTH_TEST_CHILD_STORE"),
        std::env::var("BERTH_TEST_CHILD_REF"),
    ) else {
        return;
    };
    let s =
        berth_agent::images::ImageStore::open(Path::new(&root), RegistryConfig::default()).unwrap();
    s.pull(&reference, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_in_two_processes_download_each_layer_once() {
    let tmp = scratch("pull-two-procs");
    let reg = Registry::start(&tmp.path().join("registry"), Auth::Open);
    let built = reg.push_spec(&mixed_layered(), "berth/procs:1");
    let name = format!("{}/berth/procs:1", reg.host());
    let s = store(tmp.path());
    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_pull_helper",
            "--quiet",
            "--test-threads=1",
        ])
        .env("BERTH_TEST_CHILD_STORE", s.root())
        .env("BERTH_TEST_CHILD_REF", &name)
        .kill_on_drop(true)
        .output();
    let (mine, theirs) = tokio::join!(s.pull(&name, None), child);
    let theirs = theirs.unwrap();
    assert!(
        theirs.status.success(),
        "child pull failed: {}",
        String::from_utf8_lossy(&theirs.stdout)
    );
    let mine = mine.unwrap();
    assert_eq!(mine.id.as_str(), built.config_digest);
    // skopeo compresses the plain layer on push: ask the image for its blobs.
    for layer in &mine.layers {
        let digest = layer.digest.as_str();
        assert_eq!(reg.blob_gets(digest), 1, "layer {digest} downloaded once");
    }
    assert_eq!(s.list().unwrap().len(), 1);
}

/// A TCP proxy to a registry that hangs up on its first connections,
/// stopped (with every forwarded connection shut) on drop.
struct FlakyProxy {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<std::thread::JoinHandle<Vec<TcpStream>>>,
}

impl FlakyProxy {
    /// Forwards 127.0.0.1:<port> to `target` after closing `drop_first` connections.
    fn start(target: u16, drop_first: usize) -> FlakyProxy {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (stop2, dropped2) = (stop.clone(), dropped.clone());
        let thread = std::thread::spawn(move || {
            let mut open = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                if dropped2.load(Ordering::Relaxed) < drop_first {
                    dropped2.fetch_add(1, Ordering::Relaxed);
                    drop(client);
                    continue;
                }
                client.set_nonblocking(false).unwrap();
                let server = TcpStream::connect(("127.0.0.1", target)).unwrap();
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
                open.extend([client, server]);
            }
            open
        });
        FlakyProxy {
            port,
            stop,
            dropped,
            thread: Some(thread),
        }
    }

    fn dropped(&self) -> usize {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            for s in t.join().unwrap_or_default() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_retries_dropped_connections() {
    let tmp = scratch("pull-retry");
    let reg = Registry::start(&tmp.path().join("registry"), Auth::Open);
    let built = reg.push_spec(&layered(), "berth/retry:1");
    let proxy = FlakyProxy::start(reg.port, 2);
    let s = store(tmp.path());
    let img = s
        .pull(&format!("127.0.0.1:{}/berth/retry:1", proxy.port), None)
        .await
        .unwrap();
    assert_eq!(img.id.as_str(), built.config_digest);
    assert_eq!(proxy.dropped(), 2, "the first two connections were cut");
}
