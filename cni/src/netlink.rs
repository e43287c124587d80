//! Link, address and route changes over rtnetlink: the bridge, the veth pair
//! of each pod and the pod's `eth0` configuration. No `ip` tool involved.
//!
//! The pod end of each veth is created directly inside the pod's namespace
//! (`IFLA_NET_NS_FD` on the peer at creation time), never created in the host
//! and moved, which would unregister and re-register it under rtnl_lock.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::path::Path;

use futures_util::TryStreamExt;
use netlink_packet_route::address::AddressHeaderFlags;
use netlink_packet_route::link::{InfoData, InfoVeth};
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, TokioSocket};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{netlink_errno, NetError};

/// A netlink connection whose driver task ends when this is dropped.
pub(crate) struct Netlink {
    pub handle: Handle,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Netlink {
    /// Connects in the caller's (host) namespace.
    pub fn host() -> Result<Self, NetError> {
        let socket = Socket::new(NETLINK_ROUTE).map_err(|source| NetError::NetlinkSocket {
            target: "host".into(),
            source,
        })?;
        Self::from_socket(socket, "host")
    }

    /// Connects inside the namespace pinned at `netns`.
    pub fn in_netns(netns: &Path) -> Result<Self, NetError> {
        let target = netns.display().to_string();
        let socket = crate::netns::run_in(netns, || {
            Socket::new(NETLINK_ROUTE).map_err(|source| NetError::NetlinkSocket {
                target: target.clone(),
                source,
            })
        })?;
        Self::from_socket(socket, &target)
    }

    fn from_socket(socket: Socket, target: &str) -> Result<Self, NetError> {
        socket
            .set_non_blocking(true)
            .map_err(|source| NetError::NetlinkSocket {
                target: target.to_string(),
                source,
            })?;
        // SAFETY: the descriptor was just taken out of an owned, open netlink
        // socket and is handed over exactly once.
        let socket = unsafe { TokioSocket::from_raw_fd(socket.into_raw_fd()) };
        let (conn, handle, _) = rtnetlink::from_socket(socket);
        let driver = tokio::spawn(conn);
        Ok(Netlink { handle, driver })
    }

    /// Index of the link called `name`, `None` if there is none.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>, NetError> {
        let found = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await;
        match found {
            Ok(Some(msg)) => Ok(Some(msg.header.index)),
            Ok(None) => Ok(None),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(source) => Err(nl_err("get link", name, source)),
        }
    }

    /// Makes sure the bridge `name` exists, is up, has `mtu` and carries
    /// every gateway address; returns its index.
    pub async fn ensure_bridge(
        &self,
        name: &str,
        mtu: u32,
        gateways: &[(IpAddr, u8)],
    ) -> Result<u32, NetError> {
        if self.link_index(name).await?.is_none() {
            let msg = LinkBridge::new(name).mtu(mtu).up().build();
            ignore_errno(self.handle.link().add(msg).execute().await, libc::EEXIST)
                .map_err(|e| nl_err("create bridge", name, e))?;
        }
        let index = self
            .link_index(name)
            .await?
            .ok_or_else(|| NetError::LinkNotFound(name.to_string()))?;
        for &(addr, prefix) in gateways {
            self.add_address(index, addr, prefix, name).await?;
        }
        let up = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(up)
            .execute()
            .await
            .map_err(|e| nl_err("set bridge up", name, e))?;
        Ok(index)
    }

    /// Adds `addr/prefix` to link `index` (IPv6 without DAD); an address
    /// already present is fine.
    pub async fn add_address(
        &self,
        index: u32,
        addr: IpAddr,
        prefix: u8,
        link: &str,
    ) -> Result<(), NetError> {
        let mut req = self.handle.address().add(index, addr, prefix);
        if addr.is_ipv6() {
            req.message_mut().header.flags |= AddressHeaderFlags::Nodad;
        }
        ignore_errno(req.execute().await, libc::EEXIST)
            .map_err(|e| nl_err("add address", &format!("{addr}/{prefix} on {link}"), e))
    }

    /// Creates the veth pair of a pod: `host_name` on the host, attached to
    /// `bridge_index` and up; `pod_name` created directly in `netns`.
    pub async fn create_veth(
        &self,
        host_name: &str,
        pod_name: &str,
        bridge_index: u32,
        netns: &std::fs::File,
        mtu: u32,
    ) -> Result<(), NetError> {
        let peer = LinkUnspec::new_with_name(pod_name)
            .mtu(mtu)
            .setns_by_fd(netns.as_raw_fd())
            .build();
        let msg = LinkVeth::new(host_name, pod_name)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .mtu(mtu)
            .controller(bridge_index)
            .up()
            .build();
        match self.handle.link().add(msg.clone()).execute().await {
            // A detached veth left by an earlier teardown of this pod whose
            // namespace still exists: replace it.
            Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => {
                self.delete_link(host_name).await?;
                self.handle.link().add(msg).execute().await
            }
            other => other,
        }
        .map_err(|e| nl_err("create veth", host_name, e))
    }

    /// Takes the link `name` off its bridge and down; a missing link is
    /// fine. Much cheaper than deleting it: unregistering a veth whose peer
    /// lives in another namespace waits for RCU grace periods (tens of ms).
    pub async fn detach_link(&self, name: &str) -> Result<(), NetError> {
        let Some(index) = self.link_index(name).await? else {
            return Ok(());
        };
        let msg = LinkUnspec::new_with_index(index)
            .nocontroller()
            .down()
            .build();
        ignore_errno(self.handle.link().set(msg).execute().await, libc::ENODEV)
            .map_err(|e| nl_err("detach link", name, e))
    }

    /// Deletes the link `name`; a missing link is fine.
    pub async fn delete_link(&self, name: &str) -> Result<(), NetError> {
        let Some(index) = self.link_index(name).await? else {
            return Ok(());
        };
        ignore_errno(self.handle.link().del(index).execute().await, libc::ENODEV)
            .map_err(|e| nl_err("delete link", name, e))
    }

    /// Configures the pod's interface from inside its namespace: addresses,
    /// link up, default routes through the gateways.
    pub async fn configure_pod_interface(
        &self,
        ifname: &str,
        v4: Option<(Ipv4Addr, u8, Ipv4Addr)>,
        v6: Option<(Ipv6Addr, u8, Ipv6Addr)>,
    ) -> Result<(), NetError> {
        let index = self
            .link_index(ifname)
            .await?
            .ok_or_else(|| NetError::LinkNotFound(ifname.to_string()))?;
        if let Some((addr, prefix, _)) = v4 {
            self.add_address(index, addr.into(), prefix, ifname).await?;
        }
        if let Some((addr, prefix, _)) = v6 {
            self.add_address(index, addr.into(), prefix, ifname).await?;
        }
        let up = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(up)
            .execute()
            .await
            .map_err(|e| nl_err("set link up", ifname, e))?;
        if let Some((_, _, gw)) = v4 {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .build();
            ignore_errno(self.handle.route().add(route).execute().await, libc::EEXIST)
                .map_err(|e| nl_err("add default route", &format!("via {gw}"), e))?;
        }
        if let Some((_, _, gw)) = v6 {
            let route = RouteMessageBuilder::<Ipv6Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .build();
            ignore_errno(self.handle.route().add(route).execute().await, libc::EEXIST)
                .map_err(|e| nl_err("add default route", &format!("via {gw}"), e))?;
        }
        Ok(())
    }
}

fn nl_err(op: &'static str, target: &str, source: rtnetlink::Error) -> NetError {
    NetError::Netlink {
        op,
        target: target.to_string(),
        source,
    }
}

fn ignore_errno(res: Result<(), rtnetlink::Error>, errno: i32) -> Result<(), rtnetlink::Error> {
    match res {
        Err(e) if netlink_errno(&e) == Some(errno) => Ok(()),
        other => other,
    }
}
