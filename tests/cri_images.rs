//! The CRI ImageService of berthd: PullImage from a local registry, then
//! ListImages, ImageStatus (uid and username from the config's User),
//! ImageFsInfo, a container from the pulled image, RemoveImage (idempotent).

use berth_fixtures::image::{ImageSpec, Layer};
use berth_fixtures::registry::LocalRegistry;
use berth_proto::v1 as cri;
use berth_tests::daemon::{pod_config, sh_container, Berthd};
use berth_tests::need_root;

fn spec(image: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec {
        image: image.into(),
        ..Default::default()
    })
}

async fn image_status(d: &mut Berthd, image: &str) -> Option<cri::Image> {
    d.cri
        .images
        .image_status(cri::ImageStatusRequest {
            image: spec(image),
            verbose: true,
        })
        .await
        .expect("ImageStatus")
        .into_inner()
        .image
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_list_status_use_and_remove_through_cri() {
    if need_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = LocalRegistry::start(&tmp.path().join("registry")).expect("registry");
    let mut named = ImageSpec::new(vec![
        Layer::busybox().unwrap(),
        Layer::new()
            .dir("app", 0o755)
            .file("app/hello", b"from the registry\n"),
    ]);
    named.user = Some("nobody".into());
    reg.push(&named, "test/named:v1").expect("push");
    let mut numeric = ImageSpec::new(vec![Layer::busybox().unwrap()]);
    numeric.user = Some("1000:1000".into());
    reg.push(&numeric, "test/numeric:v1").expect("push");

    let mut d = Berthd::start().await;
    let named_ref = format!("{}/test/named:v1", reg.host());
    let pulled = d
        .cri
        .images
        .pull_image(cri::PullImageRequest {
            image: spec(&named_ref),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("PullImage: {e}\n{}", d.log()))
        .into_inner()
        .image_ref;
    assert!(pulled.starts_with("sha256:"), "{pulled}");
    let numeric_ref = format!("{}/test/numeric:v1", reg.host());
    d.cri
        .images
        .pull_image(cri::PullImageRequest {
            image: spec(&numeric_ref),
            ..Default::default()
        })
        .await
        .expect("PullImage numeric");

    let img = image_status(&mut d, &named_ref).await.expect("named image");
    assert_eq!(img.id, pulled);
    assert_eq!(img.repo_tags, std::slice::from_ref(&named_ref));
    assert!(
        img.repo_digests[0].contains("@sha256:"),
        "{:?}",
        img.repo_digests
    );
    assert_eq!(img.username, "nobody");
    assert!(img.uid.is_none());
    assert!(img.size > 0);
    let img = image_status(&mut d, &numeric_ref)
        .await
        .expect("numeric image");
    assert_eq!(img.uid.map(|u| u.value), Some(1000));
    assert!(image_status(&mut d, "berth.local/absent:1").await.is_none());

    let all = d
        .cri
        .images
        .list_images(cri::ListImagesRequest::default())
        .await
        .expect("ListImages")
        .into_inner()
        .images;
    assert_eq!(all.len(), 3, "busybox, named and numeric: {all:?}");
    let filtered = d
        .cri
        .images
        .list_images(cri::ListImagesRequest {
            filter: Some(cri::ImageFilter {
                image: spec(&named_ref),
            }),
        })
        .await
        .expect("ListImages filter")
        .into_inner()
        .images;
    assert_eq!(filtered.len(), 1);

    let fs = d
        .cri
        .images
        .image_fs_info(cri::ImageFsInfoRequest {})
        .await
        .expect("ImageFsInfo")
        .into_inner();
    assert!(fs.image_filesystems[0].used_bytes.as_ref().unwrap().value > 0);

    // A container runs from the pulled image, as its user.
    let sandbox = pod_config("pulled");
    let pod = d.run_pod(&sandbox).await;
    let mut c = sh_container("app", "cat /app/hello; id -un");
    c.image = spec(&named_ref);
    let id = d.start_container(&pod, &sandbox, c).await;
    let s = d.wait_exited(&id).await;
    assert_eq!(s.exit_code, 0);
    assert!(s.image_ref.contains("@sha256:"), "{}", s.image_ref);
    let log = std::fs::read_to_string(&s.log_path).unwrap();
    assert!(log.contains("from the registry"), "{log}");
    assert!(log.contains(" stdout F nobody"), "{log}");
    d.remove_all().await;

    for _ in 0..2 {
        d.cri
            .images
            .remove_image(cri::RemoveImageRequest {
                image: spec(&named_ref),
            })
            .await
            .expect("RemoveImage (idempotent)");
    }
    assert!(image_status(&mut d, &named_ref).await.is_none());
    d.shutdown().await;
}
