//! The HTTP/1.1 side of the streaming server (hyper): the accept loop, the
//! routes (`GET`/`POST` on `/exec/{token}`, `/attach/{token}`,
//! `/portforward/{token}`; an unknown, used or expired token is 404), the
//! choice of SPDY or WebSocket from the upgrade headers, and the tasks that
//! serve upgraded connections. Every task is tracked so that shutdown ends
//! them all.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_proto::v1 as cri;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming as Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use tokio_tungstenite::WebSocketStream;

use super::backend::Backend;
use super::command::{self, Command};
use super::port_forward;
use super::spdy_command::{self, Wanted};
use super::tokens::TokenCache;
use super::ws_command;
use super::{Config, StoredRequest};
use crate::streaming::protocol::{
    header_list, RemoteCommandVersion, PORT_FORWARD_V1, REMOTE_COMMAND_V1, SPDY_PORT_FORWARD,
    SPDY_REMOTE_COMMAND,
};
use crate::streaming::spdy::{self, Role, Session};
use crate::streaming::websocket::port_forward::PortChannels;
use crate::streaming::websocket::tunnel::{self, Tunnel};
use crate::streaming::websocket::upgrade::{self as ws_upgrade, WsProtocol};

/// How long shutdown waits for handlers before aborting them.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// What every connection shares.
pub(crate) struct State {
    pub tokens: TokenCache<StoredRequest>,
    backend: Arc<dyn Backend>,
    config: Config,
    shutdown: watch::Receiver<bool>,
    tasks: Mutex<JoinSet<()>>,
}

impl State {
    pub fn new(backend: Arc<dyn Backend>, config: Config, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            tokens: TokenCache::with_limits(
                Arc::clone(&config.clock),
                config.token_ttl,
                config.max_in_flight,
            ),
            backend,
            config,
            shutdown,
            tasks: Mutex::new(JoinSet::new()),
        }
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        // Reap what has finished so the set stays as large as what runs.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    fn shutting_down(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// Waits a bounded time for every task, then aborts the rest.
    pub async fn stop_tasks(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let all = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_WAIT, all).await.is_err() {
            tasks.shutdown().await;
        }
    }
}

pub(crate) async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let stop = state.shutting_down();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    state.spawn(serve_connection(Arc::clone(&state), tcp));
                }
                Err(e) => {
                    // EMFILE and friends: wait rather than spin.
                    tracing::warn!(error = %e, "streaming server: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut stop => return,
        }
    }
}

async fn serve_connection(state: Arc<State>, tcp: TcpStream) {
    let st = Arc::clone(&state);
    let service = service_fn(move |req| {
        let st = Arc::clone(&st);
        async move { Ok::<_, Infallible>(route(&st, req)) }
    });
    let conn = http1::Builder::new()
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::select! {
        r = conn => if let Err(e) = r {
            tracing::debug!(error = %e, "streaming server: http connection failed");
        },
        () = state.shutting_down() => {}
    }
}

fn text(status: StatusCode, body: &str) -> Response<String> {
    let mut r = Response::new(format!("{body}\n"));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn route(state: &Arc<State>, req: Request<Body>) -> Response<String> {
    let path = req.uri().path().to_owned();
    let Some((kind, token)) = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .filter(|(k, t)| {
            matches!(*k, "exec" | "attach" | "portforward") && !t.is_empty() && !t.contains('/')
        })
    else {
        return text(StatusCode::NOT_FOUND, "404 page not found");
    };
    if req.method() != Method::GET && req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let Some(stored) = state.tokens.consume(token) else {
        return text(StatusCode::NOT_FOUND, "404 page not found");
    };
    match (kind, stored) {
        ("exec", StoredRequest::Exec(r)) => {
            let wanted = Wanted {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                tty: r.tty,
            };
            let command = Command::Exec {
                container_id: r.container_id,
                cmd: r.cmd,
            };
            remote_command(state, req, command, wanted)
        }
        ("attach", StoredRequest::Attach(r)) => {
            let wanted = Wanted {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                tty: r.tty,
            };
            let command = Command::Attach {
                container_id: r.container_id,
            };
            remote_command(state, req, command, wanted)
        }
        ("portforward", StoredRequest::PortForward(r)) => port_forward(state, req, r),
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

fn is_websocket(headers: &HeaderMap) -> bool {
    header_list(headers, "upgrade")
        .iter()
        .any(|u| u.eq_ignore_ascii_case("websocket"))
}

/// Spawns `serve` on the upgraded connection once hyper has sent the 101.
fn upgrade_then<F, Fut>(state: &Arc<State>, req: Request<Body>, serve: F)
where
    F: FnOnce(TokioIo<hyper::upgrade::Upgraded>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    state.spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(u) => serve(TokioIo::new(u)).await,
            Err(e) => tracing::debug!(error = %e, "streaming server: upgrade failed"),
        }
    });
}

/// Runs `serve` until it ends or the server shuts down (dropping it, and
/// with it the connection it owns).
async fn until_shutdown(state: Arc<State>, serve: impl Future<Output = ()>) {
    tokio::select! {
        () = serve => {}
        () = state.shutting_down() => {}
    }
}

/// Runs `serve` on a SPDY session over `io`, closing the session (GOAWAY)
/// if the server shuts down first.
async fn with_session<T, F, Fut>(state: Arc<State>, io: T, serve: F)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    F: FnOnce(Session, spdy::Incoming) -> Fut,
    Fut: Future<Output = ()>,
{
    let (session, incoming) = Session::new(io, Role::Server, spdy::Config::default());
    tokio::select! {
        () = serve(session.clone(), incoming) => {}
        () = state.shutting_down() => session.close().await,
    }
}

fn remote_command(
    state: &Arc<State>,
    req: Request<Body>,
    command: Command,
    wanted: Wanted,
) -> Response<String> {
    let backend = Arc::clone(&state.backend);
    let grace = state.config.disconnect_grace;
    if is_websocket(req.headers()) {
        let accepted = match ws_upgrade::accept(req.headers(), ws_upgrade::REMOTE_COMMAND, true) {
            Ok(a) => a,
            Err(e) => return e.response(),
        };
        let protocol = accepted.protocol;
        let st = Arc::clone(state);
        upgrade_then(state, req, move |io| {
            until_shutdown(st, async move {
                let streams = ws_command::open_streams(io, protocol, wanted).await;
                command::serve(backend, command, streams, grace).await;
            })
        });
        return accepted.response.map(|_| String::new());
    }
    let accepted =
        match spdy::upgrade::accept(req.headers(), SPDY_REMOTE_COMMAND, Some(REMOTE_COMMAND_V1)) {
            Ok(a) => a,
            Err(e) => return e.response(),
        };
    let version =
        RemoteCommandVersion::from_name(accepted.protocol).unwrap_or(RemoteCommandVersion::V1);
    let timeout = state.config.stream_creation_timeout;
    let st = Arc::clone(state);
    upgrade_then(state, req, move |io| {
        with_session(st, io, move |session, incoming| async move {
            match spdy_command::accept_streams(session.clone(), incoming, version, wanted, timeout)
                .await
            {
                Ok(streams) => command::serve(backend, command, streams, grace).await,
                Err(e) => {
                    tracing::debug!(error = %e, "spdy remote command: no streams");
                    session.close().await;
                }
            }
        })
    });
    accepted.response.map(|_| String::new())
}

/// The ports of a WebSocket port-forward: the CRI request's, else the URL's.
fn ws_ports(req: &Request<Body>, pf: &cri::PortForwardRequest) -> Result<PortChannels, String> {
    if pf.port.is_empty() {
        return PortChannels::from_query(req.uri().query().unwrap_or(""))
            .map_err(|e| e.to_string());
    }
    let ports = pf
        .port
        .iter()
        .map(|p| u16::try_from(*p).map_err(|_| format!("invalid port {p}")))
        .collect::<Result<Vec<_>, _>>()?;
    PortChannels::new(ports).map_err(|e| e.to_string())
}

fn port_forward(
    state: &Arc<State>,
    req: Request<Body>,
    pf: cri::PortForwardRequest,
) -> Response<String> {
    let backend = Arc::clone(&state.backend);
    let timeout = state.config.stream_creation_timeout;
    let pod = pf.pod_sandbox_id.clone();
    let st = Arc::clone(state);
    if is_websocket(req.headers()) {
        let accepted =
            match ws_upgrade::accept(req.headers(), ws_upgrade::PORT_FORWARD_WITH_TUNNEL, true) {
                Ok(a) => a,
                Err(e) => return e.response(),
            };
        let protocol: WsProtocol = accepted.protocol;
        if protocol.name == tunnel::SPDY_PORT_FORWARD {
            upgrade_then(state, req, move |io| async move {
                let ws = WebSocketStream::from_raw_socket(io, WsRole::Server, None).await;
                with_session(st, Tunnel::new(ws), move |session, incoming| {
                    port_forward::serve_spdy(backend, pod, session, incoming, timeout)
                })
                .await;
            });
        } else {
            let ports = match ws_ports(&req, &pf) {
                Ok(p) => p,
                Err(e) => return text(StatusCode::BAD_REQUEST, &e),
            };
            upgrade_then(state, req, move |io| {
                until_shutdown(
                    st,
                    port_forward::serve_ws(backend, pod, io, protocol, ports),
                )
            });
        }
        return accepted.response.map(|_| String::new());
    }
    let accepted =
        match spdy::upgrade::accept(req.headers(), SPDY_PORT_FORWARD, Some(PORT_FORWARD_V1)) {
            Ok(a) => a,
            Err(e) => return e.response(),
        };
    upgrade_then(state, req, move |io| {
        with_session(st, io, move |session, incoming| {
            port_forward::serve_spdy(backend, pod, session, incoming, timeout)
        })
    });
    accepted.response.map(|_| String::new())
}
