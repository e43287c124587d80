//! The CRI `runtime.v1.ImageService` served by berthd, on top of the image
//! store: PullImage, ImageStatus, ListImages, RemoveImage, ImageFsInfo.

use std::sync::Arc;

use berth_proto::v1::{
    image_service_server::ImageService, ImageFsInfoRequest, ImageFsInfoResponse,
    ImageStatusRequest, ImageStatusResponse, ListImagesRequest, ListImagesResponse,
    PullImageRequest, PullImageResponse, RemoveImageRequest, RemoveImageResponse,
};
use tonic::{Request, Response, Status};

use crate::images::ImageStore;

/// The ImageService implementation; cheap to clone.
#[derive(Clone)]
pub struct ImageServiceImpl {
    store: Arc<ImageStore>,
}

impl ImageServiceImpl {
    /// Serves `store`.
    pub fn new(store: Arc<ImageStore>) -> Self {
        ImageServiceImpl { store }
    }

    /// The store served.
    pub fn store(&self) -> &Arc<ImageStore> {
        &self.store
    }
}

#[tonic::async_trait]
impl ImageService for ImageServiceImpl {
    async fn list_images(
        &self,
        _request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        Err(Status::unimplemented("ListImages"))
    }

    async fn image_status(
        &self,
        _request: Request<ImageStatusRequest>,
    ) -> Result<Response<ImageStatusResponse>, Status> {
        Err(Status::unimplemented("ImageStatus"))
    }

    async fn pull_image(
        &self,
        _request: Request<PullImageRequest>,
    ) -> Result<Response<PullImageResponse>, Status> {
        Err(Status::unimplemented("PullImage"))
    }

    async fn remove_image(
        &self,
        _request: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        Err(Status::unimplemented("RemoveImage"))
    }

    async fn image_fs_info(
        &self,
        _request: Request<ImageFsInfoRequest>,
    ) -> Result<Response<ImageFsInfoResponse>, Status> {
        Err(Status::unimplemented("ImageFsInfo"))
    }
}
