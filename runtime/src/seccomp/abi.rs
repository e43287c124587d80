//! System call ABIs a filter can cover: their `AUDIT_ARCH_*` values (what the
//! kernel reports in `seccomp_data.arch`), argument width, which ABIs a host
//! can run, and syscall name → number lookup.
//!
//! Numbers come from the `syscalls` crate (tables generated from the kernel
//! sources, per architecture). The x32 ABI has no table there: x32 uses the
//! x86_64 numbers with bit 30 set, except for the calls listed in [`X32_OWN`],
//! which have x32-specific entry points at 512 and above.

use std::str::FromStr;

use oci_spec::runtime::Arch;

/// Bit 30 of the syscall number marks an x32 call on an x86_64 kernel.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

/// x32 calls with their own numbers (bit 30 not included).
const X32_OWN: &[(&str, u32)] = &[
    ("rt_sigaction", 512),
    ("rt_sigreturn", 513),
    ("ioctl", 514),
    ("readv", 515),
    ("writev", 516),
    ("recvfrom", 517),
    ("sendmsg", 518),
    ("recvmsg", 519),
    ("execve", 520),
    ("ptrace", 521),
    ("rt_sigpending", 522),
    ("rt_sigtimedwait", 523),
    ("rt_sigqueueinfo", 524),
    ("sigaltstack", 525),
    ("timer_create", 526),
    ("mq_notify", 527),
    ("kexec_load", 528),
    ("waitid", 529),
    ("set_robust_list", 530),
    ("get_robust_list", 531),
    ("vmsplice", 532),
    ("move_pages", 533),
    ("preadv", 534),
    ("pwritev", 535),
    ("rt_tgsigqueueinfo", 536),
    ("recvmmsg", 537),
    ("sendmmsg", 538),
    ("process_vm_readv", 539),
    ("process_vm_writev", 540),
    ("setsockopt", 541),
    ("getsockopt", 542),
    ("io_setup", 543),
    ("io_submit", 544),
    ("execveat", 545),
    ("preadv2", 546),
    ("pwritev2", 547),
];

/// A system call ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Abi {
    X86_64,
    X32,
    X86,
    Aarch64,
    Arm,
}

impl Abi {
    /// The ABI of the running kernel's native calls.
    pub(crate) fn host() -> Result<Abi, super::SeccompError> {
        if cfg!(target_arch = "x86_64") {
            Ok(Abi::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Ok(Abi::Aarch64)
        } else if cfg!(target_arch = "x86") {
            Ok(Abi::X86)
        } else if cfg!(target_arch = "arm") {
            Ok(Abi::Arm)
        } else {
            Err(super::SeccompError::UnsupportedHost(std::env::consts::ARCH))
        }
    }

    /// The ABI an OCI architecture names; `None` for ones berth has no table for.
    pub(crate) fn from_oci(arch: Arch, host: Abi) -> Option<Abi> {
        match arch {
            Arch::ScmpArchNative => Some(host),
            Arch::ScmpArchX86_64 => Some(Abi::X86_64),
            Arch::ScmpArchX32 => Some(Abi::X32),
            Arch::ScmpArchX86 => Some(Abi::X86),
            Arch::ScmpArchAarch64 => Some(Abi::Aarch64),
            Arch::ScmpArchArm => Some(Abi::Arm),
            _ => None,
        }
    }

    /// Whether a kernel whose native ABI is `host` can run programs of `self`.
    pub(crate) fn runs_on(self, host: Abi) -> bool {
        match host {
            Abi::X86_64 => matches!(self, Abi::X86_64 | Abi::X32 | Abi::X86),
            Abi::Aarch64 => matches!(self, Abi::Aarch64 | Abi::Arm),
            Abi::X32 | Abi::X86 | Abi::Arm => self == host,
        }
    }

    /// The value the kernel reports in `seccomp_data.arch` for this ABI's calls.
    pub(crate) fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::X86 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
            Abi::Arm => AUDIT_ARCH_ARM,
        }
    }

    /// Whether syscall arguments are 64 bits wide (else only the low 32 bits
    /// carry data and only they are compared).
    pub(crate) fn wide_args(self) -> bool {
        !matches!(self, Abi::X86 | Abi::Arm)
    }

    /// The number of syscall `name` in this ABI, as seen in `seccomp_data.nr`.
    pub(crate) fn syscall_number(self, name: &str) -> Option<u32> {
        let id = match self {
            Abi::X86_64 => syscalls::x86_64::Sysno::from_str(name).ok()?.id(),
            Abi::X86 => syscalls::x86::Sysno::from_str(name).ok()?.id(),
            Abi::Aarch64 => syscalls::aarch64::Sysno::from_str(name).ok()?.id(),
            Abi::Arm => syscalls::arm::Sysno::from_str(name).ok()?.id(),
            Abi::X32 => {
                let own = X32_OWN.iter().find(|(own, _)| *own == name);
                let nr = match own {
                    Some(&(_, nr)) => nr,
                    None => Abi::X86_64.syscall_number(name)?,
                };
                return Some(nr | X32_SYSCALL_BIT);
            }
        };
        u32::try_from(id).ok()
    }
}
