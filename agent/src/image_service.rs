//! The CRI `runtime.v1.ImageService` served by berthd, on top of the image
//! store: PullImage, ImageStatus, ListImages, RemoveImage, ImageFsInfo, with
//! the `Image` fields filled as containerd fills them (id = config digest,
//! repo tags and digests, size, uid or username from the config's `User`).

use std::path::PathBuf;
use std::sync::Arc;

use berth_proto::v1::{
    image_service_server::ImageService, FilesystemIdentifier, FilesystemUsage, Image as CriImage,
    ImageFsInfoRequest, ImageFsInfoResponse, ImageSpec, ImageStatusRequest, ImageStatusResponse,
    Int64Value, ListImagesRequest, ListImagesResponse, PullImageRequest, PullImageResponse,
    RemoveImageRequest, RemoveImageResponse, UInt64Value,
};
use tonic::{Request, Response, Status};

use crate::daemon::time::now_ns;
use crate::daemon::DaemonError;
use crate::images::{disk_usage, Image, ImageError, ImageStore, ImageUser, RegistryAuth};

/// The ImageService implementation; cheap to clone.
#[derive(Clone)]
pub struct ImageServiceImpl {
    store: Arc<ImageStore>,
    /// Where containers' writable layers are (for ImageFsInfo).
    containers_dir: Option<PathBuf>,
}

impl ImageServiceImpl {
    /// Serves `store`; `containers_dir` is where containers' writable layers
    /// live, reported by ImageFsInfo as the container filesystem.
    pub fn new(store: Arc<ImageStore>, containers_dir: Option<PathBuf>) -> Self {
        ImageServiceImpl {
            store,
            containers_dir,
        }
    }

    /// The store served.
    pub fn store(&self) -> &Arc<ImageStore> {
        &self.store
    }
}

/// An image as CRI describes it.
pub fn cri_image(i: &Image) -> CriImage {
    let (uid, username) = match i.image_user() {
        ImageUser::Unset => (None, String::new()),
        ImageUser::Uid(uid) => (Some(Int64Value { value: uid.into() }), String::new()),
        ImageUser::Name(name) => (None, name),
    };
    CriImage {
        id: i.id.to_string(),
        repo_tags: i.repo_tags.clone(),
        repo_digests: i.repo_digests.clone(),
        size: i.size,
        uid,
        username,
        spec: Some(ImageSpec {
            image: i.id.to_string(),
            ..Default::default()
        }),
        pinned: false,
    }
}

fn image_field(spec: Option<ImageSpec>) -> Result<String, Status> {
    spec.map(|s| s.image)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Status::invalid_argument("image.image: empty"))
}

fn status_of(e: ImageError) -> Status {
    DaemonError::from(e).into()
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("image store task: {e}")))?
        .map_err(status_of)
}

fn fs_usage(dir: PathBuf, (bytes, inodes): (u64, u64)) -> FilesystemUsage {
    FilesystemUsage {
        timestamp: now_ns(),
        fs_id: Some(FilesystemIdentifier {
            mountpoint: dir.display().to_string(),
        }),
        used_bytes: Some(UInt64Value { value: bytes }),
        inodes_used: Some(UInt64Value { value: inodes }),
    }
}

#[tonic::async_trait]
impl ImageService for ImageServiceImpl {
    async fn list_images(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let filter = request
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|i| i.image)
            .filter(|i| !i.is_empty());
        let store = self.store.clone();
        let images = blocking(move || match filter {
            Some(name) => Ok(store.status(&name)?.into_iter().collect()),
            None => store.list(),
        })
        .await?;
        Ok(Response::new(ListImagesResponse {
            images: images.iter().map(cri_image).collect(),
        }))
    }

    async fn image_status(
        &self,
        request: Request<ImageStatusRequest>,
    ) -> Result<Response<ImageStatusResponse>, Status> {
        let r = request.into_inner();
        let name = image_field(r.image)?;
        let store = self.store.clone();
        let image = blocking(move || store.status(&name)).await?;
        let mut info = std::collections::HashMap::new();
        if let (true, Some(i)) = (r.verbose, &image) {
            let v = serde_json::json!({
                "manifestDigest": i.manifest_digest.to_string(),
                "chainIDs": i.chain_ids.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                "imageSpec": i.config,
            });
            info.insert("info".to_string(), v.to_string());
        }
        Ok(Response::new(ImageStatusResponse {
            image: image.as_ref().map(cri_image),
            info,
        }))
    }

    async fn pull_image(
        &self,
        request: Request<PullImageRequest>,
    ) -> Result<Response<PullImageResponse>, Status> {
        let r = request.into_inner();
        let name = image_field(r.image)?;
        let auth = match r.auth {
            Some(a) => {
                let token = match a.registry_token.is_empty() {
                    true => &a.identity_token,
                    false => &a.registry_token,
                };
                Some(
                    RegistryAuth::from_cri(&a.username, &a.password, &a.auth, token)
                        .map_err(|e| Status::invalid_argument(format!("auth: {e}")))?,
                )
            }
            None => None,
        };
        let image = self.store.pull(&name, auth).await.map_err(status_of)?;
        tracing::info!(image = %name, id = %image.id, "pulled");
        Ok(Response::new(PullImageResponse {
            image_ref: image.id.to_string(),
        }))
    }

    async fn remove_image(
        &self,
        request: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        let name = image_field(request.into_inner().image)?;
        let store = self.store.clone();
        blocking(move || store.remove(&name)).await?;
        Ok(Response::new(RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _request: Request<ImageFsInfoRequest>,
    ) -> Result<Response<ImageFsInfoResponse>, Status> {
        let store = self.store.clone();
        let images_dir = store.root().to_path_buf();
        let containers = self.containers_dir.clone();
        let (images, containers) = blocking(move || {
            let images = store.fs_usage()?;
            let containers = match containers {
                Some(dir) => Some((dir.clone(), disk_usage(&dir)?)),
                None => None,
            };
            Ok((images, containers))
        })
        .await?;
        Ok(Response::new(ImageFsInfoResponse {
            image_filesystems: vec![fs_usage(images_dir, images)],
            container_filesystems: containers
                .map(|(dir, u)| vec![fs_usage(dir, u)])
                .unwrap_or_default(),
        }))
    }
}
