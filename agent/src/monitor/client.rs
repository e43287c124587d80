//! berthd's side: spawning a pod's monitor and talking to it. Async (tokio);
//! safe in a multi-threaded runtime: the monitor is a separate program, and
//! `spawn` returns once it listens. Responses are matched to requests by
//! number; pushed events go to whoever subscribed.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use serde::de::DeserializeOwned;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{unix::OwnedWriteHalf, UnixStream},
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::{
    error::{MonitorError, Result},
    protocol::{
        ContainerStatus, CreateRequest, Event, ExecSyncRequest, ExecSyncResult, ListReply,
        PauseConfig, PidReply, Request, RequestEnvelope, Response, ServerMessage,
    },
    SOCKET_NAME,
};

/// How to start a pod's monitor.
#[derive(Debug, Clone)]
pub struct SpawnConfig {
    /// The `berth-monitor` binary.
    pub binary: PathBuf,
    /// The pod id.
    pub pod_id: String,
    /// Persistent pod state (`/var/lib/berth/pods/<id>`).
    pub state_dir: PathBuf,
    /// The pod's run directory (`/run/berth/pods/<id>`), where the socket goes.
    pub run_dir: PathBuf,
    /// The OCI runtime's state root.
    pub runtime_root: PathBuf,
}

/// Starts a monitor for the pod and connects to it. Returns once the monitor
/// listens; the monitor is then detached (not our child).
pub async fn spawn(cfg: &SpawnConfig) -> Result<MonitorClient> {
    let out = tokio::process::Command::new(&cfg.binary)
        .arg("--pod-id")
        .arg(&cfg.pod_id)
        .arg("--state-dir")
        .arg(&cfg.state_dir)
        .arg("--run-dir")
        .arg(&cfg.run_dir)
        .arg("--runtime-root")
        .arg(&cfg.runtime_root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| MonitorError::io("run", &cfg.binary, e))?;
    if !out.status.success() {
        return Err(MonitorError::Spawn(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    MonitorClient::connect(&cfg.run_dir).await
}

/// Waiters by request number; `None` once the connection has closed.
type Pending = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Response>>>>>;
type Subscriber = Arc<Mutex<Option<mpsc::UnboundedSender<Event>>>>;

/// A connection to one pod's monitor.
#[derive(Debug)]
pub struct MonitorClient {
    socket: PathBuf,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    subscriber: Subscriber,
    next_req: AtomicU64,
    reader: JoinHandle<()>,
}

impl Drop for MonitorClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl MonitorClient {
    /// Connects to the monitor listening in `run_dir`.
    pub async fn connect(run_dir: &Path) -> Result<Self> {
        let socket = run_dir.join(SOCKET_NAME);
        let stream = UnixStream::connect(&socket)
            .await
            .map_err(|e| MonitorError::io("connect", &socket, e))?;
        let (read, writer) = stream.into_split();
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let subscriber: Subscriber = Arc::default();
        let reader = tokio::spawn(read_loop(
            BufReader::new(read),
            pending.clone(),
            subscriber.clone(),
        ));
        Ok(Self {
            socket,
            writer: tokio::sync::Mutex::new(writer),
            pending,
            subscriber,
            next_req: AtomicU64::new(1),
            reader,
        })
    }

    /// Events from now on (a new subscription replaces the previous one).
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Event> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut s) = self.subscriber.lock() {
            *s = Some(tx);
        }
        rx
    }

    /// Sends `body` and waits for its response's result.
    pub async fn request(&self, body: Request) -> Result<serde_json::Value> {
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        let mut line = serde_json::to_vec(&RequestEnvelope { req, body })
            .map_err(|e| MonitorError::json("request", e))?;
        line.push(b'\n');
        let (tx, rx) = oneshot::channel();
        let registered = self
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.as_mut().map(|p| p.insert(req, tx)))
            .is_some();
        if !registered {
            return Err(MonitorError::Closed(self.socket.clone()));
        }
        let sent = self.writer.lock().await.write_all(&line).await;
        if let Err(e) = sent {
            if let Ok(Some(p)) = self.pending.lock().as_deref_mut() {
                p.remove(&req);
            }
            return Err(MonitorError::io("write to", &self.socket, e));
        }
        let resp = rx
            .await
            .map_err(|_| MonitorError::Closed(self.socket.clone()))?;
        match (resp.error, resp.result) {
            (Some(e), _) => Err(MonitorError::Remote(e)),
            (None, r) => Ok(r.unwrap_or(serde_json::Value::Null)),
        }
    }

    async fn typed<T: DeserializeOwned>(&self, body: Request) -> Result<T> {
        let v = self.request(body).await?;
        serde_json::from_value(v).map_err(|e| MonitorError::json("response", e))
    }

    /// Starts the pod's pause process; returns its pid.
    pub async fn start_pause(&self, cfg: &PauseConfig) -> Result<i32> {
        let r: PidReply = self.typed(Request::StartPause(cfg.clone())).await?;
        Ok(r.pid)
    }

    /// Kills the pod's pause process (idempotent).
    pub async fn stop_pause(&self) -> Result<()> {
        self.request(Request::StopPause).await.map(drop)
    }

    /// Creates a container; returns its init's pid.
    pub async fn create(&self, r: &CreateRequest) -> Result<i32> {
        let r: PidReply = self.typed(Request::Create(r.clone())).await?;
        Ok(r.pid)
    }

    /// Starts a created container.
    pub async fn start(&self, id: &str) -> Result<()> {
        self.request(Request::Start { id: id.into() })
            .await
            .map(drop)
    }

    /// Runs a process in a container to completion (or its timeout).
    pub async fn exec_sync(&self, r: &ExecSyncRequest) -> Result<ExecSyncResult> {
        self.typed(Request::ExecSync(r.clone())).await
    }

    /// Signals a container's init, or every process of it with `all`.
    pub async fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        self.request(Request::Kill {
            id: id.into(),
            signal,
            all,
        })
        .await
        .map(drop)
    }

    /// Reopens a container's log file.
    pub async fn reopen_log(&self, id: &str) -> Result<()> {
        self.request(Request::ReopenLog { id: id.into() })
            .await
            .map(drop)
    }

    /// Deletes a container (killing it if needed) and forgets it.
    pub async fn remove(&self, id: &str) -> Result<()> {
        self.request(Request::Remove { id: id.into() })
            .await
            .map(drop)
    }

    /// The pause pid and every container.
    pub async fn list(&self) -> Result<(Option<i32>, Vec<ContainerStatus>)> {
        let r: ListReply = self.typed(Request::List).await?;
        Ok((r.pause_pid, r.containers))
    }

    /// Kills everything of the pod, removes its cgroup and state; the monitor exits.
    pub async fn shutdown(&self) -> Result<()> {
        self.request(Request::Shutdown).await.map(drop)
    }
}

/// Routes responses to their waiters and events to the subscriber.
async fn read_loop(
    mut read: BufReader<tokio::net::unix::OwnedReadHalf>,
    pending: Pending,
    subscriber: Subscriber,
) {
    let mut line = String::new();
    loop {
        line.clear();
        match read.read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match serde_json::from_str::<ServerMessage>(&line) {
            Ok(ServerMessage::Response(r)) => {
                let tx = pending
                    .lock()
                    .ok()
                    .and_then(|mut p| p.as_mut().and_then(|p| p.remove(&r.req)));
                if let Some(tx) = tx {
                    let _ = tx.send(r);
                }
            }
            Ok(ServerMessage::Event(ev)) => {
                if let Ok(s) = subscriber.lock() {
                    if let Some(tx) = s.as_ref() {
                        let _ = tx.send(ev);
                    }
                }
            }
            Err(_) => {}
        }
    }
    // Waiters (and later requests) see the connection closed.
    if let Ok(mut p) = pending.lock() {
        *p = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// berthd holds clients in shared state and awaits them in spawned tasks.
    #[allow(dead_code)]
    fn client_and_its_futures_are_send(c: &MonitorClient, cfg: &SpawnConfig) {
        fn is_send_sync<T: Send + Sync>(_: &T) {}
        fn is_send<T: Send>(_: T) {}
        is_send_sync(c);
        is_send(spawn(cfg));
        is_send(MonitorClient::connect(Path::new("/")));
        is_send(c.list());
        is_send(c.exec_sync(&ExecSyncRequest::default()));
        is_send(c.shutdown());
    }
}
