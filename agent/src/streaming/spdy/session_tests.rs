//! Session tests over `tokio::io::duplex`: against a raw frame-level peer
//! (so the session is checked by an independent use of the codec) and
//! against a client-role session.

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::codec::{FrameDecoder, FrameEncoder};
use super::frame::{setting, Frame, GoAwayStatus, RstStatus, Setting};
use super::header_block::Headers;
use super::session::{Config, Role, Session};

/// Guards against a hang; no test asserts on time.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test timed out")
}

/// A peer that speaks frames directly.
struct RawPeer {
    io: DuplexStream,
    enc: FrameEncoder,
    dec: FrameDecoder,
    buf: BytesMut,
}

impl RawPeer {
    fn new(io: DuplexStream) -> Self {
        Self {
            io,
            enc: FrameEncoder::new().unwrap(),
            dec: FrameDecoder::new(),
            buf: BytesMut::new(),
        }
    }

    async fn send(&mut self, frame: Frame) {
        let mut wire = Vec::new();
        self.enc.encode(&frame, &mut wire).unwrap();
        self.io.write_all(&wire).await.unwrap();
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// The next frame, or `None` at end of stream.
    async fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = self.dec.decode_buf(&mut self.buf).unwrap() {
                return Some(f);
            }
            if self.io.read_buf(&mut self.buf).await.unwrap() == 0 {
                return None;
            }
        }
    }

    async fn syn(&mut self, id: u32, headers: Headers, fin: bool) {
        self.send(Frame::SynStream {
            stream_id: id,
            associated_to: 0,
            priority: 0,
            slot: 0,
            fin,
            unidirectional: false,
            headers,
        })
        .await;
    }

    async fn data(&mut self, id: u32, data: &[u8], fin: bool) {
        self.send(Frame::Data {
            stream_id: id,
            fin,
            data: Bytes::copy_from_slice(data),
        })
        .await;
    }
}

fn server(io: DuplexStream, config: Config) -> (Session, super::session::Incoming) {
    Session::new(io, Role::Server, config)
}

fn kinds(t: &str) -> Headers {
    Headers::new().with("streamtype", t).with("requestid", "0")
}

#[tokio::test]
async fn three_streams_from_a_raw_client() {
    bounded(async {
        let (a, b) = duplex(1 << 16);
        let (session, mut incoming) = server(a, Config::default());
        // The application: echo each stream upper-cased, then half-close.
        let app = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..3 {
                let s = incoming.accept().await.unwrap();
                seen.push(s.headers().get("streamtype").unwrap().to_owned());
                let mut stream = s.reply(Headers::new());
                tokio::spawn(async move {
                    let mut input = Vec::new();
                    stream.read_to_end(&mut input).await.unwrap();
                    stream.write_all(&input.to_ascii_uppercase()).await.unwrap();
                    stream.shutdown().await.unwrap();
                });
            }
            seen
        });

        let mut peer = RawPeer::new(b);
        for (i, t) in ["stdin", "stdout", "stderr"].iter().enumerate() {
            let id = 2 * i as u32 + 1;
            peer.syn(id, kinds(t), false).await;
            peer.data(id, format!("hello {t}").as_bytes(), false).await;
            peer.data(id, b" and bye", true).await;
        }
        peer.send(Frame::Ping { id: 7 }).await;

        let mut replies = 0;
        let mut fins = 0;
        let mut echoed = false;
        let mut got: [Vec<u8>; 3] = Default::default();
        while replies < 3 || fins < 3 || !echoed {
            match peer.recv().await.unwrap() {
                Frame::SynReply { stream_id, fin, .. } => {
                    assert!(!fin && stream_id % 2 == 1);
                    replies += 1;
                }
                Frame::Data {
                    stream_id,
                    fin,
                    data,
                } => {
                    got[(stream_id / 2) as usize].extend_from_slice(&data);
                    fins += usize::from(fin);
                }
                Frame::Ping { id } => {
                    assert_eq!(id, 7);
                    echoed = true;
                }
                Frame::WindowUpdate { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got[0], b"HELLO STDIN AND BYE");
        assert_eq!(got[1], b"HELLO STDOUT AND BYE");
        assert_eq!(got[2], b"HELLO STDERR AND BYE");
        assert_eq!(app.await.unwrap(), ["stdin", "stdout", "stderr"]);

        // Streams closed both ways and dropped are forgotten.
        assert_eq!(session.stream_count(), 0);
        peer.send(Frame::GoAway {
            last_good_stream_id: 0,
            status: GoAwayStatus::Ok,
        })
        .await;
        drop(peer);
        session.closed().await;
        assert_eq!(
            session.close_reason().as_deref(),
            Some("connection closed by peer")
        );
    })
    .await;
}

#[tokio::test]
async fn client_and_server_sessions() {
    bounded(async {
        let (a, b) = duplex(1 << 12);
        let (server_session, mut incoming) = server(a, Config::default());
        let (client, _none) = Session::new(b, Role::Client, Config::default());
        let app = tokio::spawn(async move {
            while let Some(s) = incoming.accept().await {
                let kind = s.headers().get("streamtype").unwrap().to_owned();
                let stream = s.reply(Headers::new().with("accepted", &kind));
                tokio::spawn(async move {
                    let (mut rd, mut wr) = stream.split();
                    let mut total = 0u64;
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = rd.read(&mut chunk).await.unwrap();
                        if n == 0 {
                            break;
                        }
                        total += n as u64;
                    }
                    wr.write_all(format!("{kind}:{total}").as_bytes())
                        .await
                        .unwrap();
                });
            }
        });

        let mut tasks = Vec::new();
        for (i, kind) in ["stdin", "stdout", "error"].into_iter().enumerate() {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = client.open_stream(kinds(kind), false).await.unwrap();
                assert_eq!(s.headers().get("accepted"), Some(kind));
                // More than a window's worth, so updates must flow.
                let payload = vec![i as u8; 200_000 + i];
                s.write_all(&payload).await.unwrap();
                s.shutdown().await.unwrap();
                let mut reply = String::new();
                s.read_to_string(&mut reply).await.unwrap();
                reply
            }));
        }
        let mut replies = Vec::new();
        for t in tasks {
            replies.push(t.await.unwrap());
        }
        assert_eq!(replies, ["stdin:200000", "stdout:200001", "error:200002"]);
        client.ping().await.unwrap();
        server_session.ping().await.unwrap();

        client.close().await;
        server_session.closed().await;
        app.await.unwrap();
        assert!(client.open_stream(kinds("x"), false).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn send_window_stops_at_64k_and_resumes_on_update() {
    bounded(async {
        let (a, b) = duplex(1 << 20);
        let (_session, mut incoming) = server(a, Config::default());
        let writer = tokio::spawn(async move {
            let s = incoming.accept().await.unwrap();
            let mut stream = s.reply(Headers::new());
            stream.write_all(&vec![7u8; 100_000]).await.unwrap();
            stream.shutdown().await.unwrap();
            stream
        });
        let mut peer = RawPeer::new(b);
        peer.syn(1, kinds("stdout"), true).await;
        let mut total = 0usize;
        while total < 65_536 {
            match peer.recv().await.unwrap() {
                Frame::Data { data, .. } => total += data.len(),
                Frame::SynReply { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(total, 65_536);
        // A round trip: nothing more may arrive before the echo.
        peer.send(Frame::Ping { id: 1 }).await;
        assert_eq!(
            peer.recv().await.unwrap(),
            Frame::Ping { id: 1 },
            "sent past the window"
        );
        // The stream window alone is not enough: the session one is spent too.
        peer.send(Frame::WindowUpdate {
            stream_id: 1,
            delta: 40_000,
        })
        .await;
        peer.send(Frame::Ping { id: 3 }).await;
        assert_eq!(peer.recv().await.unwrap(), Frame::Ping { id: 3 });
        peer.send(Frame::WindowUpdate {
            stream_id: 0,
            delta: 1 << 20,
        })
        .await;
        let mut fin = false;
        while !fin {
            match peer.recv().await.unwrap() {
                Frame::Data { data, fin: f, .. } => {
                    total += data.len();
                    fin = f;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(total, 100_000);
        drop(writer.await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn initial_window_setting_is_honoured() {
    bounded(async {
        let (a, b) = duplex(1 << 20);
        let (_session, mut incoming) = server(a, Config::default());
        let mut peer = RawPeer::new(b);
        peer.send(Frame::Settings {
            clear: false,
            entries: vec![Setting {
                flags: 0,
                id: setting::INITIAL_WINDOW_SIZE,
                value: 1000,
            }],
        })
        .await;
        peer.syn(1, kinds("stdout"), true).await;
        let writer = tokio::spawn(async move {
            let mut stream = incoming.accept().await.unwrap().reply(Headers::new());
            stream.write_all(&[1u8; 3000]).await.unwrap();
            stream.shutdown().await.unwrap();
            (stream, incoming)
        });
        let mut total = 0;
        while total < 1000 {
            if let Frame::Data { data, .. } = peer.recv().await.unwrap() {
                total += data.len();
            }
        }
        peer.send(Frame::Ping { id: 1 }).await;
        assert_eq!(peer.recv().await.unwrap(), Frame::Ping { id: 1 });
        assert_eq!(total, 1000);
        // Raising the initial window shifts the open stream's window too.
        peer.send(Frame::Settings {
            clear: false,
            entries: vec![Setting {
                flags: 0,
                id: setting::INITIAL_WINDOW_SIZE,
                value: 3000,
            }],
        })
        .await;
        let mut fin = false;
        while !fin {
            if let Frame::Data { data, fin: f, .. } = peer.recv().await.unwrap() {
                total += data.len();
                fin = f;
            }
        }
        assert_eq!(total, 3000);
        drop(writer.await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn receive_window_is_granted_as_the_app_reads_and_enforced() {
    bounded(async {
        let (a, b) = duplex(1 << 20);
        let (_session, mut incoming) = server(a, Config::default());
        let mut peer = RawPeer::new(b);
        peer.syn(1, kinds("stdin"), false).await;
        let s = incoming.accept().await.unwrap();
        let mut stream = s.reply(Headers::new());
        assert!(matches!(peer.recv().await, Some(Frame::SynReply { .. })));
        peer.data(1, &[0u8; 40_000], false).await;
        let mut got = vec![0u8; 40_000];
        stream.read_exact(&mut got).await.unwrap();
        // Half the window consumed: a stream grant and a session grant.
        let mut grants = Vec::new();
        while grants.len() < 2 {
            match peer.recv().await.unwrap() {
                Frame::WindowUpdate { stream_id, delta } => grants.push((stream_id, delta)),
                other => panic!("unexpected {other:?}"),
            }
        }
        grants.sort();
        assert_eq!(grants, [(0, 40_000), (1, 40_000)]);

        // Overrunning the session window is a session error.
        peer.data(1, &vec![0u8; 65_537], false).await;
        assert_eq!(
            peer.recv().await.unwrap(),
            Frame::GoAway {
                last_good_stream_id: 1,
                status: GoAwayStatus::ProtocolError
            }
        );
        assert!(stream.read(&mut got).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn stream_window_overrun_resets_the_stream() {
    bounded(async {
        let (a, b) = duplex(1 << 20);
        let config = Config {
            session_window: 1 << 20,
            ..Config::default()
        };
        let (_session, mut incoming) = server(a, config);
        let mut peer = RawPeer::new(b);
        // The larger session window is announced at start.
        assert_eq!(
            peer.recv().await.unwrap(),
            Frame::WindowUpdate {
                stream_id: 0,
                delta: (1 << 20) - 65_536
            }
        );
        peer.syn(1, kinds("stdin"), false).await;
        let mut stream = incoming.accept().await.unwrap().reply(Headers::new());
        assert!(matches!(peer.recv().await, Some(Frame::SynReply { .. })));
        peer.data(1, &vec![0u8; 65_537], false).await;
        assert_eq!(
            peer.recv().await.unwrap(),
            Frame::RstStream {
                stream_id: 1,
                status: RstStatus::FlowControlError
            }
        );
        let mut buf = [0u8; 16];
        let err = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    })
    .await;
}

#[tokio::test]
async fn resets_refusals_and_unknown_streams() {
    bounded(async {
        let (a, b) = duplex(1 << 16);
        let (session, mut incoming) = server(a, Config::default());
        let mut peer = RawPeer::new(b);

        // A refused stream.
        peer.syn(1, kinds("resize"), false).await;
        drop(incoming.accept().await.unwrap());
        assert_eq!(
            peer.recv().await.unwrap(),
            Frame::RstStream {
                stream_id: 1,
                status: RstStatus::RefusedStream
            }
        );

        // A stream the client resets: the application sees an error.
        peer.syn(3, kinds("stdin"), false).await;
        let mut stream = incoming.accept().await.unwrap().reply(Headers::new());
        assert!(matches!(
            peer.recv().await,
            Some(Frame::SynReply { stream_id: 3, .. })
        ));
        peer.send(Frame::RstStream {
            stream_id: 3,
            status: RstStatus::Cancel,
        })
        .await;
        let mut buf = [0u8; 8];
        let err = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        assert!(stream.write_all(b"x").await.is_err());
        drop(stream);

        // DATA on a stream that does not exist; unknown control frames are
        // ignored.
        peer.data(99, b"lost", false).await;
        assert_eq!(
            peer.recv().await.unwrap(),
            Frame::RstStream {
                stream_id: 99,
                status: RstStatus::InvalidStream
            }
        );
        peer.send(Frame::Unknown {
            frame_type: 10,
            flags: 0,
            payload: Bytes::from_static(b"credential"),
        })
        .await;
        peer.send(Frame::Ping { id: 5 }).await;
        assert_eq!(peer.recv().await.unwrap(), Frame::Ping { id: 5 });
        assert_eq!(session.stream_count(), 0);
    })
    .await;
}

#[tokio::test]
async fn protocol_errors_send_goaway_and_end_the_session() {
    for bad in [
        // A SYN_STREAM with a server (even) stream id.
        {
            let mut wire = Vec::new();
            FrameEncoder::new()
                .unwrap()
                .encode(
                    &Frame::SynStream {
                        stream_id: 2,
                        associated_to: 0,
                        priority: 0,
                        slot: 0,
                        fin: false,
                        unidirectional: false,
                        headers: Headers::new(),
                    },
                    &mut wire,
                )
                .unwrap();
            wire
        },
        // A control frame of another version.
        vec![0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1],
        // A header block that is not zlib.
        vec![
            0x80, 3, 0, 1, 0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4,
        ],
        // A frame over the size cap.
        vec![0, 0, 0, 1, 0, 0xff, 0xff, 0xff],
    ] {
        bounded(async {
            let (a, b) = duplex(1 << 16);
            let (session, mut incoming) = server(a, Config::default());
            let mut peer = RawPeer::new(b);
            peer.send_raw(&bad).await;
            assert_eq!(
                peer.recv().await.unwrap(),
                Frame::GoAway {
                    last_good_stream_id: 0,
                    status: GoAwayStatus::ProtocolError
                }
            );
            assert_eq!(peer.recv().await, None);
            session.closed().await;
            assert!(session
                .close_reason()
                .unwrap()
                .starts_with("protocol error"));
            assert!(incoming.accept().await.is_none());
        })
        .await;
    }
}

#[tokio::test]
async fn streams_fail_when_the_transport_drops() {
    bounded(async {
        let (a, b) = duplex(1 << 16);
        let (session, mut incoming) = server(a, Config::default());
        let mut peer = RawPeer::new(b);
        peer.syn(1, kinds("stdout"), false).await;
        let mut stream = incoming.accept().await.unwrap().reply(Headers::new());
        drop(peer);
        session.closed().await;
        let mut buf = [0u8; 4];
        assert!(stream.read(&mut buf).await.is_err());
        assert!(stream.write_all(b"x").await.is_err());
        assert!(incoming.accept().await.is_none());
        assert!(session.ping().await.is_err());
    })
    .await;
}

#[test]
fn session_futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (a, _b) = duplex(64);
        let (session, mut incoming) = Session::new(a, Role::Client, Config::default());
        is_send(&session.open_stream(Headers::new(), false));
        is_send(&session.ping());
        is_send(&session.close());
        is_send(&incoming.accept());
    });
}

#[tokio::test]
async fn dropped_streams_half_close_and_linger_until_the_peer_fin() {
    bounded(async {
        let (a, b) = duplex(1 << 16);
        let (session, mut incoming) = server(a, Config::default());
        let mut peer = RawPeer::new(b);
        peer.syn(1, kinds("error"), false).await;
        let mut stream = incoming.accept().await.unwrap().reply(Headers::new());
        stream.write_all(b"status").await.unwrap();
        drop(stream);
        assert!(matches!(peer.recv().await, Some(Frame::SynReply { .. })));
        assert_eq!(
            peer.recv().await.unwrap(),
            Frame::Data {
                stream_id: 1,
                fin: false,
                data: Bytes::from_static(b"status")
            }
        );
        assert_eq!(
            peer.recv().await.unwrap(),
            Frame::Data {
                stream_id: 1,
                fin: true,
                data: Bytes::new()
            }
        );
        // Data to the orphan is dropped, the window reopened, no reset.
        peer.data(1, &[0u8; 40_000], false).await;
        peer.data(1, b"", true).await;
        peer.send(Frame::Ping { id: 1 }).await;
        loop {
            match peer.recv().await.unwrap() {
                Frame::WindowUpdate { .. } => {}
                Frame::Ping { id: 1 } => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(session.stream_count(), 0);

        // The client's GOAWAY ends the stream of new streams.
        peer.send(Frame::GoAway {
            last_good_stream_id: 0,
            status: GoAwayStatus::Ok,
        })
        .await;
        assert!(incoming.accept().await.is_none());
    })
    .await;
}

#[tokio::test]
async fn a_peer_that_pings_without_reading_is_cut_off() {
    bounded(async {
        let (a, b) = duplex(1024);
        let (session, _incoming) = server(a, Config::default());
        let (mut rd, mut wr) = tokio::io::split(b);
        let mut wire = Vec::new();
        let mut enc = FrameEncoder::new().unwrap();
        for id in 0..20_000u32 {
            enc.encode(&Frame::Ping { id: 2 * id + 1 }, &mut wire)
                .unwrap();
        }
        // Write everything first; the session stops reading at some point.
        let writer = tokio::spawn(async move {
            let _ = wr.write_all(&wire).await;
            wr
        });
        session.closed().await;
        assert_eq!(
            session.close_reason().as_deref(),
            Some("protocol error: peer does not read its replies")
        );
        let mut dec = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut last = None;
        loop {
            while let Some(f) = dec.decode_buf(&mut buf).unwrap() {
                last = Some(f);
            }
            if rd.read_buf(&mut buf).await.unwrap() == 0 {
                break;
            }
        }
        assert!(matches!(
            last,
            Some(Frame::GoAway {
                status: GoAwayStatus::ProtocolError,
                ..
            })
        ));
        drop(writer.await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn streams_over_the_concurrency_cap_are_refused() {
    bounded(async {
        let (a, b) = duplex(1 << 16);
        let config = Config {
            max_concurrent_streams: 2,
            ..Config::default()
        };
        let (_session, mut incoming) = server(a, config);
        let mut peer = RawPeer::new(b);
        for id in [1, 3, 5] {
            peer.syn(id, kinds("data"), false).await;
        }
        assert_eq!(
            peer.recv().await.unwrap(),
            Frame::RstStream {
                stream_id: 5,
                status: RstStatus::RefusedStream
            }
        );
        let first = incoming.accept().await.unwrap();
        let second = incoming.accept().await.unwrap();
        assert_eq!((first.id(), second.id()), (1, 3));
        // Once one is done, a new stream fits again.
        first.refuse(RstStatus::Cancel);
        peer.syn(7, kinds("data"), false).await;
        assert_eq!(incoming.accept().await.unwrap().id(), 7);
        drop(second);
    })
    .await;
}
