//! Making a container's image present before CreateContainer, by its
//! `imagePullPolicy`: Never only looks, IfNotPresent pulls when missing,
//! Always pulls (keeping the local copy when the pull fails, with a
//! warning). `berth.local/` images are built into berthd and never pulled.

use berth_proto::v1 as cri;

use crate::cri_client::CriClient;
use crate::manifest::PullPolicy;

/// Why an image is not there: the waiting reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageError {
    pub reason: &'static str,
    pub message: String,
}

/// The registry of images that only exist locally.
const LOCAL_REGISTRY: &str = "berth.local/";

/// The local `image` (ImageStatus); None when it is not there or the call
/// fails.
pub async fn status(cri: &mut CriClient, image: &str) -> Option<cri::Image> {
    cri.images
        .image_status(cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .ok()
        .and_then(|r| r.into_inner().image)
}

async fn present(cri: &mut CriClient, image: &str) -> bool {
    status(cri, image).await.is_some()
}

async fn pull(cri: &mut CriClient, image: &str) -> Result<(), String> {
    cri.images
        .pull_image(cri::PullImageRequest {
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            auth: None,
            sandbox_config: None,
        })
        .await
        .map(drop)
        .map_err(|e| e.message().to_string())
}

/// Makes `image` present; `Ok(Some(warning))` when it went on despite a
/// failed pull.
pub async fn ensure(
    cri: &mut CriClient,
    image: &str,
    policy: PullPolicy,
) -> Result<Option<String>, ImageError> {
    let local_only = image.starts_with(LOCAL_REGISTRY);
    if policy == PullPolicy::Never || local_only {
        return if present(cri, image).await {
            Ok(None)
        } else {
            Err(ImageError {
                reason: "ErrImageNeverPull",
                message: format!("image {image:?} is not present and may not be pulled"),
            })
        };
    }
    if policy == PullPolicy::IfNotPresent && present(cri, image).await {
        return Ok(None);
    }
    match pull(cri, image).await {
        Ok(()) => Ok(None),
        Err(e) if present(cri, image).await => Ok(Some(format!(
            "failed to pull image {image:?} ({e}); using the local copy"
        ))),
        Err(e) => Err(ImageError {
            reason: "ErrImagePull",
            message: format!("failed to pull image {image:?}: {e}"),
        }),
    }
}
