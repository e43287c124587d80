//! Code for one syscall argument comparison. Classic BPF loads 32-bit words,
//! so a 64-bit comparison looks at the high halves first (which decide unless
//! they are equal) and then at the low halves. On ABIs with 32-bit arguments
//! the kernel zero-extends them and only the low halves are compared.

use super::bpf::{Assembler, Cmp, Label, Target};
use super::rules::{Cond, Op};

/// Offset of `seccomp_data.args[0]`.
const ARGS_OFFSET: u32 = 16;

/// Offsets of the low and high 32-bit halves of `seccomp_data.args[index]`.
fn halves(index: u8) -> (u32, u32) {
    let base = ARGS_OFFSET + 8 * u32::from(index);
    if cfg!(target_endian = "little") {
        (base, base + 4)
    } else {
        (base + 4, base)
    }
}

fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}

fn lo(v: u64) -> u32 {
    v as u32
}

/// Emits code that falls through when `cond` holds and jumps to `fail`
/// otherwise. `wide` selects 64-bit (else low-half only) comparison.
pub(crate) fn emit(asm: &mut Assembler, cond: &Cond, wide: bool, fail: Label) {
    let (lo_offset, hi_offset) = halves(cond.index);
    let v = cond.value;
    let mask = match cond.op {
        Op::MaskedEq { mask } => Some(mask),
        _ => None,
    };
    let matched = asm.label();
    if wide {
        asm.load(hi_offset);
        if let Some(mask) = mask {
            asm.and(hi(mask));
        }
        match cond.op {
            // The high halves must be equal; the low halves decide.
            Op::Eq | Op::MaskedEq { .. } => {
                asm.jump(Cmp::Eq, hi(v), Target::Next, Target::To(fail))
            }
            // Different high halves already make the values different.
            Op::Ne => asm.jump(Cmp::Eq, hi(v), Target::Next, Target::To(matched)),
            // A greater high half matches, a smaller one fails.
            Op::Gt | Op::Ge => {
                asm.jump(Cmp::Gt, hi(v), Target::To(matched), Target::Next);
                asm.jump(Cmp::Eq, hi(v), Target::Next, Target::To(fail));
            }
            // A smaller high half matches, a greater one fails.
            Op::Lt | Op::Le => {
                asm.jump(Cmp::Ge, hi(v), Target::Next, Target::To(matched));
                asm.jump(Cmp::Eq, hi(v), Target::Next, Target::To(fail));
            }
        }
    }
    asm.load(lo_offset);
    if let Some(mask) = mask {
        asm.and(lo(mask));
    }
    // Each operator on the low halves as a jump and whether it matches when
    // the jump's comparison holds.
    let (cmp, match_when_true) = match cond.op {
        Op::Eq | Op::MaskedEq { .. } => (Cmp::Eq, true),
        Op::Ne => (Cmp::Eq, false),
        Op::Gt => (Cmp::Gt, true),
        Op::Ge => (Cmp::Ge, true),
        Op::Lt => (Cmp::Ge, false),
        Op::Le => (Cmp::Gt, false),
    };
    if match_when_true {
        asm.jump(cmp, lo(v), Target::Next, Target::To(fail));
    } else {
        asm.jump(cmp, lo(v), Target::To(fail), Target::Next);
    }
    asm.place(matched);
}
