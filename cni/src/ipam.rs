//! On-disk address allocation from a pod subnet.
//!
//! Each pool is a directory under `<state_dir>/ipam/`: one file per
//! allocated address, named by the address and holding the owning pod's id,
//! plus `last_reserved` (where the next search starts, so freed addresses
//! are not reused at once) and `lock`. Allocation holds an exclusive `flock`
//! on `lock` and creates the address file with `O_EXCL`, so one address is
//! never handed to two pods, whether the callers are tasks of one berthd or
//! two processes, and allocations survive restarts. The network address, the
//! gateway (first host address) and the IPv4 broadcast address are never
//! handed out.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use nix::fcntl::{Flock, FlockArg};

use crate::error::NetError;

/// One subnet's allocations.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    dir: PathBuf,
    subnet: IpNet,
}

impl Pool {
    /// Opens (creating if needed) the pool for `subnet` under `state_dir`.
    pub fn open(state_dir: &Path, subnet: IpNet) -> Result<Self, NetError> {
        let name = subnet.trunc().to_string().replace('/', "_");
        let dir = state_dir.join("ipam").join(name);
        std::fs::create_dir_all(&dir).map_err(|e| NetError::io("create ipam dir", &dir, e))?;
        Ok(Pool {
            dir,
            subnet: subnet.trunc(),
        })
    }

    /// The gateway address: the subnet's first host address.
    pub fn gateway(&self) -> IpAddr {
        from_u128(self.subnet, to_u128(self.subnet.network()) + 1)
    }

    pub fn prefix_len(&self) -> u8 {
        self.subnet.prefix_len()
    }

    /// Allocates a free address to `pod_id`.
    pub fn allocate(&self, pod_id: &str) -> Result<IpAddr, NetError> {
        let _lock = self.lock()?;
        let first = to_u128(self.subnet.network()) + 2;
        let last = match self.subnet {
            IpNet::V4(_) => to_u128(self.subnet.broadcast()) - 1,
            IpNet::V6(_) => to_u128(self.subnet.broadcast()),
        };
        let size = last.saturating_sub(first) + 1;
        let start = self
            .last_reserved()
            .map(|ip| to_u128(ip) + 1)
            .filter(|n| (first..=last).contains(n))
            .unwrap_or(first);
        for step in 0..size {
            let candidate = first + (start - first + step) % size;
            let ip = from_u128(self.subnet, candidate);
            if self.try_claim(ip, pod_id)? {
                self.set_last_reserved(ip)?;
                return Ok(ip);
            }
        }
        Err(NetError::PoolExhausted {
            subnet: self.subnet.to_string(),
        })
    }

    /// Frees `ip` if `pod_id` holds it; anything else is left alone.
    pub fn release(&self, ip: IpAddr, pod_id: &str) -> Result<(), NetError> {
        let path = self.dir.join(ip.to_string());
        let _lock = self.lock()?;
        match std::fs::read_to_string(&path) {
            Ok(owner) if owner.trim() == pod_id => {
                std::fs::remove_file(&path).map_err(|e| NetError::io("release address", &path, e))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(NetError::io("read address owner", &path, e)),
        }
    }

    /// Every allocation as (address, pod id).
    pub fn allocations(&self) -> Result<Vec<(IpAddr, String)>, NetError> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| NetError::io("list ipam dir", &self.dir, e))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(ip) = name.to_str().and_then(|n| n.parse::<IpAddr>().ok()) else {
                continue;
            };
            let owner = std::fs::read_to_string(entry.path()).unwrap_or_default();
            out.push((ip, owner.trim().to_string()));
        }
        Ok(out)
    }

    fn try_claim(&self, ip: IpAddr, pod_id: &str) -> Result<bool, NetError> {
        let path = self.dir.join(ip.to_string());
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                // No fsync: allocations must outlive berthd, not the
                // machine (a reboot takes every pod namespace with it).
                f.write_all(pod_id.as_bytes())
                    .map_err(|e| NetError::io("write address owner", &path, e))?;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(NetError::io("claim address", &path, e)),
        }
    }

    fn last_reserved(&self) -> Option<IpAddr> {
        let text = std::fs::read_to_string(self.dir.join("last_reserved")).ok()?;
        text.trim().parse().ok()
    }

    fn set_last_reserved(&self, ip: IpAddr) -> Result<(), NetError> {
        let path = self.dir.join("last_reserved");
        std::fs::write(&path, ip.to_string()).map_err(|e| NetError::io("write", &path, e))
    }

    fn lock(&self) -> Result<Flock<File>, NetError> {
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| NetError::io("open ipam lock", &path, e))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| NetError::io("lock ipam", &path, errno.into()))
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(subnet: IpNet, n: u128) -> IpAddr {
    match subnet {
        IpNet::V4(_) => IpAddr::V4((n as u32).into()),
        IpNet::V6(_) => IpAddr::V6(n.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_distinct_addresses_and_skips_gateway_and_broadcast() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::open(dir.path(), "10.1.2.0/29".parse().unwrap()).unwrap();
        assert_eq!(pool.gateway().to_string(), "10.1.2.1");
        let ips: Vec<_> = (0..5)
            .map(|i| pool.allocate(&format!("p{i}")).unwrap().to_string())
            .collect();
        assert_eq!(
            ips,
            ["10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]
        );
        assert!(matches!(
            pool.allocate("p5"),
            Err(NetError::PoolExhausted { .. })
        ));
        pool.release("10.1.2.4".parse().unwrap(), "p2").unwrap();
        assert_eq!(pool.allocate("p6").unwrap().to_string(), "10.1.2.4");
    }

    #[test]
    fn release_only_frees_the_owners_address() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::open(dir.path(), "10.1.3.0/24".parse().unwrap()).unwrap();
        let ip = pool.allocate("a").unwrap();
        pool.release(ip, "b").unwrap();
        assert_eq!(pool.allocations().unwrap(), vec![(ip, "a".to_string())]);
        pool.release(ip, "a").unwrap();
        pool.release(ip, "a").unwrap();
        assert!(pool.allocations().unwrap().is_empty());
    }

    #[test]
    fn survives_reopen_and_threads() {
        let dir = tempfile::tempdir().unwrap();
        let subnet: IpNet = "fd00:1::/120".parse().unwrap();
        let ips: Vec<IpAddr> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let path = dir.path();
                    s.spawn(move || {
                        let pool = Pool::open(path, subnet).unwrap();
                        (0..10)
                            .map(|i| pool.allocate(&format!("t{t}-{i}")).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: std::collections::HashSet<_> = ips.iter().collect();
        assert_eq!(unique.len(), 80);
        let reopened = Pool::open(dir.path(), subnet).unwrap();
        assert_eq!(reopened.allocations().unwrap().len(), 80);
    }
}
