//! The error type of every pod-networking operation.

use std::path::PathBuf;

/// Everything that can go wrong while configuring pod networking.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A configuration field has a value the network cannot work with.
    #[error("invalid network config field {field}: {reason}")]
    InvalidConfig {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A pod id that cannot be used as a file name or interface key.
    #[error("invalid pod id {0:?}: use 1-128 characters of [A-Za-z0-9_.-], not starting with '.'")]
    InvalidPodId(String),

    /// A filesystem operation on a state, lock or namespace file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A system call on a network namespace failed.
    #[error("{op} for network namespace {path}: {source}")]
    Netns {
        /// The failing step.
        op: &'static str,
        /// The namespace (or namespace directory) path.
        path: PathBuf,
        /// The errno.
        #[source]
        source: nix::Error,
    },

    /// Connecting to a port on a pod's loopback (port-forward) failed.
    #[error("connect to localhost:{port} in the pod's network namespace: {source}")]
    Dial {
        /// The pod port.
        port: u16,
        /// The connect error.
        #[source]
        source: std::io::Error,
    },

    /// A netlink request was refused by the kernel.
    #[error("netlink {op} on {target}: {source}")]
    Netlink {
        /// The request.
        op: &'static str,
        /// The link, address or route concerned.
        target: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },

    /// A netlink socket could not be opened or driven.
    #[error("netlink socket for {target}: {source}")]
    NetlinkSocket {
        /// The namespace the socket was for.
        target: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A link that should exist was not found.
    #[error("network interface {0} not found")]
    LinkNotFound(String),

    /// The subnet has no free address left.
    #[error("address pool {subnet} is exhausted")]
    PoolExhausted {
        /// The exhausted subnet.
        subnet: String,
    },

    /// A state file could not be parsed.
    #[error("corrupt state file {path}: {reason}")]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },

    /// The pod already has a network configured.
    #[error("pod {0} already has a network configured")]
    AlreadyConfigured(String),

    /// The pod has no network configured.
    #[error("pod {0} has no network configured")]
    NotConfigured(String),

    /// A host port mapping conflicts with another pod's or is malformed.
    #[error("host port mapping {mapping}: {reason}")]
    PortMapping {
        /// The mapping(s), as `host:port->port/proto`.
        mapping: String,
        /// What is wrong.
        reason: String,
    },

    /// The `nft` tool failed to apply a ruleset change.
    #[error("nftables table {table}: {reason}")]
    Nftables {
        /// berth's table.
        table: String,
        /// nft's complaint.
        reason: String,
    },

    /// A kernel setting could not be written.
    #[error("sysctl {path}: {source}")]
    Sysctl {
        /// The `/proc/sys` file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// No usable CNI network configuration was found.
    #[error("no usable cni network config: {0}")]
    NoCniConfig(String),

    /// A CNI plugin failed, timed out or returned something unusable.
    #[error("cni plugin {plugin} ({command}): {reason}")]
    CniPlugin {
        /// The plugin's `type`.
        plugin: String,
        /// `ADD`, `DEL`, `CHECK` or `VERSION`.
        command: &'static str,
        /// The plugin's error message, or why its output was unusable.
        reason: String,
    },

    /// A worker thread used for namespace work died.
    #[error("namespace worker thread for {0} panicked")]
    WorkerPanicked(String),
}

impl NetError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NetError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// The errno carried by a netlink error reply, if any.
pub(crate) fn netlink_errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}
