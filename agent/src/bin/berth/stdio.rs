//! berth's own stdin, stdout and stderr as async streams for a streaming
//! session. Each is served by a thread of its own doing the blocking reads
//! or writes: the runtime never waits on a terminal or a full pipe, and a
//! thread blocked in read(2) on stdin does not hold up berth's exit (as a
//! read on tokio's blocking pool would). Writes are bounded (a few chunks
//! in flight), and a write error (a closed pipe) fails the next write.

use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context as TaskContext, Poll};

use anyhow::Context;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc::{self, error::SendError, OwnedPermit};
use tokio::sync::oneshot;

/// berth's stdin as an async reader: a thread does the blocking reads (so
/// nothing waits on it when berth exits, as tokio's stdin would), and the
/// end of the input is signalled once it has been read.
pub struct StdinReader {
    chunks: mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
    ended: Option<oneshot::Sender<()>>,
}

impl StdinReader {
    /// Starts the reader thread; the receiver hears of the end of input.
    pub fn start() -> anyhow::Result<(StdinReader, oneshot::Receiver<()>)> {
        let (tx, chunks) = mpsc::channel(8);
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let mut stdin = io::stdin().lock();
                let mut buf = vec![0u8; 32 << 10];
                loop {
                    let chunk = match stdin.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => Ok(buf[..n].to_vec()),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => Err(e),
                    };
                    let failed = chunk.is_err();
                    if tx.blocking_send(chunk).is_err() || failed {
                        return;
                    }
                }
            })
            .context("start the stdin reader")?;
        let (ended_tx, ended) = oneshot::channel();
        let reader = StdinReader {
            chunks,
            chunk: Vec::new(),
            at: 0,
            ended: Some(ended_tx),
        };
        Ok((reader, ended))
    }
}

impl AsyncRead for StdinReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.at < self.chunk.len() {
                let n = buf.remaining().min(self.chunk.len() - self.at);
                let at = self.at;
                buf.put_slice(&self.chunk[at..at + n]);
                self.at += n;
                return Poll::Ready(Ok(()));
            }
            match ready!(self.chunks.poll_recv(cx)) {
                Some(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => {
                    if let Some(ended) = self.ended.take() {
                        let _ = ended.send(());
                    }
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

/// What the writer thread is asked to do.
enum Out {
    Data(Vec<u8>),
    Flush(oneshot::Sender<io::Result<()>>),
}

type Reserve = Pin<Box<dyn Future<Output = Result<OwnedPermit<Out>, SendError<()>>> + Send>>;

/// berth's stdout or stderr as an async writer.
pub struct ThreadWriter {
    tx: mpsc::Sender<Out>,
    /// A slot in the channel being waited for.
    reserving: Option<Reserve>,
    /// A flush sent, its acknowledgement awaited.
    flushing: Option<oneshot::Receiver<io::Result<()>>>,
    /// Why the thread stopped writing.
    failed: Arc<Mutex<Option<(io::ErrorKind, String)>>>,
}

impl ThreadWriter {
    /// Writes to berth's stdout.
    pub fn stdout() -> anyhow::Result<ThreadWriter> {
        Self::start("stdout", io::stdout())
    }

    /// Writes to berth's stderr.
    pub fn stderr() -> anyhow::Result<ThreadWriter> {
        Self::start("stderr", io::stderr())
    }

    fn start(name: &str, mut out: impl Write + Send + 'static) -> anyhow::Result<ThreadWriter> {
        let (tx, mut rx) = mpsc::channel::<Out>(8);
        let failed = Arc::new(Mutex::new(None));
        let failed_in_thread = Arc::clone(&failed);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Some(msg) = rx.blocking_recv() {
                    match msg {
                        Out::Data(bytes) => {
                            if let Err(e) = out.write_all(&bytes).and_then(|()| out.flush()) {
                                let mut f =
                                    failed_in_thread.lock().unwrap_or_else(|p| p.into_inner());
                                *f = Some((e.kind(), e.to_string()));
                                return;
                            }
                        }
                        Out::Flush(ack) => {
                            let _ = ack.send(out.flush());
                        }
                    }
                }
            })
            .with_context(|| format!("start the {name} writer"))?;
        Ok(ThreadWriter {
            tx,
            reserving: None,
            flushing: None,
            failed,
        })
    }

    /// The error that stopped the thread.
    fn failure(&self) -> io::Error {
        match &*self.failed.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((kind, msg)) => io::Error::new(*kind, msg.clone()),
            None => io::Error::new(io::ErrorKind::BrokenPipe, "the writer thread has stopped"),
        }
    }

    /// Waits for a slot in the channel.
    fn poll_slot(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<OwnedPermit<Out>>> {
        let tx = &self.tx;
        let reserving = self
            .reserving
            .get_or_insert_with(|| Box::pin(tx.clone().reserve_owned()));
        let permit = ready!(reserving.as_mut().poll(cx));
        self.reserving = None;
        Poll::Ready(permit.map_err(|_| self.failure()))
    }
}

impl AsyncWrite for ThreadWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let permit = ready!(self.poll_slot(cx))?;
        permit.send(Out::Data(buf.to_vec()));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some(ack) = self.flushing.as_mut() {
                let r = ready!(Pin::new(ack).poll(cx));
                self.flushing = None;
                return Poll::Ready(r.unwrap_or_else(|_| Err(self.failure())));
            }
            let permit = ready!(self.poll_slot(cx))?;
            let (ack, done) = oneshot::channel();
            permit.send(Out::Flush(ack));
            self.flushing = Some(done);
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}
