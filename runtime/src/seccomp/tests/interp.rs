//! A classic BPF interpreter for the instructions seccomp filters use, with
//! the kernel's structural checks, to run programs against synthetic
//! `seccomp_data`.

/// `struct seccomp_data`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Data {
    pub(crate) nr: u32,
    pub(crate) arch: u32,
    pub(crate) ip: u64,
    pub(crate) args: [u64; 6],
}

impl Data {
    pub(crate) fn new(arch: u32, nr: u32, args: &[u64]) -> Self {
        let mut data = Data {
            nr,
            arch,
            ..Data::default()
        };
        data.args[..args.len()].copy_from_slice(args);
        data
    }

    fn bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        out[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        out[8..16].copy_from_slice(&self.ip.to_ne_bytes());
        for (i, arg) in self.args.iter().enumerate() {
            out[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
        }
        out
    }
}

const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x54;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

/// Panics unless the kernel would accept `program`'s shape: 1 to 4096
/// instructions, known opcodes, aligned loads inside `seccomp_data`, jumps
/// inside the program, a return at the end.
pub(crate) fn validate(program: &[libc::sock_filter]) {
    assert!(
        !program.is_empty() && program.len() <= 4096,
        "length {}",
        program.len()
    );
    for (pc, insn) in program.iter().enumerate() {
        let left = program.len() - pc - 1;
        match insn.code {
            LD_W_ABS => assert!(insn.k % 4 == 0 && insn.k < 64, "bad load at {pc}"),
            ALU_AND_K | RET_K => {}
            JA => assert!((insn.k as usize) < left, "ja out of range at {pc}"),
            JEQ_K | JGT_K | JGE_K => {
                assert!(
                    usize::from(insn.jt) < left && usize::from(insn.jf) < left,
                    "jump at {pc}"
                )
            }
            code => panic!("unexpected opcode {code:#x} at {pc}"),
        }
    }
    assert_eq!(
        program.last().map(|i| i.code),
        Some(RET_K),
        "program must end with ret"
    );
}

/// Runs `program` on `data` and returns the filter's return value.
pub(crate) fn run(program: &[libc::sock_filter], data: &Data) -> u32 {
    let bytes = data.bytes();
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let insn = program[pc];
        pc += 1;
        let jump = |taken: bool| usize::from(if taken { insn.jt } else { insn.jf });
        match insn.code {
            LD_W_ABS => {
                let k = insn.k as usize;
                a = u32::from_ne_bytes(bytes[k..k + 4].try_into().unwrap());
            }
            ALU_AND_K => a &= insn.k,
            JA => pc += insn.k as usize,
            JEQ_K => pc += jump(a == insn.k),
            JGT_K => pc += jump(a > insn.k),
            JGE_K => pc += jump(a >= insn.k),
            RET_K => return insn.k,
            code => panic!("unexpected opcode {code:#x}"),
        }
    }
}
