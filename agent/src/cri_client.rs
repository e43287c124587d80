//! A CRI client over berthd's unix socket, for the `berth` CLI, the tests
//! and the benchmarks: one HTTP/2 channel that both services share.

use std::path::{Path, PathBuf};

use berth_proto::v1::{
    image_service_client::ImageServiceClient, runtime_service_client::RuntimeServiceClient,
};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

/// The CRI services of one endpoint.
#[derive(Debug, Clone)]
pub struct CriClient {
    /// `runtime.v1.RuntimeService`.
    pub runtime: RuntimeServiceClient<Channel>,
    /// `runtime.v1.ImageService`.
    pub images: ImageServiceClient<Channel>,
}

/// Connects to the CRI socket at `socket` (a path, or `unix://PATH`).
pub async fn connect(socket: &Path) -> Result<CriClient, tonic::transport::Error> {
    let path: PathBuf = socket
        .to_str()
        .and_then(|s| s.strip_prefix("unix://"))
        .map(PathBuf::from)
        .unwrap_or_else(|| socket.to_path_buf());
    // The URI is required by the API but unused: the connector dials the socket.
    let channel = Endpoint::from_static("http://berth.sock")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(TokioIo::new)
            }
        }))
        .await?;
    Ok(CriClient {
        runtime: RuntimeServiceClient::new(channel.clone()),
        images: ImageServiceClient::new(channel),
    })
}
