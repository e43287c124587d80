//! The bpf(2) calls behind the cgroup v2 device filter: loading a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program and attaching it to the cgroup
//! directory. The cgroups crate has no eBPF support, and no eBPF crate is
//! needed for two calls.

use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::device_filter::Insn;
use super::CgroupError;

// bpf(2) commands and constants, from the kernel's uapi/linux/bpf.h.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;

/// The verifier log size asked for when a load fails.
const LOG_SIZE: usize = 64 * 1024;
const LICENSE: &[u8] = b"Apache-2.0\0";
const PROG_NAME: &[u8] = b"berth_devices";

/// The `BPF_PROG_LOAD` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// Loads `prog` and attaches it as the device filter of the v2 cgroup at
/// `dir`. Attaching without flags replaces the filter a previous `apply`
/// attached, so updates do not pile programs up.
pub(crate) fn attach_device_filter(
    cgroup: &str,
    dir: &Path,
    prog: &[Insn],
) -> Result<(), CgroupError> {
    let fail = |step, log: String| {
        move |source| CgroupError::DeviceFilter {
            cgroup: cgroup.to_string(),
            step,
            log,
            source,
        }
    };
    let prog_fd = match load(prog, None) {
        Ok(fd) => fd,
        Err(first) => {
            // Load again with a log to say why the verifier refused it.
            let mut log = vec![0u8; LOG_SIZE];
            let source = load(prog, Some(&mut log)).err().unwrap_or(first);
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).into_owned();
            return Err(fail("loading the program", text)(source));
        }
    };
    let dir_fd = File::open(dir).map_err(fail("opening the cgroup directory", String::new()))?;
    let mut attr = ProgAttachAttr {
        target_fd: dir_fd.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_ATTACH, &mut attr)
        .map(drop)
        .map_err(fail("attaching the program", String::new()))
}

/// `BPF_PROG_LOAD`; with `log`, asks the verifier to explain into it.
fn load(prog: &[Insn], log: Option<&mut Vec<u8>>) -> io::Result<OwnedFd> {
    let mut prog_name = [0u8; 16];
    prog_name[..PROG_NAME.len()].copy_from_slice(PROG_NAME);
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        prog_name,
        ..Default::default()
    };
    if let Some(log) = log {
        attr.log_level = 1;
        attr.log_size = log.len() as u32;
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    let fd = sys_bpf(BPF_PROG_LOAD, &mut attr)?;
    // SAFETY: a successful BPF_PROG_LOAD returns a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised #[repr(C)] struct laid out as the
    // kernel's `union bpf_attr` member for `cmd`, and the size passed is its
    // own; every pointer inside it points to memory alive for this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
