//! Program layout. The filter
//!
//! 1. checks `seccomp_data.arch` against each covered ABI and kills the process
//!    for any other one (so a denylist cannot be bypassed through a foreign ABI);
//! 2. on x86_64, splits x32 calls (bit 30 of the number) from native ones;
//! 3. finds the syscall number with a binary search over the ABI's sorted
//!    numbers, ending in short runs of `jeq` (small code, few comparisons);
//! 4. runs the syscall's body: a bare `ret` when its rules have no argument
//!    comparisons, otherwise a shared block of argument checks (emitted once
//!    per distinct block, after all the searches).
//!
//! A body tries its rules with argument comparisons first, most restrictive
//! action first (the kernel's precedence: KILL_PROCESS, KILL_THREAD, TRAP,
//! ERRNO, TRACE, LOG, ALLOW; ties in spec order); the first whose comparisons
//! all hold decides. Without a match the syscall's rule without comparisons
//! decides (the most restrictive one if there are several), else the default
//! action.

use std::collections::HashMap;

use super::abi::{Abi, X32_SYSCALL_BIT};
use super::args;
use super::bpf::{Assembler, Cmp, Label, Target};
use super::rules::{AbiRules, Rule, Ruleset, FOREIGN_ARCH};
use super::SeccompError;

/// Offset of `seccomp_data.nr`.
const NR_OFFSET: u32 = 0;
/// Offset of `seccomp_data.arch`.
const ARCH_OFFSET: u32 = 4;
/// Longest run of syscall numbers searched linearly.
const LEAF_SIZE: usize = 8;

/// A block of argument checks, shared by every syscall with the same rules.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CheckedBody {
    wide: bool,
    /// Rules with comparisons, in the order they are tried.
    rules: Vec<Rule>,
    /// The return value when none of `rules` matches.
    fallback: u32,
}

/// What a syscall's number leads to.
#[derive(Clone, Copy, Debug)]
enum Body {
    Ret(u32),
    Checked(Label),
}

struct Generator {
    asm: Assembler,
    default: u32,
    bodies: Vec<(CheckedBody, Label)>,
    body_index: HashMap<CheckedBody, usize>,
}

/// Generates the filter for `ruleset`.
pub(crate) fn generate(ruleset: &Ruleset) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let mut gen = Generator {
        asm: Assembler::new(),
        default: ruleset.default.ret,
        bodies: Vec::new(),
        body_index: HashMap::new(),
    };
    gen.program(&ruleset.abis);
    gen.asm.finish()
}

impl Generator {
    fn program(&mut self, abis: &[AbiRules]) {
        let mut sections: Vec<(u32, Label)> = Vec::new();
        for rules in abis {
            let audit = rules.abi.audit_arch();
            if !sections.iter().any(|&(a, _)| a == audit) {
                let label = self.asm.label();
                sections.push((audit, label));
            }
        }
        self.asm.load(ARCH_OFFSET);
        for &(audit, label) in &sections {
            self.asm
                .jump(Cmp::Eq, audit, Target::To(label), Target::Next);
        }
        self.asm.ret(FOREIGN_ARCH.ret);
        for &(audit, label) in &sections {
            self.asm.place(label);
            self.asm.load(NR_OFFSET);
            let find = |abi: Abi| abis.iter().find(|r| r.abi == abi);
            if audit == Abi::X86_64.audit_arch() {
                self.x86_64_section(find(Abi::X86_64), find(Abi::X32));
            } else if let Some(rules) = abis.iter().find(|r| r.abi.audit_arch() == audit) {
                self.search(rules);
            }
        }
        let bodies = std::mem::take(&mut self.bodies);
        for (body, label) in &bodies {
            self.checked_body(body, *label);
        }
    }

    /// x86_64 and x32 calls share an arch value; bit 30 of the number tells
    /// them apart. A number of -1 (a tracer skipping the call) is no x32 call.
    fn x86_64_section(&mut self, native: Option<&AbiRules>, x32: Option<&AbiRules>) {
        let native_label = self.asm.label();
        let x32_label = self.asm.label();
        self.asm.jump(
            Cmp::Ge,
            X32_SYSCALL_BIT,
            Target::Next,
            Target::To(native_label),
        );
        self.asm.jump(
            Cmp::Eq,
            u32::MAX,
            Target::To(native_label),
            Target::To(x32_label),
        );
        for (label, rules) in [(native_label, native), (x32_label, x32)] {
            self.asm.place(label);
            match rules {
                Some(rules) => self.search(rules),
                None => self.asm.ret(FOREIGN_ARCH.ret),
            }
        }
    }

    /// The search over one ABI's syscall numbers (the accumulator holds `nr`).
    fn search(&mut self, rules: &AbiRules) {
        let wide = rules.abi.wide_args();
        let entries: Vec<(u32, Body)> = rules
            .syscalls
            .iter()
            .filter_map(|(&nr, rules)| Some((nr, self.body(rules, wide)?)))
            .collect();
        self.tree(&entries);
    }

    fn tree(&mut self, entries: &[(u32, Body)]) {
        if entries.len() > LEAF_SIZE {
            let (left, right) = entries.split_at(entries.len() / 2);
            let right_label = self.asm.label();
            self.asm
                .jump(Cmp::Ge, right[0].0, Target::To(right_label), Target::Next);
            self.tree(left);
            self.asm.place(right_label);
            self.tree(right);
            return;
        }
        let mut local_rets: Vec<(u32, Label)> = Vec::new();
        for &(nr, body) in entries {
            let target = match body {
                Body::Checked(label) => label,
                Body::Ret(ret) => match local_rets.iter().find(|&&(r, _)| r == ret) {
                    Some(&(_, label)) => label,
                    None => {
                        let label = self.asm.label();
                        local_rets.push((ret, label));
                        label
                    }
                },
            };
            self.asm.jump(Cmp::Eq, nr, Target::To(target), Target::Next);
        }
        self.asm.ret(self.default);
        for (ret, label) in local_rets {
            self.asm.place(label);
            self.asm.ret(ret);
        }
    }

    /// The body for a syscall with `rules`; `None` when it amounts to the
    /// default action (the syscall then needs no entry at all).
    fn body(&mut self, rules: &[Rule], wide: bool) -> Option<Body> {
        let mut checked: Vec<Rule> = rules
            .iter()
            .filter(|r| !r.conds.is_empty())
            .cloned()
            .collect();
        checked.sort_by_key(|r| r.action.rank);
        let fallback = rules
            .iter()
            .filter(|r| r.conds.is_empty())
            .min_by_key(|r| r.action.rank)
            .map_or(self.default, |r| r.action.ret);
        // Trailing rules that return the fallback anyway change nothing.
        while checked.last().is_some_and(|r| r.action.ret == fallback) {
            checked.pop();
        }
        if checked.is_empty() {
            return (fallback != self.default).then_some(Body::Ret(fallback));
        }
        let body = CheckedBody {
            wide,
            rules: checked,
            fallback,
        };
        let label = match self.body_index.get(&body) {
            Some(&index) => self.bodies[index].1,
            None => {
                let label = self.asm.label();
                self.body_index.insert(body.clone(), self.bodies.len());
                self.bodies.push((body, label));
                label
            }
        };
        Some(Body::Checked(label))
    }

    fn checked_body(&mut self, body: &CheckedBody, label: Label) {
        self.asm.place(label);
        for rule in &body.rules {
            let next_rule = self.asm.label();
            for cond in &rule.conds {
                args::emit(&mut self.asm, cond, body.wide, next_rule);
            }
            self.asm.ret(rule.action.ret);
            self.asm.place(next_rule);
        }
        self.asm.ret(body.fallback);
    }
}
