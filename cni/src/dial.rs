//! Dialling a TCP port on a pod's loopback from the host (port-forward): the
//! socket is made and connected by a short-lived thread that has joined the
//! pod's network namespace, and stays bound to that namespace when it is
//! handed back. `localhost` is tried as IPv4 first, then IPv6, as CRI
//! runtimes dial it.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::error::NetError;
use crate::netns;

/// Connects to `localhost:port` in the network namespace pinned at `netns`
/// (`None`: the host's, for hostNetwork pods), giving up after `timeout`.
pub fn dial_localhost(
    netns: Option<&Path>,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, NetError> {
    match netns {
        Some(path) => netns::run_in(path, || connect(port, timeout)),
        None => connect(port, timeout),
    }
}

fn connect(port: u16, timeout: Duration) -> Result<TcpStream, NetError> {
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match TcpStream::connect_timeout(&v4, timeout) {
        Ok(s) => Ok(s),
        Err(e4) => {
            let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
            match TcpStream::connect_timeout(&v6, timeout) {
                Ok(s) => Ok(s),
                // No IPv6 loopback in the namespace: the IPv4 error says more.
                Err(e6)
                    if matches!(
                        e6.kind(),
                        ErrorKind::AddrNotAvailable | ErrorKind::NetworkUnreachable
                    ) || e6.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
                {
                    Err(NetError::Dial { port, source: e4 })
                }
                Err(e6) if e4.kind() == ErrorKind::ConnectionRefused => {
                    Err(NetError::Dial { port, source: e6 })
                }
                Err(_) => Err(NetError::Dial { port, source: e4 }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn dials_the_host_loopback_without_a_namespace() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let mut c = dial_localhost(None, port, Duration::from_secs(5)).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
    }

    #[test]
    fn a_closed_port_names_the_port() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let e = dial_localhost(None, port, Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains(&port.to_string()), "{e}");
    }

    #[test]
    fn dials_inside_a_pinned_namespace() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        netns::prepare_dir(dir.path()).unwrap();
        let path = netns::create(dir.path(), "dialtest").unwrap();
        // A listener inside the namespace, on a port nothing on the host has.
        let listener = netns::run_in(&path, || {
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .map_err(|e| NetError::io("bind", Path::new("lo"), e))
        })
        .unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut c = dial_localhost(Some(&path), port, Duration::from_secs(5)).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"pod").unwrap();
        let mut buf = [0u8; 3];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pod");
        drop(listener);
        netns::remove(&path).unwrap();
        netns::release_dir(dir.path()).unwrap();
    }
}
