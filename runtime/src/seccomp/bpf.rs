//! Classic BPF assembly: the few instructions a seccomp filter needs, symbolic
//! labels, and layout. Classic BPF only jumps forward and a conditional jump's
//! offsets are 8 bits wide, so [`Assembler::finish`] resolves labels and, where
//! a conditional target lies more than 255 instructions ahead, routes the jump
//! through an unconditional `ja` trampoline (whose offset is 32 bits wide).

use super::SeccompError;

/// The kernel's limit on a filter's length (`BPF_MAXINSNS`).
pub(crate) const MAX_INSTRUCTIONS: usize = 4096;

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const ALU_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const JMP_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// A conditional jump's comparison of the accumulator with a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    /// `A == k`
    Eq,
    /// `A > k` (unsigned)
    Gt,
    /// `A >= k` (unsigned)
    Ge,
}

impl Cmp {
    fn code(self) -> u16 {
        let op = match self {
            Cmp::Eq => libc::BPF_JEQ,
            Cmp::Gt => libc::BPF_JGT,
            Cmp::Ge => libc::BPF_JGE,
        };
        (libc::BPF_JMP | op | libc::BPF_K) as u16
    }
}

/// A position in the program, placed once with [`Assembler::place`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Label(usize);

/// Where a conditional jump goes: the next instruction or a label.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    Next,
    To(Label),
}

#[derive(Clone, Copy, Debug)]
enum Item {
    Place(Label),
    Plain {
        code: u16,
        k: u32,
    },
    Jump {
        code: u16,
        k: u32,
        jt: Label,
        jf: Label,
    },
    Goto(Label),
}

/// Builds a program from instructions and labels.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    items: Vec<Item>,
    labels: usize,
}

impl Assembler {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A fresh, not yet placed label.
    pub(crate) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Places `label` before the next instruction emitted.
    pub(crate) fn place(&mut self, label: Label) {
        self.items.push(Item::Place(label));
    }

    /// `A = seccomp_data[offset..offset + 4]`
    pub(crate) fn load(&mut self, offset: u32) {
        self.items.push(Item::Plain {
            code: LD_W_ABS,
            k: offset,
        });
    }

    /// `A &= k`
    pub(crate) fn and(&mut self, k: u32) {
        self.items.push(Item::Plain { code: ALU_AND_K, k });
    }

    /// Ends the filter with the seccomp return value `k`.
    pub(crate) fn ret(&mut self, k: u32) {
        self.items.push(Item::Plain { code: RET_K, k });
    }

    /// Jumps to `jt` when `A cmp k` holds, to `jf` otherwise.
    pub(crate) fn jump(&mut self, cmp: Cmp, k: u32, jt: Target, jf: Target) {
        let jt = self.resolve(jt);
        let jf = self.resolve(jf);
        self.items.push(Item::Jump {
            code: cmp.code(),
            k,
            jt: jt.0,
            jf: jf.0,
        });
        for label in [jt.1, jf.1].into_iter().flatten() {
            self.place(label);
        }
    }

    /// Jumps to `target` unconditionally.
    pub(crate) fn goto(&mut self, target: Label) {
        self.items.push(Item::Goto(target));
    }

    /// Turns `Next` into a label to place right after the jump being emitted
    /// (returned second), so trampolines inserted later keep its meaning.
    fn resolve(&mut self, target: Target) -> (Label, Option<Label>) {
        match target {
            Target::To(label) => (label, None),
            Target::Next => {
                let label = self.label();
                (label, Some(label))
            }
        }
    }

    /// Lays the program out, inserting trampolines until every conditional
    /// jump fits in 8 bits, and encodes it.
    pub(crate) fn finish(self) -> Result<Vec<libc::sock_filter>, SeccompError> {
        let mut items = self.items;
        let mut positions = vec![None; self.labels];
        loop {
            let len = layout(&items, &mut positions);
            if len > MAX_INSTRUCTIONS {
                return Err(SeccompError::TooLarge { len });
            }
            let mut far = Vec::new();
            let mut pc = 0;
            for (index, item) in items.iter().enumerate() {
                match *item {
                    Item::Place(_) => continue,
                    Item::Jump { jt, jf, .. } => {
                        let jt_far = offset(&positions, pc, jt)? > usize::from(u8::MAX);
                        let jf_far = offset(&positions, pc, jf)? > usize::from(u8::MAX);
                        if jt_far || jf_far {
                            far.push((index, jt_far, jf_far));
                        }
                    }
                    Item::Plain { .. } | Item::Goto(_) => {}
                }
                pc += 1;
            }
            if far.is_empty() {
                return encode(&items, &positions);
            }
            items = insert_trampolines(items, &far, &mut positions);
        }
    }
}

/// Rebuilds `items` with a trampoline after each far jump listed in `far`
/// (`(item index, jt is far, jf is far)`, in item order).
fn insert_trampolines(
    items: Vec<Item>,
    far: &[(usize, bool, bool)],
    positions: &mut Vec<Option<usize>>,
) -> Vec<Item> {
    let mut out = Vec::with_capacity(items.len() + 2 * far.len());
    let mut far = far.iter().peekable();
    for (index, item) in items.into_iter().enumerate() {
        let Some(&(_, jt_far, jf_far)) = far.next_if(|f| f.0 == index) else {
            out.push(item);
            continue;
        };
        let Item::Jump {
            code,
            k,
            mut jt,
            mut jf,
        } = item
        else {
            out.push(item);
            continue;
        };
        let mut trampolines = Vec::new();
        for (far, target) in [(jt_far, &mut jt), (jf_far, &mut jf)] {
            if far {
                let hop = Label(positions.len());
                positions.push(None);
                trampolines.push(Item::Place(hop));
                trampolines.push(Item::Goto(*target));
                *target = hop;
            }
        }
        out.push(Item::Jump { code, k, jt, jf });
        out.extend(trampolines);
    }
    out
}

/// Records each label's instruction index; returns the program length.
fn layout(items: &[Item], positions: &mut [Option<usize>]) -> usize {
    positions.iter_mut().for_each(|p| *p = None);
    let mut pc = 0;
    for item in items {
        match *item {
            Item::Place(label) => positions[label.0] = Some(pc),
            _ => pc += 1,
        }
    }
    pc
}

/// The forward distance from the instruction after `pc` to `target`.
fn offset(positions: &[Option<usize>], pc: usize, target: Label) -> Result<usize, SeccompError> {
    let position = positions
        .get(target.0)
        .copied()
        .flatten()
        .ok_or(SeccompError::Internal(
            "jump to a label that was never placed",
        ))?;
    position
        .checked_sub(pc + 1)
        .ok_or(SeccompError::Internal("backward jump"))
}

fn encode(
    items: &[Item],
    positions: &[Option<usize>],
) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let mut program = Vec::with_capacity(items.len());
    for item in items {
        let pc = program.len();
        let insn = match *item {
            Item::Place(_) => continue,
            Item::Plain { code, k } => filter(code, 0, 0, k),
            Item::Jump { code, k, jt, jf } => {
                let short = |label| {
                    u8::try_from(offset(positions, pc, label)?)
                        .map_err(|_| SeccompError::Internal("conditional jump out of range"))
                };
                filter(code, short(jt)?, short(jf)?, k)
            }
            Item::Goto(target) => {
                let k = u32::try_from(offset(positions, pc, target)?)
                    .map_err(|_| SeccompError::Internal("jump out of range"))?;
                filter(JMP_JA, 0, 0, k)
            }
        };
        program.push(insn);
    }
    match program.last() {
        Some(last) if last.code == RET_K => Ok(program),
        _ => Err(SeccompError::Internal("program does not end with a return")),
    }
}

fn filter(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}
