//! The channel between the runtime (parent) and a container process it spawns
//! (init or exec) during setup: a `SOCK_SEQPACKET` socketpair carrying small
//! tagged messages, and the pty master as an `SCM_RIGHTS` fd. Close-on-exec on
//! the child's end makes a successful `execve` read as EOF in the parent.

use std::{
    io::{IoSlice, IoSliceMut},
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

use crate::error::{Error, Result};

const MAX_MSG: usize = 64 * 1024;

/// A message on the sync channel.
#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    /// Parent → child: go on (the payload is the state JSON for hooks, or empty).
    Go(Vec<u8>),
    /// Child → parent: namespaces are set up; run the createRuntime hooks.
    NsReady,
    /// Child → parent: setup done; the child now waits for start (or execs).
    Ready,
    /// Child → parent: setup failed with this message.
    Failed(String),
    /// Child → parent: here is the pty master (sent with the fd attached).
    PtyMaster,
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        let (tag, body): (u8, &[u8]) = match self {
            Msg::Go(p) => (1, p),
            Msg::NsReady => (2, &[]),
            Msg::Ready => (3, &[]),
            Msg::Failed(m) => (4, m.as_bytes()),
            Msg::PtyMaster => (5, &[]),
        };
        let mut v = Vec::with_capacity(1 + body.len());
        v.push(tag);
        v.extend_from_slice(&body[..body.len().min(MAX_MSG - 1)]);
        v
    }

    fn decode(buf: &[u8]) -> Option<Msg> {
        let (&tag, body) = buf.split_first()?;
        Some(match tag {
            1 => Msg::Go(body.to_vec()),
            2 => Msg::NsReady,
            3 => Msg::Ready,
            4 => Msg::Failed(String::from_utf8_lossy(body).into_owned()),
            5 => Msg::PtyMaster,
            _ => return None,
        })
    }
}

/// One end of the sync channel.
#[derive(Debug)]
pub struct SyncSocket {
    fd: OwnedFd,
}

/// Creates the pair: (parent end, child end), both close-on-exec.
pub fn pair() -> Result<(SyncSocket, SyncSocket)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::Sys {
        op: "socketpair for the sync channel".into(),
        source: e.into(),
    })?;
    Ok((SyncSocket { fd: a }, SyncSocket { fd: b }))
}

impl SyncSocket {
    /// Sends `msg`.
    pub fn send(&self, msg: &Msg) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    /// Sends `msg` with `fd` attached.
    pub fn send_with_fd(&self, msg: &Msg, fd: Option<RawFd>) -> Result<()> {
        let data = msg.encode();
        let iov = [IoSlice::new(&data)];
        let fds;
        let cmsgs: &[ControlMessage] = match fd {
            Some(f) => {
                fds = [f];
                &[ControlMessage::ScmRights(&fds)]
            }
            None => &[],
        };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| Error::Sys {
            op: "send on the sync channel".into(),
            source: e.into(),
        })?;
        Ok(())
    }

    /// Receives the next message; `None` at EOF (the peer exec'd or died).
    pub fn recv(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; MAX_MSG];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(r) => {
                    let mut fd = None;
                    if let Ok(cmsgs) = r.cmsgs() {
                        for c in cmsgs {
                            if let ControlMessageOwned::ScmRights(fds) = c {
                                for f in fds {
                                    // SAFETY: the kernel just installed this fd for us; we own it.
                                    let owned = unsafe { OwnedFd::from_raw_fd(f) };
                                    fd.get_or_insert(owned);
                                }
                            }
                        }
                    }
                    break (r.bytes, fd);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(Error::Sys {
                        op: "receive on the sync channel".into(),
                        source: e.into(),
                    })
                }
            }
        };
        if n == 0 {
            return Ok(None);
        }
        match Msg::decode(&buf[..n]) {
            Some(m) => Ok(Some((m, fd))),
            None => Err(Error::Init(format!("unknown sync message tag {}", buf[0]))),
        }
    }

    /// Waits for `want`; a `Failed` message or EOF becomes an error.
    pub fn expect(&self, want: &Msg, what: &str) -> Result<Option<OwnedFd>> {
        match self.recv()? {
            Some((Msg::Failed(m), _)) => Err(Error::Init(m)),
            Some((m, fd)) if std::mem::discriminant(&m) == std::mem::discriminant(want) => Ok(fd),
            Some((m, _)) => Err(Error::Init(format!("expected {what}, got {m:?}"))),
            None => Err(Error::Init(format!(
                "the container process exited before {what}"
            ))),
        }
    }

    /// The raw fd (for the child to keep it across setup).
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_fds() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Go(b"state".to_vec())).unwrap();
        assert_eq!(b.recv().unwrap().unwrap().0, Msg::Go(b"state".to_vec()));
        let f = std::fs::File::open("/dev/null").unwrap();
        b.send_with_fd(&Msg::PtyMaster, Some(f.as_raw_fd()))
            .unwrap();
        let (m, fd) = a.recv().unwrap().unwrap();
        assert_eq!(m, Msg::PtyMaster);
        assert!(fd.is_some());
        b.send(&Msg::Failed("boom".into())).unwrap();
        assert!(matches!(a.expect(&Msg::Ready, "ready"), Err(Error::Init(m)) if m == "boom"));
        drop(b);
        assert!(a.recv().unwrap().is_none());
    }
}
