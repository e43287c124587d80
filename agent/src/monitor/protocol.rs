//! The monitor's wire protocol: one JSON object per line over the unix stream
//! socket `<run-dir>/monitor.sock`.
//!
//! A request is `{"req": N, "op": "<name>", ...fields}`; its response is
//! `{"req": N, "result": {...}}` or `{"req": N, "error": "message"}`. Events
//! are pushed to every connected client as `{"event": "<name>", ...}`. Several
//! clients may be connected at once; each gets every event.
//!
//! Streaming sessions (`exec_stream`, `attach`) take a connection of their
//! own: the response line carries the session's fds (`SCM_RIGHTS`, in the
//! order its `fds` field names them), the connection then gets no events, and
//! the monitor ends it with one [`SessionEnd`] line (the exec process was
//! reaped, the container exited, or the monitor dropped the client). Closing
//! the connection ends an attach; an exec process keeps running.

use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};

/// The pod's pid namespace mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PidMode {
    /// One pid namespace for the pod, the pause process is its pid 1.
    #[default]
    Pod,
    /// Each container has its own pid namespace.
    Container,
    /// The host's pid namespace.
    Host,
}

/// `start_pause`: the pod's pause process and namespaces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PauseConfig {
    /// The pod's hostname (UTS namespace).
    #[serde(default)]
    pub hostname: String,
    /// The pinned network namespace to join; `None` is the host network.
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// Use the host's IPC namespace.
    #[serde(default)]
    pub ipc_host: bool,
    /// Use the host's UTS namespace.
    #[serde(default)]
    pub uts_host: bool,
    /// The pid namespace mode.
    #[serde(default)]
    pub pid: PidMode,
    /// Sysctls: `net.*` are set in the netns, `kernel.shm*`, `kernel.msg*`,
    /// `kernel.sem` in the IPC namespace.
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    /// The pod cgroup (created; the pause process goes in its `pause` leaf).
    pub cgroup_path: String,
}

/// `create`: a container from a bundle, with its stdio held by the monitor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateRequest {
    /// Container id (unique on the node).
    pub id: String,
    /// OCI bundle directory.
    pub bundle: PathBuf,
    /// Where the CRI log goes.
    pub log_path: PathBuf,
    /// The process has a terminal (its output is logged as stdout).
    #[serde(default)]
    pub tty: bool,
    /// Keep a stdin pipe open for the container.
    #[serde(default)]
    pub stdin: bool,
    /// Close stdin after the first attach ends.
    #[serde(default)]
    pub stdin_once: bool,
}

/// `exec_sync`: a process run in a container to completion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecSyncRequest {
    /// Container id.
    pub id: String,
    /// The command and its arguments.
    pub args: Vec<String>,
    /// Extra environment (`K=V`), added to the container process's.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// Kill it after this many seconds; 0 is no timeout.
    #[serde(default)]
    pub timeout_secs: u64,
}

/// The result of `exec_sync`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecSyncResult {
    /// Exit code (128 + signal when killed by a signal).
    pub exit_code: i32,
    /// Its stdout (base64 on the wire).
    #[serde(with = "base64_bytes")]
    pub stdout: Vec<u8>,
    /// Its stderr (base64 on the wire).
    #[serde(with = "base64_bytes")]
    pub stderr: Vec<u8>,
    /// It was killed at the timeout.
    #[serde(default)]
    pub timed_out: bool,
}

/// `exec_stream`: a process run in a container with its stdio handed to the
/// caller (a pty, or pipes for the streams asked for; the others are
/// `/dev/null`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecStreamRequest {
    /// Container id.
    pub id: String,
    /// The command and its arguments.
    pub args: Vec<String>,
    /// Extra environment (`K=V`), added to the container process's.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// A new pty is its controlling terminal and stdio (the caller gets the
    /// master); `stdin`/`stdout`/`stderr` are then ignored.
    #[serde(default)]
    pub tty: bool,
    /// A stdin pipe.
    #[serde(default)]
    pub stdin: bool,
    /// A stdout pipe.
    #[serde(default)]
    pub stdout: bool,
    /// A stderr pipe.
    #[serde(default)]
    pub stderr: bool,
}

/// `attach`: the caller gets pipes that carry a running container's stdio.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttachRequest {
    /// Container id.
    pub id: String,
    /// Forward to the container's stdin (if it was created with one).
    #[serde(default)]
    pub stdin: bool,
    /// Receive its stdout (a tty container's whole output).
    #[serde(default)]
    pub stdout: bool,
    /// Receive its stderr (none for a tty container).
    #[serde(default)]
    pub stderr: bool,
}

/// What one fd passed with a session reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionFd {
    /// Write end of a pipe to the process's stdin.
    Stdin,
    /// Read end of a pipe from its stdout.
    Stdout,
    /// Read end of a pipe from its stderr.
    Stderr,
    /// An exec's pty master (read, write, resize).
    Pty,
    /// A dup of a tty container's pty master, for `TIOCSWINSZ` only.
    Resize,
}

/// Reply of `exec_stream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecStreamReply {
    /// The process's host pid.
    pub pid: i32,
    /// The passed fds, in order.
    pub fds: Vec<SessionFd>,
}

/// Reply of `attach`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachReply {
    /// The container has a terminal (its output is all on stdout).
    pub tty: bool,
    /// The passed fds, in order.
    pub fds: Vec<SessionFd>,
}

/// The last line of a session connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionEnd {
    /// The exec process's or the container's exit code (128 + signal when
    /// killed by a signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why the monitor ended the session otherwise (an attach client too slow
    /// to read, the container removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A container's lifecycle state as the monitor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Created, waiting for `start`.
    Created,
    /// Started, its init runs.
    Running,
    /// Its init has exited.
    Exited,
}

impl ContainerState {
    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Exited => "exited",
        }
    }
}

/// One container in a `list` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerStatus {
    /// Container id.
    pub id: String,
    /// Host pid of its init.
    pub pid: i32,
    /// Its state.
    pub state: ContainerState,
    /// Exit code, once exited (128 + signal when killed by a signal).
    pub exit_code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 start time.
    pub started_at: Option<String>,
    /// RFC 3339 exit time.
    pub finished_at: Option<String>,
    /// The OOM killer killed a process of the container.
    pub oom_killed: bool,
    /// The CRI log path.
    pub log_path: PathBuf,
}

/// A request, tagged by `op`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the pod's pause process. Reply: [`PidReply`].
    StartPause(PauseConfig),
    /// Kill the pause process (the pod's containers are not touched; the pod
    /// cgroup stays until `shutdown`). Reply: `{}`.
    StopPause,
    /// Create a container. Reply: [`PidReply`].
    Create(CreateRequest),
    /// Start a created container. Reply: `{}`.
    Start {
        /// Container id.
        id: String,
    },
    /// Run a process in a container to completion. Reply: [`ExecSyncResult`].
    ExecSync(ExecSyncRequest),
    /// Run a process in a container with its stdio passed to the caller.
    /// Reply: [`ExecStreamReply`] with fds; the session ends with its exit code.
    ExecStream(ExecStreamRequest),
    /// Attach to a running container's stdio. Reply: [`AttachReply`] with fds;
    /// the session ends when the container exits or the caller closes it.
    Attach(AttachRequest),
    /// Signal a container's init (or, with `all`, every process of it). Reply: `{}`.
    Kill {
        /// Container id.
        id: String,
        /// Signal number.
        signal: i32,
        /// Every process of the container's cgroup.
        #[serde(default)]
        all: bool,
    },
    /// Reopen a container's log file (after the caller renamed it). Reply: `{}`.
    ReopenLog {
        /// Container id.
        id: String,
    },
    /// Delete a container (killing it if it still runs) and forget it. Reply: `{}`.
    Remove {
        /// Container id.
        id: String,
    },
    /// Every container. Reply: [`ListReply`].
    List,
    /// Kill everything, remove the pod's cgroup and state, exit. Reply: `{}`.
    Shutdown,
}

/// A request with its number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestEnvelope {
    /// Echoed in the response.
    pub req: u64,
    /// The request.
    #[serde(flatten)]
    pub body: Request,
}

/// A response to request `req`: `result` on success, `error` on failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request's number.
    pub req: u64,
    /// The result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// The error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reply with a pid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PidReply {
    /// Host pid.
    pub pid: i32,
}

/// Reply of `list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListReply {
    /// The pause process's pid, once started.
    pub pause_pid: Option<i32>,
    /// Every container.
    pub containers: Vec<ContainerStatus>,
}

/// An event pushed to every client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A container was started.
    Started {
        /// Container id.
        id: String,
        /// Its init's pid.
        pid: i32,
        /// RFC 3339 start time.
        started_at: String,
    },
    /// A container's init exited (its `exit.json` is already on disk).
    Exited {
        /// Container id.
        id: String,
        /// Its init's pid.
        pid: i32,
        /// Exit code (128 + signal when killed by a signal).
        exit_code: i32,
        /// The signal that killed it.
        signal: Option<i32>,
        /// RFC 3339 exit time.
        finished_at: String,
        /// The OOM killer killed a process of the container.
        oom_killed: bool,
    },
    /// The pod's pause process exited.
    PauseExited {
        /// Its pid.
        pid: i32,
        /// Exit code (128 + signal when killed by a signal).
        exit_code: i32,
        /// The signal that killed it.
        signal: Option<i32>,
    },
}

/// Anything the monitor sends: an event or a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerMessage {
    /// A pushed event.
    Event(Event),
    /// A response.
    Response(Response),
}

/// Serde helpers for bytes as standard base64 strings.
mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_flat_objects_tagged_by_op() {
        let r = RequestEnvelope {
            req: 7,
            body: Request::Kill {
                id: "c1".into(),
                signal: 9,
                all: true,
            },
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"req":7,"op":"kill","id":"c1","signal":9,"all":true}"#
        );
        let back: RequestEnvelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        let list: RequestEnvelope = serde_json::from_str(r#"{"req":1,"op":"list"}"#).unwrap();
        assert_eq!(list.body, Request::List);
    }

    #[test]
    fn events_and_responses_are_told_apart() {
        let ev = ServerMessage::Event(Event::Started {
            id: "a".into(),
            pid: 3,
            started_at: "t".into(),
        });
        let text = serde_json::to_string(&ev).unwrap();
        assert!(text.starts_with(r#"{"event":"started""#), "{text}");
        assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), ev);
        let resp: ServerMessage = serde_json::from_str(r#"{"req":4,"error":"no"}"#).unwrap();
        assert_eq!(
            resp,
            ServerMessage::Response(Response {
                req: 4,
                result: None,
                error: Some("no".into())
            })
        );
    }

    #[test]
    fn session_messages() {
        let r: RequestEnvelope =
            serde_json::from_str(r#"{"req":2,"op":"attach","id":"c","stdin":true}"#).unwrap();
        assert_eq!(
            r.body,
            Request::Attach(AttachRequest {
                id: "c".into(),
                stdin: true,
                ..Default::default()
            })
        );
        let reply = AttachReply {
            tty: true,
            fds: vec![SessionFd::Stdin, SessionFd::Resize],
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"tty":true,"fds":["stdin","resize"]}"#
        );
        let end = SessionEnd {
            exit_code: Some(3),
            error: None,
        };
        assert_eq!(serde_json::to_string(&end).unwrap(), r#"{"exit_code":3}"#);
    }

    #[test]
    fn exec_output_is_base64() {
        let r = ExecSyncResult {
            exit_code: 1,
            stdout: b"hi\n".to_vec(),
            stderr: vec![0, 255],
            timed_out: false,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["stdout"], "aGkK");
        assert_eq!(serde_json::from_value::<ExecSyncResult>(v).unwrap(), r);
    }
}
