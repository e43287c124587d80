//! The tonic `runtime.v1.RuntimeService`: each call unpacks its request,
//! calls the [`Daemon`] and maps errors to gRPC statuses. Exec, Attach and
//! PortForward check the container or pod, then get a single-use URL from
//! the streaming server. Checkpoints are not served.

use std::pin::Pin;
use std::sync::Arc;

use berth_proto::v1::{self as cri, runtime_service_server::RuntimeService};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use super::store::lock;
use super::Daemon;
use crate::config::CgroupDriver;
use crate::streaming::server::StreamingServer;

/// The only runtime handler berth has.
pub const HANDLER: &str = "berth";

/// The RuntimeService implementation; cheap to clone.
#[derive(Clone)]
pub struct RuntimeServiceImpl {
    daemon: Arc<Daemon>,
    streaming: Arc<StreamingServer>,
}

impl RuntimeServiceImpl {
    /// Serves `daemon`, with exec/attach/port-forward URLs on `streaming`.
    pub fn new(daemon: Arc<Daemon>, streaming: Arc<StreamingServer>) -> Self {
        Self { daemon, streaming }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn ok<T>(v: T) -> Reply<T> {
    Ok(Response::new(v))
}

fn condition(kind: &str, ready: Result<(), String>) -> cri::RuntimeCondition {
    let (status, reason, message) = match ready {
        Ok(()) => (true, String::new(), String::new()),
        Err(m) => (false, format!("{kind}NotReady"), m),
    };
    cri::RuntimeCondition {
        r#type: kind.to_string(),
        status,
        reason,
        message,
    }
}

#[tonic::async_trait]
impl RuntimeService for RuntimeServiceImpl {
    async fn version(&self, _r: Request<cri::VersionRequest>) -> Reply<cri::VersionResponse> {
        ok(cri::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "berth".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: "v1".into(),
        })
    }

    async fn run_pod_sandbox(
        &self,
        r: Request<cri::RunPodSandboxRequest>,
    ) -> Reply<cri::RunPodSandboxResponse> {
        let pod_sandbox_id = self.daemon.run_pod_sandbox(r.into_inner()).await?;
        ok(cri::RunPodSandboxResponse { pod_sandbox_id })
    }

    async fn stop_pod_sandbox(
        &self,
        r: Request<cri::StopPodSandboxRequest>,
    ) -> Reply<cri::StopPodSandboxResponse> {
        self.daemon
            .stop_pod_sandbox(&r.into_inner().pod_sandbox_id)
            .await?;
        ok(cri::StopPodSandboxResponse {})
    }

    async fn remove_pod_sandbox(
        &self,
        r: Request<cri::RemovePodSandboxRequest>,
    ) -> Reply<cri::RemovePodSandboxResponse> {
        self.daemon
            .remove_pod_sandbox(&r.into_inner().pod_sandbox_id)
            .await?;
        ok(cri::RemovePodSandboxResponse {})
    }

    async fn pod_sandbox_status(
        &self,
        r: Request<cri::PodSandboxStatusRequest>,
    ) -> Reply<cri::PodSandboxStatusResponse> {
        let r = r.into_inner();
        ok(self
            .daemon
            .pod_sandbox_status(&r.pod_sandbox_id, r.verbose)?)
    }

    async fn list_pod_sandbox(
        &self,
        r: Request<cri::ListPodSandboxRequest>,
    ) -> Reply<cri::ListPodSandboxResponse> {
        let items = self.daemon.list_pod_sandbox(r.into_inner().filter.as_ref());
        ok(cri::ListPodSandboxResponse { items })
    }

    async fn create_container(
        &self,
        r: Request<cri::CreateContainerRequest>,
    ) -> Reply<cri::CreateContainerResponse> {
        let container_id = self.daemon.create_container(r.into_inner()).await?;
        ok(cri::CreateContainerResponse { container_id })
    }

    async fn start_container(
        &self,
        r: Request<cri::StartContainerRequest>,
    ) -> Reply<cri::StartContainerResponse> {
        self.daemon
            .start_container(&r.into_inner().container_id)
            .await?;
        ok(cri::StartContainerResponse {})
    }

    async fn stop_container(
        &self,
        r: Request<cri::StopContainerRequest>,
    ) -> Reply<cri::StopContainerResponse> {
        let r = r.into_inner();
        self.daemon
            .stop_container(&r.container_id, r.timeout)
            .await?;
        ok(cri::StopContainerResponse {})
    }

    async fn remove_container(
        &self,
        r: Request<cri::RemoveContainerRequest>,
    ) -> Reply<cri::RemoveContainerResponse> {
        self.daemon
            .remove_container(&r.into_inner().container_id)
            .await?;
        ok(cri::RemoveContainerResponse {})
    }

    async fn list_containers(
        &self,
        r: Request<cri::ListContainersRequest>,
    ) -> Reply<cri::ListContainersResponse> {
        let containers = self.daemon.list_containers(r.into_inner().filter.as_ref());
        ok(cri::ListContainersResponse { containers })
    }

    async fn container_status(
        &self,
        r: Request<cri::ContainerStatusRequest>,
    ) -> Reply<cri::ContainerStatusResponse> {
        let r = r.into_inner();
        ok(self.daemon.container_status(&r.container_id, r.verbose)?)
    }

    async fn update_container_resources(
        &self,
        r: Request<cri::UpdateContainerResourcesRequest>,
    ) -> Reply<cri::UpdateContainerResourcesResponse> {
        let r = r.into_inner();
        self.daemon
            .update_container_resources(&r.container_id, r.linux)
            .await?;
        ok(cri::UpdateContainerResourcesResponse {})
    }

    async fn reopen_container_log(
        &self,
        r: Request<cri::ReopenContainerLogRequest>,
    ) -> Reply<cri::ReopenContainerLogResponse> {
        self.daemon
            .reopen_container_log(&r.into_inner().container_id)
            .await?;
        ok(cri::ReopenContainerLogResponse {})
    }

    async fn exec_sync(&self, r: Request<cri::ExecSyncRequest>) -> Reply<cri::ExecSyncResponse> {
        let r = r.into_inner();
        ok(self
            .daemon
            .exec_sync(&r.container_id, r.cmd, r.timeout)
            .await?)
    }

    async fn exec(&self, r: Request<cri::ExecRequest>) -> Reply<cri::ExecResponse> {
        let mut r = r.into_inner();
        r.container_id = self.daemon.running_container(&r.container_id)?.0.id.clone();
        ok(self.streaming.get_exec(&r)?)
    }

    async fn attach(&self, r: Request<cri::AttachRequest>) -> Reply<cri::AttachResponse> {
        let mut r = r.into_inner();
        r.container_id = self.daemon.running_container(&r.container_id)?.0.id.clone();
        ok(self.streaming.get_attach(&r)?)
    }

    async fn port_forward(
        &self,
        r: Request<cri::PortForwardRequest>,
    ) -> Reply<cri::PortForwardResponse> {
        let mut r = r.into_inner();
        r.pod_sandbox_id = self.daemon.ready_sandbox(&r.pod_sandbox_id)?.id.clone();
        ok(self.streaming.get_port_forward(&r)?)
    }

    async fn container_stats(
        &self,
        r: Request<cri::ContainerStatsRequest>,
    ) -> Reply<cri::ContainerStatsResponse> {
        let stats = self.daemon.container_stats(&r.into_inner().container_id)?;
        ok(cri::ContainerStatsResponse { stats: Some(stats) })
    }

    async fn list_container_stats(
        &self,
        r: Request<cri::ListContainerStatsRequest>,
    ) -> Reply<cri::ListContainerStatsResponse> {
        let stats = self
            .daemon
            .list_container_stats(r.into_inner().filter.as_ref());
        ok(cri::ListContainerStatsResponse { stats })
    }

    async fn pod_sandbox_stats(
        &self,
        r: Request<cri::PodSandboxStatsRequest>,
    ) -> Reply<cri::PodSandboxStatsResponse> {
        let stats = self
            .daemon
            .pod_sandbox_stats(&r.into_inner().pod_sandbox_id)?;
        ok(cri::PodSandboxStatsResponse { stats: Some(stats) })
    }

    async fn list_pod_sandbox_stats(
        &self,
        r: Request<cri::ListPodSandboxStatsRequest>,
    ) -> Reply<cri::ListPodSandboxStatsResponse> {
        let stats = self
            .daemon
            .list_pod_sandbox_stats(r.into_inner().filter.as_ref());
        ok(cri::ListPodSandboxStatsResponse { stats })
    }

    async fn update_runtime_config(
        &self,
        r: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> Reply<cri::UpdateRuntimeConfigResponse> {
        let cidr = r
            .into_inner()
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .unwrap_or_default();
        if !cidr.is_empty() {
            tracing::info!(pod_cidr = %cidr, "pod CIDR from kubelet");
            *lock(&self.daemon.pod_cidr) = cidr;
        }
        ok(cri::UpdateRuntimeConfigResponse {})
    }

    async fn status(&self, r: Request<cri::StatusRequest>) -> Reply<cri::StatusResponse> {
        let conditions = vec![
            condition("Runtime", Ok(())),
            condition("Network", self.daemon.network.status()),
        ];
        let mut info = std::collections::HashMap::new();
        if r.into_inner().verbose {
            let v = serde_json::json!({
                "root": self.daemon.cfg.root,
                "state": self.daemon.cfg.state,
                "cgroupDriver": self.daemon.cfg.cgroup_driver.as_str(),
                "podCIDR": *lock(&self.daemon.pod_cidr),
            });
            info.insert("config".to_string(), v.to_string());
        }
        ok(cri::StatusResponse {
            status: Some(cri::RuntimeStatus { conditions }),
            info,
            runtime_handlers: vec![cri::RuntimeHandler {
                name: String::new(),
                features: Some(cri::RuntimeHandlerFeatures {
                    recursive_read_only_mounts: false,
                    user_namespaces: false,
                }),
            }],
            features: Some(cri::RuntimeFeatures {
                supplemental_groups_policy: false,
            }),
        })
    }

    async fn checkpoint_container(
        &self,
        _r: Request<cri::CheckpointContainerRequest>,
    ) -> Reply<cri::CheckpointContainerResponse> {
        Err(Status::unimplemented(
            "CheckpointContainer is not supported",
        ))
    }

    type GetContainerEventsStream =
        Pin<Box<dyn Stream<Item = Result<cri::ContainerEventResponse, Status>> + Send + 'static>>;

    async fn get_container_events(
        &self,
        _r: Request<cri::GetEventsRequest>,
    ) -> Reply<Self::GetContainerEventsStream> {
        let rx = self.daemon.events.subscribe();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(ev) => Some((Ok(ev), rx)),
                // A client that fell behind has lost events: tell it so it
                // relists, never skip silently.
                Err(RecvError::Lagged(n)) => Some((
                    Err(Status::data_loss(format!("{n} events dropped; relist"))),
                    rx,
                )),
                Err(RecvError::Closed) => None,
            }
        });
        ok(Box::pin(stream))
    }

    async fn list_metric_descriptors(
        &self,
        _r: Request<cri::ListMetricDescriptorsRequest>,
    ) -> Reply<cri::ListMetricDescriptorsResponse> {
        ok(cri::ListMetricDescriptorsResponse {
            descriptors: vec![],
        })
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _r: Request<cri::ListPodSandboxMetricsRequest>,
    ) -> Reply<cri::ListPodSandboxMetricsResponse> {
        ok(cri::ListPodSandboxMetricsResponse {
            pod_metrics: vec![],
        })
    }

    async fn runtime_config(
        &self,
        _r: Request<cri::RuntimeConfigRequest>,
    ) -> Reply<cri::RuntimeConfigResponse> {
        let driver = match self.daemon.cfg.cgroup_driver {
            CgroupDriver::Cgroupfs => cri::CgroupDriver::Cgroupfs,
            CgroupDriver::Systemd => cri::CgroupDriver::Systemd,
        };
        ok(cri::RuntimeConfigResponse {
            linux: Some(cri::LinuxRuntimeConfiguration {
                cgroup_driver: driver as i32,
            }),
        })
    }
}
