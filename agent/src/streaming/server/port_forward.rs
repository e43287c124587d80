//! Port-forward: each forwarded connection is a data stream (bytes both
//! ways) and an error stream (the server reports a failed dial there), the
//! backend dials the port in the pod's network namespace, and [`forward`]
//! copies until the pod side ends, the client goes away, or either fails.
//!
//! * SPDY: the client opens a `data` and an `error` stream per connection,
//!   with `port` and `requestid` headers (pairs without a request id are
//!   matched from the stream ids, as kubelet does for old clients); any
//!   number of connections and ports share one upgrade. A pair that is not
//!   complete within the creation timeout is dropped.
//! * WebSocket: the ports are fixed at the upgrade, one connection each, on
//!   channels `2i`/`2i+1`, each opened with the port number.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::backend::{Backend, BoxRead, BoxWrite};
use crate::streaming::spdy::stream_kind::port_stream;
use crate::streaming::spdy::{Headers, Incoming, RstStatus, Session, Stream};
use crate::streaming::websocket::mux::Mux;
use crate::streaming::websocket::port_forward::{port_prefix, ChannelKind, PortChannels};
use crate::streaming::websocket::upgrade::WsProtocol;
use crate::streaming::websocket::ChannelConn;

/// Copies between the client's data stream and the backend's connection to
/// `port`; a failed dial is written on `error_out`.
pub(crate) async fn forward(
    backend: Arc<dyn Backend>,
    pod: String,
    port: u16,
    mut data_in: BoxRead,
    mut data_out: BoxWrite,
    mut error_out: BoxWrite,
    mut disconnected: BoxFuture<'static, ()>,
) {
    let conn = tokio::select! {
        c = backend.port_forward(pod.clone(), port) => c,
        () = &mut disconnected => return,
    };
    let conn = match conn {
        Ok(conn) => conn,
        Err(e) => {
            let msg = format!("error forwarding port {port} to pod {pod}: {e}");
            tracing::debug!(%msg, "port-forward dial failed");
            let _ = error_out.write_all(msg.as_bytes()).await;
            let _ = error_out.shutdown().await;
            let _ = data_out.shutdown().await;
            return;
        }
    };
    let (mut pod_rd, mut pod_wr) = tokio::io::split(conn);
    // Client to pod: at the client's end-of-file, half-close the pod side
    // and keep reading from it.
    let up = async {
        match tokio::io::copy(&mut data_in, &mut pod_wr).await {
            Ok(_) => {
                let _ = pod_wr.shutdown().await;
                std::future::pending::<io::Result<u64>>().await
            }
            Err(e) => Err(e),
        }
    };
    // Pod to client: the pod's end-of-file ends the connection.
    let down = async {
        let r = tokio::io::copy(&mut pod_rd, &mut data_out).await;
        let _ = data_out.shutdown().await;
        r
    };
    let result = tokio::select! {
        r = down => r,
        r = up => r,
        () = &mut disconnected => Ok(0),
    };
    if let Err(e) = result {
        tracing::debug!(port, error = %e, "port-forward connection ended with an error");
    }
    let _ = error_out.shutdown().await;
}

/// A forwarded connection's streams as they arrive.
struct Pair {
    data: Option<Stream>,
    error: Option<Stream>,
    port: u16,
    deadline: Instant,
}

/// Serves port-forward streams on a SPDY session until it ends.
pub(crate) async fn serve_spdy(
    backend: Arc<dyn Backend>,
    pod: String,
    session: Session,
    mut incoming: Incoming,
    creation_timeout: Duration,
) {
    let mut pending: HashMap<String, Pair> = HashMap::new();
    let mut forwards = JoinSet::new();
    loop {
        let next_deadline = pending.values().map(|p| p.deadline).min();
        let expire = async {
            match next_deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            s = incoming.accept() => {
                let Some(stream) = s else { break };
                let kind = match port_stream(stream.headers()) {
                    Ok(k) => k,
                    Err(e) => {
                        tracing::debug!(error = %e, "port-forward: refusing a stream");
                        stream.refuse(RstStatus::RefusedStream);
                        continue;
                    }
                };
                let request_id = if kind.request_id.is_empty() {
                    // Old clients: error stream n, data stream n + 2.
                    let id = if kind.error { stream.id() } else { stream.id().saturating_sub(2) };
                    id.to_string()
                } else {
                    kind.request_id.clone()
                };
                let pair = pending.entry(request_id.clone()).or_insert_with(|| Pair {
                    data: None,
                    error: None,
                    port: kind.port,
                    deadline: Instant::now() + creation_timeout,
                });
                let slot = if kind.error { &mut pair.error } else { &mut pair.data };
                if slot.is_some() || pair.port != kind.port {
                    tracing::debug!(%request_id, "port-forward: duplicate or mismatched stream refused");
                    stream.refuse(RstStatus::ProtocolError);
                    continue;
                }
                *slot = Some(stream.reply(Headers::new()));
                if pair.data.is_some() && pair.error.is_some() {
                    if let Some(Pair { data: Some(data), error: Some(error), port, .. }) =
                        pending.remove(&request_id)
                    {
                        let (data_in, data_out) = data.split();
                        // Nothing is read from the error stream.
                        let (_, error_out) = error.split();
                        let gone = session.clone();
                        forwards.spawn(forward(
                            Arc::clone(&backend),
                            pod.clone(),
                            port,
                            Box::new(data_in),
                            Box::new(data_out),
                            Box::new(error_out),
                            Box::pin(async move { gone.closed().await }),
                        ));
                    }
                }
            }
            () = expire => {
                let now = Instant::now();
                let expired: Vec<String> = pending
                    .iter()
                    .filter(|(_, p)| p.deadline <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in expired {
                    if let Some(pair) = pending.remove(&id) {
                        tracing::debug!(request_id = %id, "port-forward: timed out waiting for streams");
                        if let Some(error) = pair.error {
                            let (_, mut w) = error.split();
                            let msg = format!("timed out waiting for streams of request {id}");
                            let _ = w.write_all(msg.as_bytes()).await;
                        }
                    }
                }
            }
            Some(_) = forwards.join_next(), if !forwards.is_empty() => {}
        }
    }
    // No new streams (the client left or sent GOAWAY): let the open
    // connections finish, then end the session.
    drop(pending);
    while forwards.join_next().await.is_some() {}
    session.close().await;
}

/// Serves a WebSocket port-forward for `ports` until every connection ends.
pub(crate) async fn serve_ws<S>(
    backend: Arc<dyn Backend>,
    pod: String,
    io: S,
    protocol: WsProtocol,
    ports: PortChannels,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = ChannelConn::new(io, protocol, Role::Server).await;
    let data_channels: Vec<u8> = (0..ports.ports().len())
        .filter_map(|i| ports.channel(i, ChannelKind::Data))
        .collect();
    let (mut mux, mut readers) = Mux::start(conn, &data_channels);
    let mut forwards = JoinSet::new();
    for (i, port) in ports.ports().iter().enumerate() {
        let (Some(data_ch), Some(error_ch)) = (
            ports.channel(i, ChannelKind::Data),
            ports.channel(i, ChannelKind::Error),
        ) else {
            continue;
        };
        mux.send(data_ch, &port_prefix(*port)).await;
        mux.send(error_ch, &port_prefix(*port)).await;
        let Some(data_in) = readers.remove(&data_ch) else {
            continue;
        };
        let data_out = mux.output(data_ch);
        let error_out = mux.output(error_ch);
        forwards.spawn(forward(
            Arc::clone(&backend),
            pod.clone(),
            *port,
            Box::new(data_in),
            Box::new(data_out),
            Box::new(error_out),
            Box::pin(mux.disconnected()),
        ));
    }
    while forwards.join_next().await.is_some() {}
    mux.close().await;
}
