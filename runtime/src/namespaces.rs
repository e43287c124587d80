//! Linux namespaces of a container: which are new and which are joined by
//! path, in the order they must be entered, and the user namespace id maps.

use std::{
    fs::File,
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::{Path, PathBuf},
};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// One namespace of the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ns {
    /// A new namespace of this type.
    New(CloneFlags),
    /// Join the namespace at this path (e.g. `/proc/PID/ns/net`).
    Join(CloneFlags, PathBuf),
}

/// The namespaces the spec asks for.
#[derive(Debug, Clone, Default)]
pub struct NsPlan {
    /// Each requested namespace, in spec order.
    pub list: Vec<Ns>,
}

/// The order in which joined namespaces are entered: user first (it grants the
/// rights for the others), mount last (it changes how paths resolve).
pub const JOIN_ORDER: [CloneFlags; 6] = [
    CloneFlags::CLONE_NEWUSER,
    CloneFlags::CLONE_NEWIPC,
    CloneFlags::CLONE_NEWUTS,
    CloneFlags::CLONE_NEWNET,
    CloneFlags::CLONE_NEWCGROUP,
    CloneFlags::CLONE_NEWNS,
];

/// The clone flag of a namespace type.
pub fn flag_of(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The `/proc/PID/ns/` file name of a namespace flag.
pub fn proc_name(flag: CloneFlags) -> &'static str {
    match flag {
        f if f == CloneFlags::CLONE_NEWNS => "mnt",
        f if f == CloneFlags::CLONE_NEWCGROUP => "cgroup",
        f if f == CloneFlags::CLONE_NEWUTS => "uts",
        f if f == CloneFlags::CLONE_NEWIPC => "ipc",
        f if f == CloneFlags::CLONE_NEWUSER => "user",
        f if f == CloneFlags::CLONE_NEWPID => "pid",
        f if f == CloneFlags::CLONE_NEWNET => "net",
        _ => "time",
    }
}

impl NsPlan {
    /// Reads `linux.namespaces`, refusing duplicates and unusable combinations.
    pub fn from_spec(spec: &Spec) -> Result<Self> {
        let mut list: Vec<Ns> = Vec::new();
        let nss = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        for (i, ns) in nss.iter().enumerate() {
            let flag = flag_of(ns.typ());
            if list.iter().any(|n| n.flag() == flag) {
                return Err(Error::spec(
                    format!("linux.namespaces[{i}].type"),
                    format!("namespace {:?} listed twice", ns.typ()),
                ));
            }
            list.push(match ns.path() {
                Some(p) if !p.as_os_str().is_empty() => {
                    if !p.exists() {
                        return Err(Error::spec(
                            format!("linux.namespaces[{i}].path"),
                            format!("{} does not exist", p.display()),
                        ));
                    }
                    Ns::Join(flag, p.clone())
                }
                _ => Ns::New(flag),
            });
        }
        let plan = Self { list };
        if plan.joins(CloneFlags::CLONE_NEWUSER) && plan.is_new(CloneFlags::CLONE_NEWPID) {
            return Err(Error::spec(
                "linux.namespaces",
                "joining a user namespace together with a new pid namespace is not supported",
            ));
        }
        Ok(plan)
    }

    /// Whether a new namespace of `flag` is requested.
    pub fn is_new(&self, flag: CloneFlags) -> bool {
        self.list
            .iter()
            .any(|n| matches!(n, Ns::New(f) if *f == flag))
    }

    /// Whether a namespace of `flag` is joined by path.
    pub fn joins(&self, flag: CloneFlags) -> bool {
        self.list
            .iter()
            .any(|n| matches!(n, Ns::Join(f, _) if *f == flag))
    }

    /// Whether the container has its own namespace of `flag` (new or joined).
    pub fn has(&self, flag: CloneFlags) -> bool {
        self.list.iter().any(|n| n.flag() == flag)
    }

    /// The path to join for `flag`, if any.
    pub fn join_path(&self, flag: CloneFlags) -> Option<&Path> {
        self.list.iter().find_map(|n| match n {
            Ns::Join(f, p) if *f == flag => Some(p.as_path()),
            _ => None,
        })
    }

    /// Flags for `clone3`: the namespaces that must exist from the first instruction
    /// (a new user namespace, so the others are owned by it; a new pid namespace,
    /// so the child is its pid 1).
    pub fn clone_flags(&self) -> CloneFlags {
        let mut f = CloneFlags::empty();
        for flag in [CloneFlags::CLONE_NEWUSER, CloneFlags::CLONE_NEWPID] {
            if self.is_new(flag) {
                f |= flag;
            }
        }
        f
    }

    /// Flags the child unshares after joining: the other new namespaces.
    pub fn unshare_flags(&self) -> CloneFlags {
        let mut f = CloneFlags::empty();
        for n in &self.list {
            if let Ns::New(flag) = n {
                if *flag != CloneFlags::CLONE_NEWUSER && *flag != CloneFlags::CLONE_NEWPID {
                    f |= *flag;
                }
            }
        }
        f
    }

    /// Joined namespaces other than pid (which the parent enters for its child),
    /// opened now, in entering order.
    pub fn open_joins(&self) -> Result<Vec<(CloneFlags, File)>> {
        let mut out = Vec::new();
        for flag in JOIN_ORDER {
            if let Some(p) = self.join_path(flag) {
                let f = File::open(p).map_err(|e| Error::io("open namespace", p, e))?;
                out.push((flag, f));
            }
        }
        Ok(out)
    }
}

impl Ns {
    /// The namespace type.
    pub fn flag(&self) -> CloneFlags {
        match self {
            Ns::New(f) | Ns::Join(f, _) => *f,
        }
    }
}

/// Enters the namespace open at `file`.
pub fn setns(file: &File, flag: CloneFlags, what: &Path) -> Result<()> {
    // SAFETY: setns on an fd we own; no memory is passed.
    let rc = unsafe { libc::setns(file.as_raw_fd(), flag.bits()) };
    if rc != 0 {
        return Err(Error::io("setns", what, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// True when `pid`'s namespace of `flag` is the caller's own (no setns needed).
pub fn same_as_self(pid: i32, flag: CloneFlags) -> bool {
    let name = proc_name(flag);
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"));
    let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
    match (theirs, ours) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// Writes the uid and gid maps of a child that has a new user namespace.
pub fn write_id_maps(pid: i32, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<()> {
    for (file, maps) in [("uid_map", uid), ("gid_map", gid)] {
        if maps.is_empty() {
            continue;
        }
        let body: String = maps
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, body).map_err(|e| Error::io("write", path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, LinuxNamespaceBuilder, SpecBuilder};

    fn spec_with(ns: Vec<(LinuxNamespaceType, Option<&str>)>) -> Spec {
        let list = ns
            .into_iter()
            .map(|(t, p)| {
                let mut b = LinuxNamespaceBuilder::default().typ(t);
                if let Some(p) = p {
                    b = b.path(p);
                }
                b.build().unwrap()
            })
            .collect::<Vec<_>>();
        SpecBuilder::default()
            .linux(LinuxBuilder::default().namespaces(list).build().unwrap())
            .build()
            .unwrap()
    }

    #[test]
    fn splits_clone_and_unshare_flags() {
        let spec = spec_with(vec![
            (LinuxNamespaceType::Pid, None),
            (LinuxNamespaceType::Mount, None),
            (LinuxNamespaceType::Network, Some("/proc/self/ns/net")),
        ]);
        let plan = NsPlan::from_spec(&spec).unwrap();
        assert_eq!(plan.clone_flags(), CloneFlags::CLONE_NEWPID);
        assert_eq!(plan.unshare_flags(), CloneFlags::CLONE_NEWNS);
        assert!(plan.joins(CloneFlags::CLONE_NEWNET));
        assert_eq!(plan.open_joins().unwrap().len(), 1);
    }

    #[test]
    fn refuses_duplicates_and_missing_paths() {
        let dup = spec_with(vec![
            (LinuxNamespaceType::Pid, None),
            (LinuxNamespaceType::Pid, None),
        ]);
        let e = NsPlan::from_spec(&dup).unwrap_err().to_string();
        assert!(e.contains("linux.namespaces[1].type"), "{e}");
        let missing = spec_with(vec![(LinuxNamespaceType::Network, Some("/nonexistent/ns"))]);
        let e = NsPlan::from_spec(&missing).unwrap_err().to_string();
        assert!(e.contains("linux.namespaces[0].path"), "{e}");
    }

    #[test]
    fn own_namespaces_are_the_same() {
        let me = std::process::id() as i32;
        assert!(same_as_self(me, CloneFlags::CLONE_NEWNET));
    }
}
