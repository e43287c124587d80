//! The cgroup v2 device filter: compiles device rules into a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program (cgroup v2 has no devices files;
//! the kernel asks an attached eBPF program instead). Pure code generation;
//! [`super::bpf`] loads and attaches the result.
//!
//! The program reads the `bpf_cgroup_dev_ctx` (`access_type` = access bits
//! << 16 | device type, then major, then minor) and checks the rules from
//! last to first: the first match decides, so the last matching rule wins,
//! as with v1's ordered writes. With no match the access is allowed, as a
//! new v1 cgroup inherits its parent's allow-all. An allow rule matches when
//! it grants every requested access bit; a deny rule when it names any.

use super::devices::{DeviceKind, DeviceRule, ACCESS_ALL};

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u8,
    /// dst register in the low nibble, src register in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (class | operation | source), from the kernel's eBPF encoding.
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst &= imm
const ALU32_RSH_K: u8 = 0x74; // dst >>= imm
const ALU32_MOV_K: u8 = 0xb4; // dst = imm
const JMP_JA: u8 = 0x05; // pc += off
const JMP_JNE_K: u8 = 0x55; // if dst != imm: pc += off
const JMP_JSET_K: u8 = 0x45; // if dst & imm: pc += off
const JMP_EXIT: u8 = 0x95; // return r0

// Registers: r1 holds the context on entry; r0 is the verdict.
const R0: u8 = 0;
const R1: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

// Device types in `access_type` (`BPF_DEVCG_DEV_*`).
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// The program for `rules` (in spec order).
pub(crate) fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_MEM_W, R_TYPE, R1, 0, 0),
        insn(ALU32_AND_K, R_TYPE, 0, 0, 0xffff),
        insn(LDX_MEM_W, R_ACCESS, R1, 0, 0),
        insn(ALU32_RSH_K, R_ACCESS, 0, 0, 16),
        insn(LDX_MEM_W, R_MAJOR, R1, 4, 0),
        insn(LDX_MEM_W, R_MINOR, R1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        prog.extend(rule_block(rule));
        if matches_everything(rule) {
            // Nothing after it runs, and the verifier refuses dead code.
            return prog;
        }
    }
    prog.extend(verdict(true));
    prog
}

/// Whether `rule` matches every access (its block has no checks).
fn matches_everything(rule: &DeviceRule) -> bool {
    rule.kind == DeviceKind::All
        && rule.major.is_none()
        && rule.minor.is_none()
        && rule.access & ACCESS_ALL == ACCESS_ALL
}

/// `r0 = allow; exit`.
fn verdict(allow: bool) -> [Insn; 2] {
    [
        insn(ALU32_MOV_K, R0, 0, 0, i32::from(allow)),
        insn(JMP_EXIT, 0, 0, 0, 0),
    ]
}

/// The checks of one rule, each jumping past the block on a mismatch,
/// then the rule's verdict.
fn rule_block(rule: &DeviceRule) -> Vec<Insn> {
    // (instruction, whether its offset is "to the end of the block")
    let mut block: Vec<(Insn, bool)> = Vec::new();
    let mut skip_unless_equal =
        |reg, value: i32| block.push((insn(JMP_JNE_K, reg, 0, 0, value), true));
    match rule.kind {
        DeviceKind::All => {}
        DeviceKind::Char => skip_unless_equal(R_TYPE, DEV_CHAR),
        DeviceKind::Block => skip_unless_equal(R_TYPE, DEV_BLOCK),
    }
    if let Some(major) = rule.major {
        skip_unless_equal(R_MAJOR, major as i32);
    }
    if let Some(minor) = rule.minor {
        skip_unless_equal(R_MINOR, minor as i32);
    }
    let access = (rule.access & ACCESS_ALL) as i32;
    if access != ACCESS_ALL as i32 {
        if rule.allow {
            // Skip if anything outside the granted bits is requested.
            let outside = !access & ACCESS_ALL as i32;
            block.push((insn(JMP_JSET_K, R_ACCESS, 0, 0, outside), true));
        } else {
            // Match if any named bit is requested; otherwise skip.
            block.push((insn(JMP_JSET_K, R_ACCESS, 0, 1, access), false));
            block.push((insn(JMP_JA, 0, 0, 0, 0), true));
        }
    }
    block.extend(verdict(rule.allow).map(|i| (i, false)));
    let len = block.len();
    block
        .into_iter()
        .enumerate()
        .map(|(at, (mut i, to_end))| {
            if to_end {
                i.off = (len - at - 1) as i16;
            }
            i
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices::{
        DeviceRule, ACCESS_MKNOD, ACCESS_READ, ACCESS_WRITE, DEFAULT_RULES,
    };

    /// Runs `prog` the way the kernel would for one device access; only the
    /// instructions the generator emits are understood.
    fn run(prog: &[Insn], dev_type: u32, access: u32, major: u32, minor: u32) -> u32 {
        let ctx = [(access << 16) | dev_type, major, minor];
        let mut reg = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let imm = i.imm as i64 as u64;
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1);
                    reg[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                ALU32_AND_K => reg[dst] = (reg[dst] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => reg[dst] = ((reg[dst] as u32) >> i.imm) as u64,
                ALU32_MOV_K => reg[dst] = i.imm as u32 as u64,
                JMP_JA => pc += i.off as usize,
                JMP_JNE_K if reg[dst] != imm => pc += i.off as usize,
                JMP_JSET_K if reg[dst] & imm != 0 => pc += i.off as usize,
                JMP_JNE_K | JMP_JSET_K => {}
                JMP_EXIT => return reg[0] as u32,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    const RW: u32 = ACCESS_READ | ACCESS_WRITE;
    const CHAR: u32 = DEV_CHAR as u32;
    const BLOCK: u32 = DEV_BLOCK as u32;

    fn deny_all() -> DeviceRule {
        DeviceRule {
            allow: false,
            kind: DeviceKind::All,
            major: None,
            minor: None,
            access: ACCESS_ALL,
        }
    }

    #[test]
    fn deny_all_then_defaults() {
        let mut rules = vec![deny_all()];
        rules.extend(DEFAULT_RULES);
        let prog = program(&rules);
        assert_eq!(run(&prog, CHAR, RW, 1, 3), 1, "/dev/null");
        assert_eq!(run(&prog, CHAR, RW, 136, 7), 1, "/dev/pts/7");
        assert_eq!(run(&prog, CHAR, ACCESS_READ, 1, 11), 0, "/dev/kmsg");
        assert_eq!(run(&prog, BLOCK, RW, 7, 0), 0, "loop0");
        assert_eq!(run(&prog, BLOCK, ACCESS_MKNOD, 7, 0), 1, "mknod loop0");
        assert_eq!(run(&prog, BLOCK, ACCESS_MKNOD | ACCESS_READ, 7, 0), 0);
    }

    #[test]
    fn later_rules_win_and_partial_access_is_checked() {
        let read_only_loop = DeviceRule {
            allow: true,
            kind: DeviceKind::Block,
            major: Some(7),
            minor: None,
            access: ACCESS_READ,
        };
        let deny_loop1_write = DeviceRule {
            allow: false,
            kind: DeviceKind::Block,
            major: Some(7),
            minor: Some(1),
            access: ACCESS_WRITE,
        };
        let prog = program(&[deny_all(), read_only_loop, deny_loop1_write]);
        assert_eq!(run(&prog, BLOCK, ACCESS_READ, 7, 0), 1);
        assert_eq!(run(&prog, BLOCK, RW, 7, 0), 0);
        assert_eq!(run(&prog, BLOCK, ACCESS_READ, 7, 1), 1);
        assert_eq!(run(&prog, BLOCK, RW, 7, 1), 0);
        assert_eq!(run(&prog, CHAR, ACCESS_READ, 7, 0), 0);
    }

    #[test]
    fn nothing_follows_a_rule_that_matches_everything() {
        let mut rules = vec![deny_all()];
        rules.extend(DEFAULT_RULES);
        let prog = program(&rules);
        // The last block is deny-all's bare verdict: `r0 = 0; exit`.
        assert_eq!(prog[prog.len() - 2..], verdict(false));
        let allow_all = DeviceRule {
            allow: true,
            ..deny_all()
        };
        let prog = program(&[deny_all(), allow_all]);
        assert_eq!(prog.len(), 6 + 2, "prologue and one verdict");
        assert_eq!(run(&prog, CHAR, RW, 1, 11), 1);
    }

    #[test]
    fn no_rules_allow_everything() {
        assert_eq!(run(&program(&[]), CHAR, RW, 1, 1), 1);
    }
}
