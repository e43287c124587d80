//! grpc probes: one call of the standard gRPC health checking protocol
//! (`grpc.health.v1.Health/Check`) over plaintext HTTP/2 to the pod;
//! SERVING is success.

use std::time::Duration;

use tonic::transport::Endpoint;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Checks `service` (empty: the server) at `host:port` within `timeout`.
pub async fn check(
    host: &str,
    port: u16,
    service: Option<&str>,
    timeout: Duration,
) -> Result<(), String> {
    let addr = if host.contains(':') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    };
    let endpoint = Endpoint::from_shared(addr.clone())
        .map_err(|e| format!("{addr}: {e}"))?
        .connect_timeout(timeout)
        .timeout(timeout);
    let work = async {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("failed to connect service {host}:{port}: {e}"))?;
        let r = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.unwrap_or_default().to_string(),
            })
            .await
            .map_err(|e| format!("health rpc failed: {}", e.message()))?
            .into_inner();
        match ServingStatus::try_from(r.status) {
            Ok(ServingStatus::Serving) => Ok(()),
            Ok(s) => Err(format!(
                "service unhealthy (responded with {:?})",
                s.as_str_name()
            )),
            Err(_) => Err(format!("service unhealthy (status {})", r.status)),
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("timeout: health rpc did not complete within {timeout:?}"))?
}
