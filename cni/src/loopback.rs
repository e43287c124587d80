//! Bringing `lo` up in the calling thread's network namespace with the
//! `SIOCGIFFLAGS`/`SIOCSIFFLAGS` ioctls: two syscalls on a throw-away socket,
//! cheaper than a netlink round trip while a namespace is being made.

use std::os::fd::AsRawFd;

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

/// Sets `IFF_UP` on `lo`.
pub(crate) fn bring_up() -> nix::Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: the socket is valid and `req` is a properly sized ifreq that
    // lives across both calls; the kernel reads the name and reads/writes
    // the flags member only.
    unsafe {
        nix::errno::Errno::result(libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req))?;
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        nix::errno::Errno::result(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req))?;
    }
    Ok(())
}
