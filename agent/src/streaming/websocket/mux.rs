//! Channels of a [`ChannelConn`] as byte streams, for the server and the
//! client alike. One task reads messages and writes each input channel's
//! payload into its pipe (a v5 close message or the end of the connection is
//! end-of-file there); one task owns the sending half; each output channel
//! is a pipe whose bytes a pump task sends as messages (and, under v5,
//! closes with a close message at end-of-file). Back-pressure: a pipe holds
//! [`PIPE_BUFFER`] bytes; a reader that does not read stalls the receive
//! loop, as a TCP peer would.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{duplex, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::channel::ChannelMessage;
use super::conn::{ChannelConn, ChannelSender};

/// Bytes buffered per channel pipe.
pub const PIPE_BUFFER: usize = 64 << 10;
/// Largest message a pump sends.
const CHUNK: usize = 32 << 10;
/// How long [`Mux::close`] waits for the peer to end the connection.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

enum Out {
    Data(u8, Vec<u8>),
    Close(u8),
}

/// A running multiplexer.
pub struct Mux {
    /// `None` once closing (the writer task then sends the close frame).
    tx: Option<mpsc::Sender<Out>>,
    close_supported: bool,
    disconnected: watch::Receiver<bool>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    pumps: Vec<JoinHandle<()>>,
}

impl Mux {
    /// Starts the tasks on `conn`; returns the read ends of the `inputs`
    /// channels' pipes. Messages on other channels are dropped.
    pub fn start<S>(conn: ChannelConn<S>, inputs: &[u8]) -> (Mux, HashMap<u8, DuplexStream>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let close_supported = conn.protocol().close_supported;
        let (sender, mut receiver) = conn.split();
        let (done_tx, disconnected) = watch::channel(false);
        let mut pipes = HashMap::new();
        let mut readers = HashMap::new();
        for ch in inputs {
            let (ours, theirs) = duplex(PIPE_BUFFER);
            pipes.insert(*ch, ours);
            readers.insert(*ch, theirs);
        }
        let reader_done = done_tx.clone();
        let reader = tokio::spawn(async move {
            loop {
                match receiver.recv().await {
                    Ok(Some(ChannelMessage::Data { channel, payload })) => {
                        let Some(pipe) = pipes.get_mut(&channel) else {
                            continue;
                        };
                        if pipe.write_all(&payload).await.is_err() {
                            // Nobody reads this channel any more.
                            pipes.remove(&channel);
                        }
                    }
                    Ok(Some(ChannelMessage::Close { channel })) => {
                        pipes.remove(&channel);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "websocket channel connection failed");
                        break;
                    }
                }
            }
            drop(pipes);
            reader_done.send_replace(true);
        });
        let (tx, rx) = mpsc::channel(16);
        let writer = tokio::spawn(write_loop(sender, rx, done_tx));
        let mux = Mux {
            tx: Some(tx),
            close_supported,
            disconnected,
            reader,
            writer,
            pumps: Vec::new(),
        };
        (mux, readers)
    }

    /// The write end of output channel `ch`: its bytes go out as messages;
    /// dropping or shutting it down ends the channel (a close message
    /// under v5).
    pub fn output(&mut self, ch: u8) -> DuplexStream {
        let (theirs, mut ours) = duplex(PIPE_BUFFER);
        let Some(tx) = self.tx.clone() else {
            // Closing: the channel ends at once.
            return theirs;
        };
        let close = self.close_supported;
        self.pumps.push(tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match ours.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(Out::Data(ch, buf[..n].to_vec())).await.is_err() {
                            return;
                        }
                    }
                }
            }
            if close {
                let _ = tx.send(Out::Close(ch)).await;
            }
        }));
        theirs
    }

    /// Sends one message on channel `ch`; `false` if the connection is gone.
    pub async fn send(&self, ch: u8, payload: &[u8]) -> bool {
        match &self.tx {
            Some(tx) => tx.send(Out::Data(ch, payload.to_vec())).await.is_ok(),
            None => false,
        }
    }

    /// Resolves once the connection has ended (either side).
    pub fn disconnected(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.disconnected.clone();
        async move {
            let _ = rx.wait_for(|d| *d).await;
        }
    }

    /// Waits until every output pipe has been drained into messages (their
    /// write ends dropped or shut down, or the connection gone).
    pub async fn drain(&mut self) {
        for pump in self.pumps.drain(..) {
            let _ = pump.await;
        }
    }

    /// Drains the outputs, sends the close frame, and waits (a bounded
    /// time) for the peer to end the connection.
    pub async fn close(mut self) {
        self.drain().await;
        self.tx = None;
        let _ = (&mut self.writer).await;
        if tokio::time::timeout(CLOSE_WAIT, &mut self.reader)
            .await
            .is_err()
        {
            self.reader.abort();
        }
    }
}

impl Drop for Mux {
    fn drop(&mut self) {
        // A dropped mux (the handler ended or was cancelled) takes its
        // tasks down with it; after close() these have finished already.
        self.reader.abort();
        self.writer.abort();
        for pump in &self.pumps {
            pump.abort();
        }
    }
}

async fn write_loop<S>(
    mut sender: ChannelSender<S>,
    mut rx: mpsc::Receiver<Out>,
    done: watch::Sender<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(out) = rx.recv().await {
        let sent = match out {
            Out::Data(ch, payload) => sender.send(ch, &payload).await,
            Out::Close(ch) => sender.close_channel(ch).await,
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "websocket channel send failed");
            done.send_replace(true);
            return;
        }
    }
    let _ = sender.close().await;
}

#[cfg(test)]
mod tests {
    use super::super::upgrade::REMOTE_COMMAND;
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::Role;

    #[tokio::test]
    async fn pipes_both_ways_and_v5_close_is_eof() {
        let (a, b) = duplex(1 << 16);
        let v5 = REMOTE_COMMAND[0];
        assert!(v5.close_supported);
        let server = ChannelConn::new(a, v5, Role::Server).await;
        let client = ChannelConn::new(b, v5, Role::Client).await;
        let (mut smux, mut sin) = Mux::start(server, &[0]);
        let (mut cmux, mut cin) = Mux::start(client, &[1]);
        let mut stdin_w = cmux.output(0);
        let mut stdout_w = smux.output(1);
        stdin_w.write_all(b"hello").await.unwrap();
        drop(stdin_w);
        let mut got = Vec::new();
        sin.get_mut(&0)
            .unwrap()
            .read_to_end(&mut got)
            .await
            .unwrap();
        assert_eq!(got, b"hello");
        stdout_w.write_all(b"out").await.unwrap();
        drop(stdout_w);
        smux.drain().await;
        let mut got = Vec::new();
        cin.get_mut(&1)
            .unwrap()
            .read_to_end(&mut got)
            .await
            .unwrap();
        assert_eq!(got, b"out");
        let gone = cmux.disconnected();
        smux.close().await;
        gone.await;
    }
}
