//! The CRI bench's client of one endpoint (`unix:///...`), built on
//! berth-proto's generated RuntimeService client: a pod's start
//! (RunPodSandbox, CreateContainer, StartContainer), its stop and removal
//! (StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox), and
//! the removal of every pod a bench run left behind.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use berth_proto::runtime_service_client::RuntimeServiceClient;
use berth_proto::v1::{
    CreateContainerRequest, ListPodSandboxRequest, PodSandboxConfig, PodSandboxFilter,
    RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopContainerRequest, StopPodSandboxRequest, VersionRequest,
};
use tonic::transport::{Channel, Endpoint};

use crate::cri_pod::{self, PodPlace, RUN_LABEL};
use crate::error::BenchError;

/// How long one RPC may take before the bench gives up on it.
const RPC_TIMEOUT: Duration = Duration::from_secs(120);
/// StopContainer's grace period: none, so that stop measures the
/// runtime's machinery, not `sleep` ignoring SIGTERM as pid 1.
const STOP_TIMEOUT_SECS: i64 = 0;

/// The RPCs of a pod's start, in order.
pub const START_RPCS: [&str; 3] = ["RunPodSandbox", "CreateContainer", "StartContainer"];
/// The RPCs of a pod's stop and removal, in order.
pub const STOP_RPCS: [&str; 4] = [
    "StopContainer",
    "RemoveContainer",
    "StopPodSandbox",
    "RemovePodSandbox",
];

/// A started pod.
#[derive(Debug, Clone)]
pub struct StartedPod {
    pub sandbox_id: String,
    pub container_id: String,
    /// The pod's name, for errors.
    pub name: String,
    /// How long each of [`START_RPCS`] took.
    pub start_rpcs: [Duration; 3],
}

/// Runs `call` and returns its outcome with how long it took.
async fn timed<T>(call: impl std::future::Future<Output = T>) -> (T, Duration) {
    let begun = Instant::now();
    let outcome = call.await;
    (outcome, begun.elapsed())
}

/// One endpoint's RuntimeService client.
#[derive(Clone)]
pub struct CriClient {
    runtime: &'static str,
    client: RuntimeServiceClient<Channel>,
}

fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(RPC_TIMEOUT);
    request
}

impl CriClient {
    /// Connects to `endpoint` (`unix:///path` or `http://host:port`).
    pub async fn connect(runtime: &'static str, endpoint: &str) -> Result<CriClient, BenchError> {
        let connect_error = |source| BenchError::Connect {
            runtime,
            endpoint: endpoint.to_string(),
            source,
        };
        let channel = Endpoint::from_shared(endpoint.to_string())
            .map_err(connect_error)?
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(connect_error)?;
        Ok(CriClient {
            runtime,
            client: RuntimeServiceClient::new(channel),
        })
    }

    fn failed(&self, rpc: &'static str, pod: &str) -> impl FnOnce(tonic::Status) -> BenchError {
        let (runtime, pod) = (self.runtime, pod.to_string());
        move |status| BenchError::Rpc {
            runtime,
            rpc,
            pod,
            code: status.code(),
            message: status.message().to_string(),
        }
    }

    /// `runtime_name runtime_version` from Version.
    pub async fn version(&mut self) -> Result<String, BenchError> {
        let failed = self.failed("Version", "-");
        let response = self
            .client
            .version(request(VersionRequest {
                version: "v1".to_string(),
            }))
            .await
            .map_err(failed)?
            .into_inner();
        Ok(format!(
            "{} {}",
            response.runtime_name, response.runtime_version
        ))
    }

    /// RunPodSandbox, CreateContainer and StartContainer of pod `n`. On a
    /// failure after the sandbox exists, the sandbox is removed again
    /// before the error is returned.
    pub async fn start_pod(
        &mut self,
        place: &PodPlace<'_>,
        n: usize,
    ) -> Result<StartedPod, BenchError> {
        let config = cri_pod::sandbox_config(place, n);
        let name = config
            .metadata
            .as_ref()
            .map_or_else(String::new, |meta| meta.name.clone());
        let failed = self.failed("RunPodSandbox", &name);
        let (sandbox, run_time) =
            timed(self.client.run_pod_sandbox(request(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })))
            .await;
        let sandbox_id = sandbox.map_err(failed)?.into_inner().pod_sandbox_id;
        match self
            .start_container(place, &sandbox_id, config, &name)
            .await
        {
            Ok((container_id, [create_time, start_time])) => Ok(StartedPod {
                sandbox_id,
                container_id,
                name,
                start_rpcs: [run_time, create_time, start_time],
            }),
            Err(error) => {
                let _ = self.remove_sandbox(&sandbox_id, &name).await;
                Err(error)
            }
        }
    }

    async fn start_container(
        &mut self,
        place: &PodPlace<'_>,
        sandbox_id: &str,
        sandbox_config: PodSandboxConfig,
        name: &str,
    ) -> Result<(String, [Duration; 2]), BenchError> {
        let failed = self.failed("CreateContainer", name);
        let (created, create_time) = timed(self.client.create_container(request(
            CreateContainerRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                config: Some(cri_pod::container_config(place)),
                sandbox_config: Some(sandbox_config),
            },
        )))
        .await;
        let container_id = created.map_err(failed)?.into_inner().container_id;
        let failed = self.failed("StartContainer", name);
        let (started, start_time) =
            timed(self.client.start_container(request(StartContainerRequest {
                container_id: container_id.clone(),
            })))
            .await;
        started.map_err(failed)?;
        Ok((container_id, [create_time, start_time]))
    }

    /// StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox;
    /// how long each of [`STOP_RPCS`] took.
    pub async fn stop_pod(&mut self, pod: &StartedPod) -> Result<[Duration; 4], BenchError> {
        let failed = self.failed("StopContainer", &pod.name);
        let (stopped, stop_time) =
            timed(self.client.stop_container(request(StopContainerRequest {
                container_id: pod.container_id.clone(),
                timeout: STOP_TIMEOUT_SECS,
            })))
            .await;
        stopped.map_err(failed)?;
        let failed = self.failed("RemoveContainer", &pod.name);
        let (removed, remove_time) = timed(self.client.remove_container(request(
            RemoveContainerRequest {
                container_id: pod.container_id.clone(),
            },
        )))
        .await;
        removed.map_err(failed)?;
        let [stop_sandbox, remove_sandbox] =
            self.remove_sandbox(&pod.sandbox_id, &pod.name).await?;
        Ok([stop_time, remove_time, stop_sandbox, remove_sandbox])
    }

    async fn remove_sandbox(
        &mut self,
        sandbox_id: &str,
        name: &str,
    ) -> Result<[Duration; 2], BenchError> {
        let failed = self.failed("StopPodSandbox", name);
        let (stopped, stop_time) =
            timed(self.client.stop_pod_sandbox(request(StopPodSandboxRequest {
                pod_sandbox_id: sandbox_id.to_string(),
            })))
            .await;
        stopped.map_err(failed)?;
        let failed = self.failed("RemovePodSandbox", name);
        let (removed, remove_time) = timed(self.client.remove_pod_sandbox(request(
            RemovePodSandboxRequest {
                pod_sandbox_id: sandbox_id.to_string(),
            },
        )))
        .await;
        removed.map_err(failed)?;
        Ok([stop_time, remove_time])
    }

    /// Stops and removes every pod labelled with `run` (with its
    /// containers: StopPodSandbox and RemovePodSandbox take them along);
    /// returns how many there were.
    pub async fn remove_run(&mut self, run: &str) -> Result<usize, BenchError> {
        let failed = self.failed("ListPodSandbox", "-");
        let filter = PodSandboxFilter {
            label_selector: HashMap::from([(RUN_LABEL.to_string(), run.to_string())]),
            ..Default::default()
        };
        let pods = self
            .client
            .list_pod_sandbox(request(ListPodSandboxRequest {
                filter: Some(filter),
            }))
            .await
            .map_err(failed)?
            .into_inner()
            .items;
        let mut first_error = None;
        for pod in &pods {
            let name = pod
                .metadata
                .as_ref()
                .map_or_else(|| pod.id.clone(), |meta| meta.name.clone());
            if let Err(error) = self.remove_sandbox(&pod.id, &name).await {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(pods.len()), Err)
    }
}
