//! Program layout. The filter
//!
//! 1. checks `seccomp_data.arch` against each covered ABI and kills the process
//!    for any other one (so a denylist cannot be bypassed through a foreign ABI);
//! 2. on x86_64, splits x32 calls (bit 30 of the number) from native ones;
//! 3. finds the syscall number's body with a binary search over intervals of
//!    numbers sharing a body (denied and allowed ranges are long, so this is
//!    small code and few comparisons);
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
        let intervals = intervals(&entries, Body::Ret(self.default));
        self.tree(&intervals);
    }

    /// A binary search over intervals of syscall numbers: `jge` on interval
    /// starts down to one interval, whose body is a `ret` or a jump to its
    /// checks.
    fn tree(&mut self, intervals: &[(u32, Body)]) {
        match intervals {
            [] => self.asm.ret(self.default),
            [(_, Body::Ret(ret))] => self.asm.ret(*ret),
            [(_, Body::Checked(label))] => self.asm.goto(*label),
            _ => {
                let (left, right) = intervals.split_at(intervals.len() / 2);
                let right_label = self.asm.label();
                self.asm
                    .jump(Cmp::Ge, right[0].0, Target::To(right_label), Target::Next);
                self.tree(left);
                self.asm.place(right_label);
                self.tree(right);
            }
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

/// Splits the number space into intervals `(start, body)`, each running up
/// to the next start, from `entries` sorted by number: numbers without an
/// entry get `default`, and neighbours with the same body are merged.
fn intervals(entries: &[(u32, Body)], default: Body) -> Vec<(u32, Body)> {
    let mut out = vec![(0, default)];
    for &(nr, body) in entries {
        push_interval(&mut out, nr, body);
        if let Some(after) = nr.checked_add(1) {
            push_interval(&mut out, after, default);
        }
    }
    out
}

fn push_interval(out: &mut Vec<(u32, Body)>, start: u32, body: Body) {
    // An interval starting at the same number would be empty.
    if out.last().is_some_and(|&(s, _)| s == start) {
        out.pop();
    }
    if out.last().is_some_and(|&(_, b)| b == body) {
        return;
    }
    out.push((start, body));
}
