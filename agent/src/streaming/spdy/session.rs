//! An async SPDY/3.1 session over any `AsyncRead + AsyncWrite` transport.
//!
//! One task reads and dispatches frames, one writes the queued frames (it owns
//! the compression context, so header blocks are compressed in send order).
//! The streams share one mutex-guarded state with them; stream halves are
//! `AsyncRead`/`AsyncWrite` and park on wakers while the window or the queue
//! is full.
//!
//! * Server role: [`Incoming::accept`] yields the streams the client opens
//!   (SYN_STREAM); the application answers [`IncomingStream::reply`]
//!   (SYN_REPLY) or refuses (RST_STREAM). Client role: [`Session::open_stream`].
//! * Half-close: shutting a writer down sends an empty DATA with FLAG_FIN; a
//!   peer's FIN is end-of-file for the reader. A reset is an error on both.
//! * PING from the peer is echoed; [`Session::ping`] waits for our own echo.
//! * GOAWAY: after receiving one no stream is opened; [`Session::close`] sends
//!   one, flushes, and shuts the transport down. Protocol errors send GOAWAY
//!   PROTOCOL_ERROR and end the session.
//! * Flow control: every stream's send window starts at the peer's
//!   SETTINGS_INITIAL_WINDOW_SIZE (64 KiB by default) and its receive window
//!   at ours; a stream's window is re-granted as the application reads. The
//!   session receive window is re-granted as data arrives (each stream's own
//!   window already bounds what can pile up unread).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::AbortHandle;

use super::codec::{
    CodecError, FrameDecoder, FrameEncoder, DEFAULT_MAX_FRAME_LEN, DEFAULT_MAX_HEADER_BLOCK,
};
use super::flow::{RecvWindow, SendWindow, DEFAULT_INITIAL_WINDOW, MAX_WINDOW};
use super::frame::{setting, Frame, GoAwayStatus, RstStatus, Setting, MAX_ID};
use super::header_block::Headers;

/// Which end of the connection this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts client streams (odd ids).
    Server,
    /// Opens streams (odd ids).
    Client,
}

/// Session limits and windows.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our receive window per stream, advertised with SETTINGS when not 64 KiB.
    pub initial_window: u32,
    /// Our session receive window (64 KiB, or more through a WINDOW_UPDATE
    /// on stream 0 at start).
    pub session_window: u32,
    /// Peer-opened streams open at once; more are refused.
    pub max_concurrent_streams: usize,
    /// Cap on a received frame's payload.
    pub max_frame_len: usize,
    /// Cap on a decompressed header block.
    pub max_header_block: usize,
    /// Largest DATA payload this side sends.
    pub max_data_frame: usize,
    /// Bytes of DATA queued for the transport before writers wait.
    pub max_queued_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            initial_window: DEFAULT_INITIAL_WINDOW,
            session_window: DEFAULT_INITIAL_WINDOW,
            // 50 forwarded connections take 100 streams; each buffers at
            // most one 64 KiB window unread, so this bounds memory too.
            max_concurrent_streams: 256,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_header_block: DEFAULT_MAX_HEADER_BLOCK,
            max_data_frame: 16 << 10,
            max_queued_bytes: 256 << 10,
        }
    }
}

/// Errors of session operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// the session has ended
    #[error("spdy session closed: {0}")]
    Closed(String),
    /// the peer sent GOAWAY, or we did
    #[error("spdy session is going away")]
    GoingAway,
    /// the stream was reset
    #[error("spdy stream {stream_id} reset ({status:?})")]
    Reset { stream_id: u32, status: RstStatus },
    /// every stream id has been used
    #[error("spdy stream ids exhausted")]
    IdsExhausted,
}

impl From<SessionError> for io::Error {
    fn from(e: SessionError) -> Self {
        let kind = match e {
            SessionError::Reset { .. } => io::ErrorKind::ConnectionReset,
            _ => io::ErrorKind::BrokenPipe,
        };
        io::Error::new(kind, e)
    }
}

/// One stream's state.
struct Slot {
    send: SendWindow,
    recv: RecvWindow,
    buf: VecDeque<Bytes>,
    remote_fin: bool,
    local_fin: bool,
    reset: Option<RstStatus>,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    reader_alive: bool,
    writer_alive: bool,
    peer_initiated: bool,
    /// Client side: the opener waiting for SYN_REPLY.
    reply: Option<oneshot::Sender<Result<Headers, SessionError>>>,
}

impl Slot {
    fn new(send: u32, recv: u32, peer_initiated: bool) -> Self {
        Self {
            send: SendWindow::new(send),
            recv: RecvWindow::new(recv),
            buf: VecDeque::new(),
            remote_fin: false,
            local_fin: false,
            reset: None,
            read_waker: None,
            write_waker: None,
            reader_alive: true,
            writer_alive: true,
            peer_initiated,
            reply: None,
        }
    }

    fn wake(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }

    fn finished(&self) -> bool {
        !self.reader_alive
            && !self.writer_alive
            && (self.reset.is_some() || (self.local_fin && self.remote_fin))
    }
}

struct State {
    role: Role,
    config: Config,
    streams: HashMap<u32, Slot>,
    out: VecDeque<Frame>,
    queued_bytes: usize,
    send_session: SendWindow,
    recv_session: RecvWindow,
    peer_initial_window: u32,
    next_local_id: u32,
    last_peer_id: u32,
    peer_open: usize,
    next_ping: u32,
    pings: HashMap<u32, oneshot::Sender<()>>,
    goaway_sent: bool,
    goaway_received: bool,
    shutdown: bool,
    closed: Option<String>,
    incoming: Option<mpsc::UnboundedSender<IncomingStream>>,
}

struct Shared {
    state: Mutex<State>,
    writer_wake: Notify,
    closed_tx: watch::Sender<bool>,
    reader: Mutex<Option<AbortHandle>>,
}

/// A fatal protocol error: the session sends GOAWAY and ends.
struct Fatal(String);

/// Frames queued for the transport beyond which a peer that keeps sending
/// (pings, frames that need a reset) without reading is cut off.
const MAX_QUEUED_FRAMES: usize = 4096;

/// How long the last frames (GOAWAY) may take to write after the end.
const CLOSING_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated
        // in a way that matters more than losing the session; carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn kick(&self) {
        self.writer_wake.notify_one();
    }
}

impl State {
    fn queue(&mut self, frame: Frame) {
        if let Frame::Data { data, .. } = &frame {
            self.queued_bytes += data.len();
        }
        self.out.push_back(frame);
    }

    fn rst(&mut self, stream_id: u32, status: RstStatus) {
        self.queue(Frame::RstStream { stream_id, status });
    }

    fn is_peer_id(&self, id: u32) -> bool {
        // Clients use odd ids, servers even ones.
        let odd = id % 2 == 1;
        match self.role {
            Role::Server => odd,
            Role::Client => !odd,
        }
    }

    fn wake_writers(&mut self) {
        for slot in self.streams.values_mut() {
            if let Some(w) = slot.write_waker.take() {
                w.wake();
            }
        }
    }

    /// Drops a stream whose halves are gone and that is closed both ways.
    fn reap(&mut self, id: u32) {
        if self.streams.get(&id).is_some_and(Slot::finished) {
            if let Some(slot) = self.streams.remove(&id) {
                if slot.peer_initiated {
                    self.peer_open = self.peer_open.saturating_sub(1);
                }
            }
        }
    }

    /// Resets a stream from this side.
    fn reset_stream(&mut self, id: u32, status: RstStatus) {
        if let Some(slot) = self.streams.get_mut(&id) {
            if slot.reset.is_none() {
                slot.reset = Some(status);
                slot.buf.clear();
                if let Some(tx) = slot.reply.take() {
                    let _ = tx.send(Err(SessionError::Reset {
                        stream_id: id,
                        status,
                    }));
                }
                slot.wake();
                self.rst(id, status);
            }
        }
        self.reap(id);
    }

    fn go_away(&mut self, status: GoAwayStatus) {
        if !self.goaway_sent {
            self.goaway_sent = true;
            let last = self.last_peer_id;
            self.queue(Frame::GoAway {
                last_good_stream_id: last,
                status,
            });
        }
        self.incoming = None;
    }

    /// Ends the session: every waiter fails, the writer stops.
    fn close(&mut self, reason: String) {
        if self.closed.is_some() {
            return;
        }
        self.closed = Some(reason.clone());
        self.incoming = None;
        self.pings.clear();
        for slot in self.streams.values_mut() {
            if let Some(tx) = slot.reply.take() {
                let _ = tx.send(Err(SessionError::Closed(reason.clone())));
            }
            slot.wake();
        }
    }

    fn session_error(&self) -> Option<SessionError> {
        self.closed.clone().map(SessionError::Closed)
    }

    fn handle(&mut self, frame: Frame, shared: &Arc<Shared>) -> Result<(), Fatal> {
        match frame {
            Frame::SynStream {
                stream_id,
                fin,
                unidirectional,
                headers,
                ..
            } => self.on_syn_stream(stream_id, fin, unidirectional, headers, shared),
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            } => {
                match self.streams.get_mut(&stream_id) {
                    Some(slot) if slot.reply.is_some() => {
                        if let Some(tx) = slot.reply.take() {
                            let _ = tx.send(Ok(headers));
                        }
                        slot.remote_fin |= fin;
                        slot.wake();
                    }
                    Some(_) => self.reset_stream(stream_id, RstStatus::StreamInUse),
                    None => self.rst(stream_id, RstStatus::InvalidStream),
                }
                Ok(())
            }
            Frame::Headers { stream_id, fin, .. } => {
                match self.streams.get_mut(&stream_id) {
                    Some(slot) => {
                        slot.remote_fin |= fin;
                        slot.wake();
                        self.reap(stream_id);
                    }
                    None => self.rst(stream_id, RstStatus::InvalidStream),
                }
                Ok(())
            }
            Frame::Data {
                stream_id,
                fin,
                data,
            } => self.on_data(stream_id, fin, data),
            Frame::RstStream { stream_id, status } => {
                if let Some(slot) = self.streams.get_mut(&stream_id) {
                    slot.reset.get_or_insert(status);
                    slot.buf.clear();
                    if let Some(tx) = slot.reply.take() {
                        let _ = tx.send(Err(SessionError::Reset { stream_id, status }));
                    }
                    slot.wake();
                    self.reap(stream_id);
                }
                Ok(())
            }
            Frame::Settings { entries, .. } => self.on_settings(&entries),
            Frame::Ping { id } => {
                if self.is_peer_id(id) {
                    self.queue(Frame::Ping { id });
                } else if let Some(tx) = self.pings.remove(&id) {
                    let _ = tx.send(());
                }
                Ok(())
            }
            Frame::GoAway {
                last_good_stream_id,
                ..
            } => {
                self.goaway_received = true;
                self.incoming = None;
                // Streams we opened past the peer's last good id were not
                // processed: they fail as refused.
                let refused: Vec<u32> = self
                    .streams
                    .iter()
                    .filter(|(id, s)| !s.peer_initiated && **id > last_good_stream_id)
                    .map(|(id, _)| *id)
                    .collect();
                for id in refused {
                    if let Some(slot) = self.streams.get_mut(&id) {
                        slot.reset.get_or_insert(RstStatus::RefusedStream);
                        if let Some(tx) = slot.reply.take() {
                            let _ = tx.send(Err(SessionError::GoingAway));
                        }
                        slot.wake();
                    }
                    self.reap(id);
                }
                Ok(())
            }
            Frame::WindowUpdate {
                stream_id: 0,
                delta,
            } => {
                self.send_session
                    .grant(delta)
                    .map_err(|e| Fatal(format!("session window: {e}")))?;
                self.wake_writers();
                Ok(())
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let overflow = match self.streams.get_mut(&stream_id) {
                    Some(slot) => {
                        let r = slot.send.grant(delta);
                        if let Some(w) = slot.write_waker.take() {
                            w.wake();
                        }
                        r.is_err()
                    }
                    // Updates may race with a close: ignore them.
                    None => false,
                };
                if overflow {
                    self.reset_stream(stream_id, RstStatus::FlowControlError);
                }
                Ok(())
            }
            Frame::Unknown { .. } => Ok(()),
        }
    }

    fn on_syn_stream(
        &mut self,
        stream_id: u32,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
        shared: &Arc<Shared>,
    ) -> Result<(), Fatal> {
        if !self.is_peer_id(stream_id) {
            return Err(Fatal(format!(
                "SYN_STREAM with our own stream id {stream_id}"
            )));
        }
        if stream_id <= self.last_peer_id {
            return Err(Fatal(format!(
                "SYN_STREAM id {stream_id} not above the last one ({})",
                self.last_peer_id
            )));
        }
        self.last_peer_id = stream_id;
        if self.goaway_sent || self.closed.is_some() {
            // After GOAWAY new streams are ignored.
            return Ok(());
        }
        if self.role == Role::Client || self.peer_open >= self.config.max_concurrent_streams {
            // No server push here; and the concurrency cap.
            self.rst(stream_id, RstStatus::RefusedStream);
            return Ok(());
        }
        let Some(tx) = self.incoming.clone() else {
            self.rst(stream_id, RstStatus::RefusedStream);
            return Ok(());
        };
        let mut slot = Slot::new(self.peer_initial_window, self.config.initial_window, true);
        slot.remote_fin = fin;
        slot.local_fin = unidirectional;
        self.streams.insert(stream_id, slot);
        self.peer_open += 1;
        let incoming = IncomingStream {
            shared: Arc::clone(shared),
            id: stream_id,
            headers,
            answered: false,
        };
        if let Err(mpsc::error::SendError(mut refused)) = tx.send(incoming) {
            // Nobody accepts streams any more. Mark it answered so its drop
            // does not take the lock we hold; refuse it here.
            refused.answered = true;
            drop(refused);
            if let Some(slot) = self.streams.get_mut(&stream_id) {
                slot.reader_alive = false;
                slot.writer_alive = false;
            }
            self.reset_stream(stream_id, RstStatus::RefusedStream);
        }
        Ok(())
    }

    fn on_data(&mut self, stream_id: u32, fin: bool, data: Bytes) -> Result<(), Fatal> {
        let len = data.len();
        self.recv_session
            .receive(len)
            .map_err(|e| Fatal(format!("session window: {e}")))?;
        if let Some(delta) = self.recv_session.consume(len) {
            self.queue(Frame::WindowUpdate {
                stream_id: 0,
                delta,
            });
        }
        let Some(slot) = self.streams.get_mut(&stream_id) else {
            self.rst(stream_id, RstStatus::InvalidStream);
            return Ok(());
        };
        if slot.reset.is_some() {
            return Ok(());
        }
        if slot.remote_fin {
            self.reset_stream(stream_id, RstStatus::StreamAlreadyClosed);
            return Ok(());
        }
        if slot.recv.receive(len).is_err() {
            self.reset_stream(stream_id, RstStatus::FlowControlError);
            return Ok(());
        }
        let mut update = None;
        if slot.reader_alive {
            if len > 0 {
                slot.buf.push_back(data);
            }
        } else if !fin {
            // Nobody reads: drop the bytes and keep the peer's window open.
            update = slot.recv.consume(len);
        }
        slot.remote_fin = fin;
        if let Some(w) = slot.read_waker.take() {
            w.wake();
        }
        if let Some(delta) = update {
            self.queue(Frame::WindowUpdate { stream_id, delta });
        }
        self.reap(stream_id);
        Ok(())
    }

    fn on_settings(&mut self, entries: &[Setting]) -> Result<(), Fatal> {
        for e in entries {
            if e.id == setting::INITIAL_WINDOW_SIZE {
                if i64::from(e.value) > MAX_WINDOW {
                    return Err(Fatal(format!("initial window {} too large", e.value)));
                }
                let old = self.peer_initial_window;
                for slot in self.streams.values_mut() {
                    slot.send.rebase(old, e.value);
                }
                self.peer_initial_window = e.value;
                self.wake_writers();
            }
        }
        Ok(())
    }
}

/// A handle on the session; cheap to clone.
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

/// The streams the peer opens, in order.
pub struct Incoming {
    rx: mpsc::UnboundedReceiver<IncomingStream>,
}

impl Incoming {
    /// The next stream the peer opened; `None` once the session ends or goes
    /// away.
    pub async fn accept(&mut self) -> Option<IncomingStream> {
        self.rx.recv().await
    }
}

impl Session {
    /// Starts a session on `io` (the transport after the HTTP upgrade) and
    /// spawns its reader and writer tasks on the current tokio runtime.
    pub fn new<T>(io: T, role: Role, config: Config) -> (Session, Incoming)
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let (closed_tx, _) = watch::channel(false);
        let mut state = State {
            role,
            streams: HashMap::new(),
            out: VecDeque::new(),
            queued_bytes: 0,
            send_session: SendWindow::new(DEFAULT_INITIAL_WINDOW),
            recv_session: RecvWindow::new(config.session_window.max(DEFAULT_INITIAL_WINDOW)),
            peer_initial_window: DEFAULT_INITIAL_WINDOW,
            next_local_id: 1,
            last_peer_id: 0,
            peer_open: 0,
            next_ping: if role == Role::Client { 1 } else { 2 },
            pings: HashMap::new(),
            goaway_sent: false,
            goaway_received: false,
            shutdown: false,
            closed: None,
            incoming: Some(tx),
            config,
        };
        if state.config.initial_window != DEFAULT_INITIAL_WINDOW {
            let value = state.config.initial_window;
            state.queue(Frame::Settings {
                clear: false,
                entries: vec![Setting {
                    flags: 0,
                    id: setting::INITIAL_WINDOW_SIZE,
                    value,
                }],
            });
        }
        if state.config.session_window > DEFAULT_INITIAL_WINDOW {
            let delta = state.config.session_window - DEFAULT_INITIAL_WINDOW;
            state.queue(Frame::WindowUpdate {
                stream_id: 0,
                delta,
            });
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            writer_wake: Notify::new(),
            closed_tx,
            reader: Mutex::new(None),
        });
        let (rd, wr) = tokio::io::split(io);
        let reader = tokio::spawn(read_loop(Arc::clone(&shared), rd));
        *shared.reader.lock().unwrap_or_else(|e| e.into_inner()) = Some(reader.abort_handle());
        tokio::spawn(write_loop(Arc::clone(&shared), wr));
        shared.kick();
        (Session { shared }, Incoming { rx })
    }

    /// Opens a stream (client role) and waits for the peer's SYN_REPLY.
    pub async fn open_stream(&self, headers: Headers, fin: bool) -> Result<Stream, SessionError> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut st = self.shared.lock();
            if let Some(e) = st.session_error() {
                return Err(e);
            }
            if st.goaway_received || st.goaway_sent {
                return Err(SessionError::GoingAway);
            }
            let id = st.next_local_id;
            if id > MAX_ID {
                return Err(SessionError::IdsExhausted);
            }
            st.next_local_id += 2;
            let mut slot = Slot::new(st.peer_initial_window, st.config.initial_window, false);
            slot.local_fin = fin;
            slot.reply = Some(tx);
            st.streams.insert(id, slot);
            st.queue(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                slot: 0,
                fin,
                unidirectional: false,
                headers,
            });
            id
        };
        self.shared.kick();
        // Until the reply, the stream belongs to this future: if it is
        // dropped, the guard resets the stream.
        let guard = StreamHalves::new(Arc::clone(&self.shared), id);
        let reply = rx
            .await
            .unwrap_or_else(|_| Err(SessionError::Closed("session ended".into())))?;
        Ok(guard.into_stream(reply))
    }

    /// Sends a PING and waits for its echo.
    pub async fn ping(&self) -> Result<(), SessionError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            if let Some(e) = st.session_error() {
                return Err(e);
            }
            let id = st.next_ping;
            st.next_ping = st.next_ping.wrapping_add(2);
            st.pings.insert(id, tx);
            st.queue(Frame::Ping { id });
        }
        self.shared.kick();
        rx.await
            .map_err(|_| SessionError::Closed("session ended before the ping echo".into()))
    }

    /// Sends GOAWAY: no new streams either way, open ones carry on.
    pub fn go_away(&self, status: GoAwayStatus) {
        self.shared.lock().go_away(status);
        self.shared.kick();
    }

    /// Sends GOAWAY (OK), flushes what is queued, shuts the transport down
    /// and waits for the session to end.
    pub async fn close(&self) {
        {
            let mut st = self.shared.lock();
            st.go_away(GoAwayStatus::Ok);
            st.shutdown = true;
        }
        self.shared.kick();
        self.closed().await;
    }

    /// Waits until the session has ended (transport closed or failed).
    pub async fn closed(&self) {
        let mut rx = self.shared.closed_tx.subscribe();
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<String> {
        self.shared.lock().closed.clone()
    }

    /// Streams still tracked (open, or with live halves).
    pub fn stream_count(&self) -> usize {
        self.shared.lock().streams.len()
    }
}

fn end(shared: &Shared, reason: String) {
    shared.lock().close(reason);
    shared.kick();
    shared.closed_tx.send_replace(true);
}

async fn read_loop<R: AsyncRead + Unpin>(shared: Arc<Shared>, mut rd: R) {
    let (max_frame, max_block) = {
        let st = shared.lock();
        (st.config.max_frame_len, st.config.max_header_block)
    };
    let mut dec = FrameDecoder::with_limits(max_frame, max_block);
    let mut buf = BytesMut::with_capacity(16 << 10);
    loop {
        loop {
            let fatal = match dec.decode_buf(&mut buf) {
                Ok(None) => break,
                Ok(Some(frame)) => {
                    let mut st = shared.lock();
                    let mut r = st.handle(frame, &shared);
                    if r.is_ok() && st.out.len() > MAX_QUEUED_FRAMES {
                        r = Err(Fatal("peer does not read its replies".into()));
                    }
                    drop(st);
                    shared.kick();
                    r.err()
                }
                Err(e @ CodecError::FrameTooLarge { .. }) | Err(e @ CodecError::Frame(_)) => {
                    Some(Fatal(e.to_string()))
                }
            };
            if let Some(Fatal(reason)) = fatal {
                tracing::debug!(%reason, "spdy protocol error");
                {
                    let mut st = shared.lock();
                    // What was queued no longer matters: only GOAWAY goes out.
                    st.out.clear();
                    st.queued_bytes = 0;
                    st.go_away(GoAwayStatus::ProtocolError);
                    st.shutdown = true;
                }
                return end(&shared, format!("protocol error: {reason}"));
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => return end(&shared, "connection closed by peer".into()),
            Ok(_) => {}
            Err(e) => return end(&shared, format!("read: {e}")),
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(shared: Arc<Shared>, mut wr: W) {
    let mut enc = match FrameEncoder::new() {
        Ok(enc) => enc,
        Err(e) => return end(&shared, format!("compressor: {e}")),
    };
    let mut wire = Vec::new();
    loop {
        let (frames, stop, closed) = {
            let mut st = shared.lock();
            let frames: Vec<Frame> = st.out.drain(..).collect();
            (
                frames,
                st.closed.is_some() || st.shutdown,
                st.closed.is_some(),
            )
        };
        if frames.is_empty() {
            if stop {
                break;
            }
            shared.writer_wake.notified().await;
            continue;
        }
        let mut data_bytes = 0;
        for frame in &frames {
            if let Frame::Data { data, .. } = frame {
                data_bytes += data.len();
            }
            if let Err(e) = enc.encode(frame, &mut wire) {
                // Only oversized or out-of-range frames fail; they are built
                // here, so this is a bug: end the session rather than send
                // a corrupt stream.
                return end(&shared, format!("encode {}: {e}", frame.name()));
            }
        }
        let write = async {
            wr.write_all(&wire).await?;
            wr.flush().await
        };
        // Once the session has ended, a peer that does not read cannot hold
        // the writer (and the transport) forever.
        let written = if closed {
            tokio::time::timeout(CLOSING_WRITE_TIMEOUT, write)
                .await
                .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
        } else {
            write.await
        };
        wire.clear();
        if let Err(e) = written {
            return end(&shared, format!("write: {e}"));
        }
        let mut st = shared.lock();
        let was_full = st.queued_bytes >= st.config.max_queued_bytes;
        st.queued_bytes = st.queued_bytes.saturating_sub(data_bytes);
        if was_full {
            st.wake_writers();
        }
    }
    let _ = wr.shutdown().await;
    if let Some(reader) = shared
        .reader
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        reader.abort();
    }
    end(&shared, "closed locally".into());
}

/// A stream the peer opened, waiting for an answer. Dropping it unanswered
/// refuses it.
pub struct IncomingStream {
    shared: Arc<Shared>,
    id: u32,
    headers: Headers,
    answered: bool,
}

impl IncomingStream {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The SYN_STREAM headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Accepts with SYN_REPLY.
    pub fn reply(self, headers: Headers) -> Stream {
        self.reply_with(headers, false)
    }

    /// Accepts with SYN_REPLY, half-closing our side at once if `fin`.
    pub fn reply_with(mut self, headers: Headers, fin: bool) -> Stream {
        self.answered = true;
        {
            let mut st = self.shared.lock();
            let live = match st.streams.get_mut(&self.id) {
                Some(slot) if slot.reset.is_none() => {
                    slot.local_fin |= fin;
                    true
                }
                _ => false,
            };
            // A stream the peer reset before the answer gets none; its
            // halves report the reset.
            if live {
                st.queue(Frame::SynReply {
                    stream_id: self.id,
                    fin,
                    headers,
                });
            }
        }
        self.shared.kick();
        let halves = StreamHalves::new(Arc::clone(&self.shared), self.id);
        halves.into_stream(std::mem::take(&mut self.headers))
    }

    /// Refuses with RST_STREAM.
    pub fn refuse(mut self, status: RstStatus) {
        self.answered = true;
        self.refuse_inner(status);
    }

    fn refuse_inner(&self, status: RstStatus) {
        {
            let mut st = self.shared.lock();
            if let Some(slot) = st.streams.get_mut(&self.id) {
                slot.reader_alive = false;
                slot.writer_alive = false;
            }
            st.reset_stream(self.id, status);
        }
        self.shared.kick();
    }
}

impl Drop for IncomingStream {
    fn drop(&mut self) {
        if !self.answered {
            self.refuse_inner(RstStatus::RefusedStream);
        }
    }
}

/// Owns both halves of a stream until they are handed out; resets the
/// stream if dropped first (an abandoned open).
struct StreamHalves {
    shared: Arc<Shared>,
    id: u32,
    armed: bool,
}

impl StreamHalves {
    fn new(shared: Arc<Shared>, id: u32) -> Self {
        Self {
            shared,
            id,
            armed: true,
        }
    }

    fn into_stream(mut self, headers: Headers) -> Stream {
        self.armed = false;
        Stream {
            id: self.id,
            headers,
            reader: StreamReader {
                shared: Arc::clone(&self.shared),
                id: self.id,
            },
            writer: StreamWriter {
                shared: Arc::clone(&self.shared),
                id: self.id,
            },
        }
    }
}

impl Drop for StreamHalves {
    fn drop(&mut self) {
        if self.armed {
            {
                let mut st = self.shared.lock();
                if let Some(slot) = st.streams.get_mut(&self.id) {
                    slot.reader_alive = false;
                    slot.writer_alive = false;
                }
                st.reset_stream(self.id, RstStatus::Cancel);
            }
            self.shared.kick();
        }
    }
}

/// An open stream: its headers (SYN_STREAM for the server, SYN_REPLY for the
/// client) and both halves.
pub struct Stream {
    id: u32,
    headers: Headers,
    reader: StreamReader,
    writer: StreamWriter,
}

impl Stream {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The headers the stream was opened (server) or answered (client) with.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The read and write halves.
    pub fn split(self) -> (StreamReader, StreamWriter) {
        (self.reader, self.writer)
    }

    /// Resets the stream (RST_STREAM).
    pub fn reset(&self, status: RstStatus) {
        self.writer.reset(status);
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}

/// The receiving half of a stream; end-of-file after the peer's FIN.
pub struct StreamReader {
    shared: Arc<Shared>,
    id: u32,
}

impl AsyncRead for StreamReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let id = self.id;
        let mut st = self.shared.lock();
        let closed = st.session_error();
        let Some(slot) = st.streams.get_mut(&id) else {
            return Poll::Ready(Err(closed
                .unwrap_or(SessionError::Closed("stream gone".into()))
                .into()));
        };
        if let Some(status) = slot.reset {
            return Poll::Ready(Err(SessionError::Reset {
                stream_id: id,
                status,
            }
            .into()));
        }
        let mut copied = 0;
        while out.remaining() > 0 {
            let Some(chunk) = slot.buf.front_mut() else {
                break;
            };
            let n = chunk.len().min(out.remaining());
            out.put_slice(&chunk.split_to(n));
            copied += n;
            if chunk.is_empty() {
                slot.buf.pop_front();
            }
        }
        if copied > 0 {
            let update = if slot.remote_fin {
                None
            } else {
                slot.recv.consume(copied)
            };
            if let Some(delta) = update {
                st.queue(Frame::WindowUpdate {
                    stream_id: id,
                    delta,
                });
                drop(st);
                self.shared.kick();
            }
            return Poll::Ready(Ok(()));
        }
        if slot.remote_fin {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = closed {
            return Poll::Ready(Err(e.into()));
        }
        slot.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        {
            let mut st = self.shared.lock();
            let id = self.id;
            let mut update = None;
            if let Some(slot) = st.streams.get_mut(&id) {
                slot.reader_alive = false;
                // Unread bytes are dropped; the peer's window is reopened so
                // that it is not stalled by a reader that went away.
                let unread: usize = slot.buf.drain(..).map(|b| b.len()).sum();
                if !slot.remote_fin && slot.reset.is_none() {
                    update = slot.recv.consume(unread);
                }
            }
            if let Some(delta) = update {
                st.queue(Frame::WindowUpdate {
                    stream_id: id,
                    delta,
                });
            }
            st.reap(id);
        }
        self.shared.kick();
    }
}

/// The sending half of a stream; shutting it down sends FLAG_FIN.
pub struct StreamWriter {
    shared: Arc<Shared>,
    id: u32,
}

impl StreamWriter {
    /// Resets the stream (RST_STREAM with `status`).
    pub fn reset(&self, status: RstStatus) {
        self.shared.lock().reset_stream(self.id, status);
        self.shared.kick();
    }

    /// The bytes this half may send now (the smaller of the stream and
    /// session windows).
    pub fn send_window(&self) -> i64 {
        let st = self.shared.lock();
        let stream = st.streams.get(&self.id).map_or(0, |s| s.send.available());
        stream.min(st.send_session.available())
    }

    fn fin(&self) {
        let mut st = self.shared.lock();
        let id = self.id;
        if let Some(slot) = st.streams.get_mut(&id) {
            if slot.local_fin || slot.reset.is_some() {
                return;
            }
            slot.local_fin = true;
            st.queue(Frame::Data {
                stream_id: id,
                fin: true,
                data: Bytes::new(),
            });
        }
    }
}

impl AsyncWrite for StreamWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let id = self.id;
        let mut st = self.shared.lock();
        let closed = st.session_error();
        let queue_full = st.queued_bytes >= st.config.max_queued_bytes;
        let max_frame = st.config.max_data_frame;
        let session_avail = st.send_session.available();
        let Some(slot) = st.streams.get_mut(&id) else {
            return Poll::Ready(Err(closed
                .unwrap_or(SessionError::Closed("stream gone".into()))
                .into()));
        };
        if let Some(status) = slot.reset {
            return Poll::Ready(Err(SessionError::Reset {
                stream_id: id,
                status,
            }
            .into()));
        }
        if let Some(e) = closed {
            return Poll::Ready(Err(e.into()));
        }
        if slot.local_fin {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("spdy stream {id} is half-closed"),
            )));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let want = data.len().min(max_frame);
        let want = want.min(usize::try_from(session_avail.max(0)).unwrap_or(0));
        let n = if queue_full { 0 } else { slot.send.take(want) };
        if n == 0 {
            slot.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        st.send_session.take(n);
        st.queue(Frame::Data {
            stream_id: id,
            fin: false,
            data: Bytes::copy_from_slice(&data[..n]),
        });
        drop(st);
        self.shared.kick();
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Frames leave in order; the writer task flushes after each batch.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.fin();
        self.shared.kick();
        Poll::Ready(Ok(()))
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        // Dropping the writer half-closes; a stream whose halves are both
        // gone lingers (its incoming data dropped) until the peer's FIN or
        // RST, rather than being reset under data the peer may still read.
        self.fin();
        {
            let mut st = self.shared.lock();
            if let Some(slot) = st.streams.get_mut(&self.id) {
                slot.writer_alive = false;
            }
            st.reap(self.id);
        }
        self.shared.kick();
    }
}
