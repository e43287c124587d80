//! Adding and removing hostPort map elements in berth's nftables table over
//! one long-lived netfilter netlink socket, instead of running `nft` per pod.
//!
//! Why not `nft`: when any nf_tables netlink socket is closed the kernel
//! takes the namespace's commit mutex and waits for pending transaction
//! cleanup, which after an element deletion means an RCU grace period
//! (10-20 ms on a busy machine). Every short-lived `nft` run that deleted a
//! pod's elements paid that wait on exit, and every other nftables change in
//! the namespace queued behind it. This socket stays open as long as the
//! `Network`, so nobody waits; the deleted elements are freed in the
//! background. It also saves a fork/exec and `nft`'s cache dumps per pod.
//!
//! Only set elements are written here: their keys and values are plain
//! data, no expression bytecode. The table, maps and rules are still made by
//! `nft` from a script (see `nft.rs`), once per daemon start.
//!
//! Each call is one nfnetlink batch (one transaction): `BATCH_BEGIN`, one
//! `NEWSETELEM`/`DELSETELEM` message per element with an ack requested,
//! `BATCH_END`. The kernel processes a batch inside `sendmsg`, so every
//! ack or error is queued on the socket when the send returns.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

use crate::error::NetError;

const NLMSG_HDR_LEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;

const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFPROTO_UNSPEC: u8 = 0;
const NFPROTO_INET: u8 = 1;

const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

/// Receive buffer: far more than the acks of one pod's elements.
const RECV_BUF: usize = 64 * 1024;

/// One map element: key and value as nf_tables data (each field of a
/// concatenation padded to 4 bytes, see [`Concat`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ElementData {
    pub map: &'static str,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Whether a batch adds (failing on an existing key) or deletes elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElementOp {
    Create,
    Delete,
}

/// Builds concatenated nf_tables data: every field takes a multiple of 4
/// bytes (one 32-bit register), zero-padded, in network byte order.
#[derive(Debug, Default)]
pub(crate) struct Concat(Vec<u8>);

impl Concat {
    pub fn field(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// The netfilter netlink socket of one `Network`, bound in the namespace of
/// the thread that opened it.
#[derive(Debug)]
pub(crate) struct ElementSocket {
    fd: OwnedFd,
    next_seq: u32,
}

impl ElementSocket {
    pub fn open() -> Result<Self, NetError> {
        let fail = |errno: Errno| NetError::NetlinkSocket {
            target: "nftables".to_string(),
            source: errno.into(),
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(fail)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(fail)?;
        Ok(ElementSocket { fd, next_seq: 1 })
    }

    /// Applies `op` to every element of table `table` (family `inet`) in
    /// one transaction; on failure the kernel's errno for the first element
    /// (or the commit) that failed, and nothing was changed.
    pub fn apply(
        &mut self,
        table: &str,
        op: ElementOp,
        elements: &[ElementData],
    ) -> Result<(), Errno> {
        if elements.is_empty() {
            return Ok(());
        }
        let first_seq = self.next_seq;
        // begin + elements + end
        let count = u32::try_from(elements.len() + 2).map_err(|_| Errno::E2BIG)?;
        self.next_seq = first_seq.wrapping_add(count);
        let batch = encode_batch(first_seq, table, op, elements);
        self.drain();
        let sent = send(self.fd.as_raw_fd(), &batch, MsgFlags::empty())?;
        if sent != batch.len() {
            return Err(Errno::EMSGSIZE);
        }
        let mut first_error = None;
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) | Err(Errno::EAGAIN) => break,
                Ok(len) => {
                    let found = first_error_in(&buf[..len.min(buf.len())], first_seq, count);
                    first_error = first_error.or(found);
                }
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno),
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Discards anything left unread (nothing, unless a reply arrived after
    /// an earlier call stopped reading).
    fn drain(&self) {
        let mut buf = [0u8; 4096];
        while let Ok(len) = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            if len == 0 {
                break;
            }
        }
    }
}

/// The whole batch for `elements`, sequence numbers from `first_seq`.
fn encode_batch(first_seq: u32, table: &str, op: ElementOp, elements: &[ElementData]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64 + elements.len() * 96);
    let mut seq = first_seq;
    let batch_res_id = NFNL_SUBSYS_NFTABLES;
    message(
        &mut buf,
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        seq,
        NFPROTO_UNSPEC,
        batch_res_id,
        |_| {},
    );
    let (kind, flags) = match op {
        ElementOp::Create => (
            NFT_MSG_NEWSETELEM,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ),
        ElementOp::Delete => (NFT_MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK),
    };
    for element in elements {
        seq = seq.wrapping_add(1);
        let msg_type = (NFNL_SUBSYS_NFTABLES << 8) | kind;
        message(&mut buf, msg_type, flags, seq, NFPROTO_INET, 0, |buf| {
            attr(buf, NFTA_SET_ELEM_LIST_TABLE, &c_string(table));
            attr(buf, NFTA_SET_ELEM_LIST_SET, &c_string(element.map));
            nested(buf, NFTA_SET_ELEM_LIST_ELEMENTS, |buf| {
                nested(buf, NFTA_LIST_ELEM, |buf| {
                    nested(buf, NFTA_SET_ELEM_KEY, |buf| {
                        attr(buf, NFTA_DATA_VALUE, &element.key)
                    });
                    if op == ElementOp::Create {
                        nested(buf, NFTA_SET_ELEM_DATA, |buf| {
                            attr(buf, NFTA_DATA_VALUE, &element.value)
                        });
                    }
                });
            });
        });
    }
    seq = seq.wrapping_add(1);
    message(
        &mut buf,
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        seq,
        NFPROTO_UNSPEC,
        batch_res_id,
        |_| {},
    );
    buf
}

/// Appends one netlink message with an nfgenmsg header and `body`.
fn message(
    buf: &mut Vec<u8>,
    msg_type: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    body: impl FnOnce(&mut Vec<u8>),
) {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched below
    buf.extend_from_slice(&msg_type.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    buf.push(family);
    buf.push(0); // NFNETLINK_V0
    buf.extend_from_slice(&res_id.to_be_bytes());
    body(buf);
    patch_len(buf, start);
}

/// Appends an attribute, padded to 4 bytes.
fn attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// Appends a nested attribute whose children `body` writes.
fn nested(buf: &mut Vec<u8>, kind: u16, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&0u16.to_ne_bytes()); // length, patched below
    buf.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    body(buf);
    let len = (buf.len() - start) as u16;
    buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
}

fn patch_len(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

fn c_string(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// The first non-zero error in the netlink messages of `buf` answering one
/// of the `count` messages numbered from `first_seq`.
fn first_error_in(buf: &[u8], first_seq: u32, count: u32) -> Option<Errno> {
    let mut offset = 0;
    while let Some(header) = buf.get(offset..offset + NLMSG_HDR_LEN) {
        let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = u16::from_ne_bytes([header[4], header[5]]);
        let seq = u32::from_ne_bytes([header[8], header[9], header[10], header[11]]);
        if len < NLMSG_HDR_LEN {
            break;
        }
        let ours = seq.wrapping_sub(first_seq) < count;
        if kind == NLMSG_ERROR && ours {
            let code = buf
                .get(offset + NLMSG_HDR_LEN..offset + NLMSG_HDR_LEN + 4)
                .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0);
            if code != 0 {
                return Some(Errno::from_raw(-code));
            }
        }
        offset += len.next_multiple_of(4);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_20000() -> Vec<u8> {
        Concat::default()
            .field(&[6])
            .field(&20000u16.to_be_bytes())
            .into_bytes()
    }

    #[test]
    fn concatenations_pad_every_field_to_a_register() {
        assert_eq!(tcp_20000(), [6, 0, 0, 0, 0x4e, 0x20, 0, 0]);
        let v4 = Concat::default()
            .field(&[10, 0, 0, 2])
            .field(&80u16.to_be_bytes());
        assert_eq!(v4.into_bytes(), [10, 0, 0, 2, 0, 80, 0, 0]);
    }

    #[test]
    fn delete_batch_matches_the_kernel_format() {
        let element = ElementData {
            map: "hp4",
            key: tcp_20000(),
            value: Vec::new(),
        };
        let batch = encode_batch(7, "t", ElementOp::Delete, &[element]);
        let header = |len: u32, kind: u16, flags: u16, seq: u32| {
            let mut h = Vec::new();
            h.extend_from_slice(&len.to_ne_bytes());
            h.extend_from_slice(&kind.to_ne_bytes());
            h.extend_from_slice(&flags.to_ne_bytes());
            h.extend_from_slice(&seq.to_ne_bytes());
            h.extend_from_slice(&0u32.to_ne_bytes());
            h
        };
        let mut expected = header(20, 16, 1, 7);
        expected.extend_from_slice(&[0, 0, 0, 10]);
        expected.extend(header(60, (10 << 8) | 14, 1 | 4, 8));
        expected.extend_from_slice(&[1, 0, 0, 0]);
        for (len, kind, payload) in [(6u16, 1u16, &b"t\0"[..]), (8, 2, b"hp4\0")] {
            expected.extend_from_slice(&len.to_ne_bytes());
            expected.extend_from_slice(&kind.to_ne_bytes());
            expected.extend_from_slice(payload);
            expected.resize(expected.len().next_multiple_of(4), 0);
        }
        for (len, kind) in [(24u16, 0x8003u16), (20, 0x8001), (16, 0x8001), (12, 0x0001)] {
            expected.extend_from_slice(&len.to_ne_bytes());
            expected.extend_from_slice(&kind.to_ne_bytes());
        }
        expected.extend_from_slice(&tcp_20000());
        expected.extend(header(20, 17, 1, 9));
        expected.extend_from_slice(&[0, 0, 0, 10]);
        assert_eq!(batch, expected);
    }

    #[test]
    fn create_batch_carries_the_value_and_refuses_to_replace() {
        let element = ElementData {
            map: "hp4",
            key: tcp_20000(),
            value: vec![10, 0, 0, 2, 0, 80, 0, 0],
        };
        let batch = encode_batch(1, "t", ElementOp::Create, &[element]);
        let flags = u16::from_ne_bytes([batch[26], batch[27]]);
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        // The element message: 60 bytes as for delete, plus DATA(VALUE(8)).
        assert_eq!(
            u32::from_ne_bytes([batch[20], batch[21], batch[22], batch[23]]),
            76
        );
        assert_eq!(batch.len(), 20 + 76 + 20);
    }

    #[test]
    fn errors_are_found_by_sequence_number() {
        let ack = |seq: u32, code: i32| {
            let mut m = Vec::new();
            m.extend_from_slice(&36u32.to_ne_bytes());
            m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            m.extend_from_slice(&0u16.to_ne_bytes());
            m.extend_from_slice(&seq.to_ne_bytes());
            m.extend_from_slice(&0u32.to_ne_bytes());
            m.extend_from_slice(&code.to_ne_bytes());
            m.extend_from_slice(&[0; 16]);
            m
        };
        let mut buf = ack(5, 0);
        buf.extend(ack(6, -libc::EEXIST));
        assert_eq!(first_error_in(&buf, 5, 3), Some(Errno::EEXIST));
        assert_eq!(first_error_in(&buf, 5, 1), None);
        assert_eq!(first_error_in(&ack(99, -libc::ENOENT), 5, 3), None);
        assert_eq!(first_error_in(&[1, 2, 3], 5, 3), None);
    }
}
