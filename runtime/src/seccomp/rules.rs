//! The spec's `linux.seccomp`, checked and resolved for this host: actions as
//! seccomp return values, flags as `SECCOMP_FILTER_FLAG_*` bits, and each
//! entry's names turned into per-ABI syscall numbers with their rules.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

use super::abi::Abi;
use super::SeccompError;

/// Syscall arguments a comparison can name (`seccomp_data.args` has six).
const ARG_COUNT: usize = 6;

/// A seccomp return value and how restrictive it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Action {
    /// The value the filter returns (`SECCOMP_RET_*` with its data).
    pub(crate) ret: u32,
    /// 0 for the most restrictive action; the kernel's own precedence order.
    pub(crate) rank: u8,
}

/// A comparison operator on one 64-bit syscall argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == value`
    MaskedEq {
        mask: u64,
    },
}

/// One argument comparison: `args[index] op value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Cond {
    pub(crate) index: u8,
    pub(crate) op: Op,
    pub(crate) value: u64,
}

/// One `syscalls[]` entry as it applies to one syscall: all conditions must hold.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Rule {
    pub(crate) action: Action,
    pub(crate) conds: Vec<Cond>,
}

/// The rules of one ABI, by syscall number, in spec order.
#[derive(Clone, Debug)]
pub(crate) struct AbiRules {
    pub(crate) abi: Abi,
    pub(crate) syscalls: BTreeMap<u32, Vec<Rule>>,
}

/// Everything the generator needs.
#[derive(Clone, Debug)]
pub(crate) struct Ruleset {
    pub(crate) default: Action,
    pub(crate) abis: Vec<AbiRules>,
    pub(crate) flags: u32,
}

impl Ruleset {
    /// Checks `seccomp` and resolves it for a kernel whose native ABI is `host`.
    pub(crate) fn from_spec(seccomp: &LinuxSeccomp, host: Abi) -> Result<Self, SeccompError> {
        if let Some(path) = seccomp.listener_path() {
            return Err(SeccompError::ListenerUnsupported { path: path.clone() });
        }
        let default = action(
            seccomp.default_action(),
            seccomp.default_errno_ret(),
            "defaultAction",
            "defaultErrnoRet",
        )?;
        let mut abis: Vec<AbiRules> = select_abis(seccomp, host)
            .into_iter()
            .map(|abi| AbiRules {
                abi,
                syscalls: BTreeMap::new(),
            })
            .collect();
        for (i, entry) in seccomp.syscalls().iter().flatten().enumerate() {
            add_entry(&mut abis, i, entry)?;
        }
        Ok(Ruleset {
            default,
            abis,
            flags: flags(seccomp),
        })
    }
}

/// The host's ABI plus each listed one the host can run, deduplicated. The
/// native ABI is always covered, as a filter created by libseccomp is.
fn select_abis(seccomp: &LinuxSeccomp, host: Abi) -> Vec<Abi> {
    let mut abis = vec![host];
    for &arch in seccomp.architectures().iter().flatten() {
        match Abi::from_oci(arch, host) {
            Some(abi) if abi.runs_on(host) => {
                if !abis.contains(&abi) {
                    abis.push(abi);
                }
            }
            _ => {
                tracing::debug!(%arch, ?host, "seccomp: skipping architecture this host cannot run")
            }
        }
    }
    abis.sort();
    abis
}

fn flags(seccomp: &LinuxSeccomp) -> u32 {
    let mut bits = 0;
    for flag in seccomp.flags().iter().flatten() {
        bits |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                // Only meaningful with a notification listener, which berth never
                // creates; the kernel rejects the flag without one.
                tracing::debug!(
                    "seccomp: ignoring SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (no listener)"
                );
                0
            }
        } as u32;
    }
    bits
}

fn add_entry(abis: &mut [AbiRules], i: usize, entry: &LinuxSyscall) -> Result<(), SeccompError> {
    let names = entry.names();
    if names.is_empty() {
        return Err(SeccompError::NoNames {
            field: format!("syscalls[{i}].names"),
        });
    }
    let which = names.join(",");
    let action = action(
        entry.action(),
        entry.errno_ret(),
        &format!("syscalls[{i}].action ({which})"),
        &format!("syscalls[{i}].errnoRet ({which})"),
    )?;
    let conds = entry
        .args()
        .iter()
        .flatten()
        .enumerate()
        .map(|(j, arg)| cond(arg, &format!("syscalls[{i}].args[{j}].index ({which})")))
        .collect::<Result<Vec<_>, _>>()?;
    for name in names {
        let mut known = false;
        for rules in abis.iter_mut() {
            if let Some(nr) = rules.abi.syscall_number(name) {
                known = true;
                let rule = Rule {
                    action,
                    conds: conds.clone(),
                };
                rules.syscalls.entry(nr).or_default().push(rule);
            } else {
                tracing::trace!(syscall = %name, abi = ?rules.abi, "seccomp: syscall not in this abi");
            }
        }
        if !known {
            tracing::debug!(syscall = %name, field = %format!("syscalls[{i}].names"), "seccomp: skipping unknown syscall");
        }
    }
    Ok(())
}

fn cond(arg: &LinuxSeccompArg, field: &str) -> Result<Cond, SeccompError> {
    let index = arg.index();
    if index >= ARG_COUNT {
        return Err(SeccompError::ArgIndex {
            field: field.to_string(),
            index,
        });
    }
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
        LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
        LinuxSeccompOperator::ScmpCmpLe => Op::Le,
        LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
        LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
        LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            // The spec's `value` is the mask and `valueTwo` the expected result.
            return Ok(Cond {
                index: index as u8,
                op: Op::MaskedEq { mask: arg.value() },
                value: arg.value_two().unwrap_or(0),
            });
        }
    };
    Ok(Cond {
        index: index as u8,
        op,
        value: arg.value(),
    })
}

/// The return value for `action`; `errno` is the ERRNO/TRACE data.
fn action(
    action: LinuxSeccompAction,
    errno: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<Action, SeccompError> {
    let data = |default: u32| {
        let value = errno.unwrap_or(default);
        if value > libc::SECCOMP_RET_DATA {
            return Err(SeccompError::ReturnValueTooLarge {
                field: errno_field.to_string(),
                value,
            });
        }
        Ok(value)
    };
    let (ret, rank) = match action {
        LinuxSeccompAction::ScmpActKillProcess => (libc::SECCOMP_RET_KILL_PROCESS, 0),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            (libc::SECCOMP_RET_KILL_THREAD, 1)
        }
        LinuxSeccompAction::ScmpActTrap => (libc::SECCOMP_RET_TRAP, 2),
        LinuxSeccompAction::ScmpActErrno => {
            (libc::SECCOMP_RET_ERRNO | data(libc::EPERM as u32)?, 3)
        }
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::NotifyUnsupported {
                field: field.to_string(),
            })
        }
        LinuxSeccompAction::ScmpActTrace => (libc::SECCOMP_RET_TRACE | data(0)?, 4),
        LinuxSeccompAction::ScmpActLog => (libc::SECCOMP_RET_LOG, 5),
        LinuxSeccompAction::ScmpActAllow => (libc::SECCOMP_RET_ALLOW, 6),
    };
    Ok(Action { ret, rank })
}

/// The action every filter gives calls of an ABI it does not cover.
pub(crate) const FOREIGN_ARCH: Action = Action {
    ret: libc::SECCOMP_RET_KILL_PROCESS,
    rank: 0,
};
