//! Pure tests of the generator: programs are compiled for an x86_64 (or
//! aarch64) kernel and run on synthetic `seccomp_data` by the interpreter.

use super::interp::{run, validate, Data};
use crate::seccomp::abi::Abi;
use crate::seccomp::{compile_for, parse_profile, runtime_default, Program, SeccompError};

const X86_64: u32 = 0xc000_003e;
const I386: u32 = 0x4000_0003;
const AARCH64: u32 = 0xc000_00b7;
const ARM: u32 = 0x4000_0028;
const X32_BIT: u32 = 0x4000_0000;

const ALLOW: u32 = 0x7fff_0000;
const LOG: u32 = 0x7ffc_0000;
const TRAP: u32 = 0x0003_0000;
const KILL_THREAD: u32 = 0;
const KILL_PROCESS: u32 = 0x8000_0000;

fn errno(e: i32) -> u32 {
    0x0005_0000 | e as u32
}

fn trace(data: u32) -> u32 {
    0x7ff0_0000 | data
}

// x86_64 numbers.
const GETPID: u32 = 39;
const GETPPID: u32 = 110;
const EXECVE: u32 = 59;
const PERSONALITY: u32 = 135;
const CLONE: u32 = 56;
const CLONE3: u32 = 435;
const MOUNT: u32 = 165;
const UNSHARE: u32 = 272;
const SETNS: u32 = 308;
// i386, aarch64 and x32-specific numbers.
const I386_GETPID: u32 = 20;
const AARCH64_GETPID: u32 = 172;
const X32_EXECVE: u32 = 520;

fn compile_on(json: &str, host: Abi) -> Result<Program, SeccompError> {
    let spec = parse_profile(json)?;
    let program = compile_for(&spec, host)?;
    validate(&program.instructions);
    Ok(program)
}

fn program(json: &str) -> Program {
    compile_on(json, Abi::X86_64).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn eval(program: &Program, arch: u32, nr: u32, args: &[u64]) -> u32 {
    run(&program.instructions, &Data::new(arch, nr, args))
}

/// Boundary values of the halves: zero, one, around 2^31 and 2^32, all ones.
const EDGES: &[u64] = &[
    0,
    1,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0x1_ffff_ffff,
    0x2_0000_0000,
    0xffff_ffff_0000_0000,
    0xffff_fffe_ffff_ffff,
    0xffff_ffff_ffff_fffe,
    u64::MAX,
    0x1234_5678_9abc_def0,
    0x1234_5678_9abc_def1,
    0x1234_5679_9abc_def0,
    0x1234_5677_9abc_def0,
];

const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
];

fn holds(op: &str, a: u64, v: u64) -> bool {
    match op {
        "SCMP_CMP_NE" => a != v,
        "SCMP_CMP_LT" => a < v,
        "SCMP_CMP_LE" => a <= v,
        "SCMP_CMP_EQ" => a == v,
        "SCMP_CMP_GE" => a >= v,
        "SCMP_CMP_GT" => a > v,
        _ => unreachable!(),
    }
}

/// A profile allowing everything but `getpid` when its argument matches.
fn arg_profile(archs: &str, index: usize, arg: &str) -> String {
    format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","architectures":[{archs}],"syscalls":[
            {{"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":7,
              "args":[{{"index":{index},{arg}}}]}}]}}"#
    )
}

#[test]
fn every_operator_compares_all_64_bits() {
    for op in OPS {
        for &v in EDGES {
            let p = program(&arg_profile("", 2, &format!(r#""value":{v},"op":"{op}""#)));
            for &a in EDGES {
                let want = if holds(op, a, v) { errno(7) } else { ALLOW };
                let got = eval(&p, X86_64, GETPID, &[0, 0, a]);
                assert_eq!(got, want, "{op}: arg {a:#x} against {v:#x}");
            }
        }
    }
}

#[test]
fn masked_eq_compares_both_halves_under_the_mask() {
    let masks = [
        0xffu64,
        0xffff_ffff,
        0xffff_ffff_0000_0000,
        0x8000_0000_0000_0001,
        u64::MAX,
    ];
    for mask in masks {
        for &a0 in EDGES {
            // Expect the masked value of one edge, or a value the mask cannot produce.
            for want_value in [a0 & mask, (a0 & mask) ^ 1] {
                let arg =
                    format!(r#""value":{mask},"valueTwo":{want_value},"op":"SCMP_CMP_MASKED_EQ""#);
                let p = program(&arg_profile("", 5, &arg));
                for &a in EDGES {
                    let want = if a & mask == want_value {
                        errno(7)
                    } else {
                        ALLOW
                    };
                    let got = eval(&p, X86_64, GETPID, &[0, 0, 0, 0, 0, a]);
                    assert_eq!(got, want, "({a:#x} & {mask:#x}) == {want_value:#x}");
                }
            }
        }
    }
}

#[test]
fn masked_eq_without_value_two_expects_zero() {
    let p = program(&arg_profile(
        "",
        0,
        r#""value":6,"op":"SCMP_CMP_MASKED_EQ""#,
    ));
    assert_eq!(eval(&p, X86_64, GETPID, &[8]), errno(7));
    assert_eq!(eval(&p, X86_64, GETPID, &[2]), ALLOW);
}

#[test]
fn thirty_two_bit_abis_compare_the_low_half() {
    for op in OPS {
        for &v in EDGES {
            let arg = format!(r#""value":{v},"op":"{op}""#);
            let p = program(&arg_profile(r#""SCMP_ARCH_X86""#, 1, &arg));
            // The kernel zero-extends 32-bit arguments.
            for &a in EDGES.iter().filter(|&&a| a <= u64::from(u32::MAX)) {
                let want = if holds(op, a, u64::from(v as u32)) {
                    errno(7)
                } else {
                    ALLOW
                };
                let got = eval(&p, I386, I386_GETPID, &[0, a]);
                assert_eq!(got, want, "i386 {op}: arg {a:#x} against {v:#x}");
            }
        }
    }
}

#[test]
fn args_of_one_entry_are_anded() {
    let p = program(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],
            "action":"SCMP_ACT_ERRNO","errnoRet":3,"args":[
              {"index":0,"value":10,"op":"SCMP_CMP_GE"},
              {"index":0,"value":20,"op":"SCMP_CMP_LT"},
              {"index":1,"value":4294967296,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    assert_eq!(eval(&p, X86_64, GETPID, &[10, 1 << 32]), errno(3));
    assert_eq!(eval(&p, X86_64, GETPID, &[19, 1 << 32]), errno(3));
    assert_eq!(eval(&p, X86_64, GETPID, &[20, 1 << 32]), ALLOW);
    assert_eq!(eval(&p, X86_64, GETPID, &[9, 1 << 32]), ALLOW);
    assert_eq!(eval(&p, X86_64, GETPID, &[15, 1]), ALLOW);
}

#[test]
fn conditional_entries_win_most_restrictive_first_then_unconditional() {
    let p = program(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":9,"syscalls":[
            {"names":["getpid"],"action":"SCMP_ACT_ALLOW"},
            {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":5,
             "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
            {"names":["getpid"],"action":"SCMP_ACT_KILL_PROCESS",
             "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]},
            {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":6,
             "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
            {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":3},
            {"names":["getppid"],"action":"SCMP_ACT_TRAP"},
            {"names":["getppid"],"action":"SCMP_ACT_LOG",
             "args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    assert_eq!(eval(&p, X86_64, GETPID, &[0]), ALLOW);
    assert_eq!(
        eval(&p, X86_64, GETPID, &[1, 0]),
        errno(5),
        "first of equal rank wins"
    );
    assert_eq!(
        eval(&p, X86_64, GETPID, &[1, 2]),
        KILL_PROCESS,
        "most restrictive wins"
    );
    assert_eq!(
        eval(&p, X86_64, GETPPID, &[1]),
        TRAP,
        "most restrictive unconditional"
    );
    assert_eq!(
        eval(&p, X86_64, GETPPID, &[0]),
        LOG,
        "conditional before unconditional"
    );
    assert_eq!(
        eval(&p, X86_64, EXECVE, &[]),
        errno(9),
        "unlisted gets the default"
    );
}

#[test]
fn actions_map_to_kernel_return_values() {
    let cases: &[(&str, &str, u32)] = &[
        ("SCMP_ACT_KILL", "", KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", "", KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", "", KILL_PROCESS),
        ("SCMP_ACT_TRAP", "", TRAP),
        ("SCMP_ACT_ERRNO", "", errno(libc::EPERM)),
        ("SCMP_ACT_ERRNO", r#","errnoRet":13"#, errno(13)),
        ("SCMP_ACT_TRACE", "", trace(0)),
        ("SCMP_ACT_TRACE", r#","errnoRet":42"#, trace(42)),
        ("SCMP_ACT_LOG", "", LOG),
    ];
    for &(action, extra, want) in cases {
        let p = program(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["getpid"],"action":"{action}"{extra}}}]}}"#
        ));
        assert_eq!(eval(&p, X86_64, GETPID, &[]), want, "{action}{extra}");
        assert_eq!(eval(&p, X86_64, GETPPID, &[]), ALLOW, "{action}{extra}");
    }
}

#[test]
fn default_action_uses_default_errno_ret() {
    let p = program(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38}"#);
    assert_eq!(eval(&p, X86_64, GETPID, &[]), errno(38));
    let p = program(r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#);
    assert_eq!(eval(&p, X86_64, GETPID, &[]), errno(libc::EPERM));
}

#[test]
fn foreign_architectures_are_killed() {
    let p = program(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    assert_eq!(eval(&p, X86_64, GETPID, &[]), errno(libc::EPERM));
    assert_eq!(eval(&p, X86_64, GETPPID, &[]), ALLOW);
    assert_eq!(eval(&p, I386, I386_GETPID, &[]), KILL_PROCESS);
    assert_eq!(eval(&p, AARCH64, GETPID, &[]), KILL_PROCESS);
    assert_eq!(eval(&p, 0, GETPID, &[]), KILL_PROCESS);
    // x32 calls come with the x86_64 arch value but must not pass as x86_64.
    assert_eq!(eval(&p, X86_64, X32_BIT | GETPID, &[]), KILL_PROCESS);
    assert_eq!(eval(&p, X86_64, X32_BIT | GETPPID, &[]), KILL_PROCESS);
    // -1 (a tracer skipping the call) is handled as an unlisted native call.
    assert_eq!(eval(&p, X86_64, u32::MAX, &[]), ALLOW);
}

#[test]
fn x86_64_x32_and_i386_get_their_own_numbers() {
    let p = program(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X32","SCMP_ARCH_X86"],
            "syscalls":[{"names":["getpid","execve"],"action":"SCMP_ACT_ERRNO","errnoRet":11}]}"#,
    );
    for (arch, nr) in [
        (X86_64, GETPID),
        (X86_64, EXECVE),
        (X86_64, X32_BIT | GETPID),
        (X86_64, X32_BIT | X32_EXECVE),
        (I386, I386_GETPID),
        (I386, 11), // i386 execve
    ] {
        assert_eq!(
            eval(&p, arch, nr, &[]),
            errno(11),
            "arch {arch:#x} nr {nr:#x}"
        );
    }
    // Same numbers in the wrong ABI are other calls.
    assert_eq!(
        eval(&p, X86_64, X32_BIT | EXECVE, &[]),
        ALLOW,
        "x32 uses 520 for execve"
    );
    assert_eq!(
        eval(&p, X86_64, I386_GETPID, &[]),
        ALLOW,
        "x86_64 20 is writev"
    );
    assert_eq!(eval(&p, I386, GETPID, &[]), ALLOW, "i386 39 is mkdir");
    assert_eq!(eval(&p, ARM, GETPID, &[]), KILL_PROCESS);
}

#[test]
fn native_abi_is_always_covered_and_unrunnable_ones_skipped() {
    // Only x32 listed: x86_64 is still covered (natively), i386 is not.
    let p = program(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X32","SCMP_ARCH_AARCH64"],
            "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(eval(&p, X86_64, GETPID, &[]), ALLOW);
    assert_eq!(eval(&p, X86_64, X32_BIT | GETPID, &[]), ALLOW);
    assert_eq!(eval(&p, I386, I386_GETPID, &[]), KILL_PROCESS);
    assert_eq!(
        eval(&p, AARCH64, AARCH64_GETPID, &[]),
        KILL_PROCESS,
        "not runnable on x86_64"
    );

    let arm = compile_on(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_ARM","SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
        Abi::Aarch64,
    )
    .unwrap();
    assert_eq!(eval(&arm, AARCH64, AARCH64_GETPID, &[]), ALLOW);
    assert_eq!(eval(&arm, AARCH64, GETPID, &[]), errno(libc::EPERM));
    assert_eq!(
        eval(&arm, ARM, I386_GETPID, &[]),
        ALLOW,
        "arm getpid is 20 too"
    );
    assert_eq!(eval(&arm, X86_64, GETPID, &[]), KILL_PROCESS);
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let p = program(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["no_such_syscall","getpid","chown32"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    assert_eq!(eval(&p, X86_64, GETPID, &[]), errno(libc::EPERM));
    assert_eq!(eval(&p, X86_64, GETPPID, &[]), ALLOW);
}

#[test]
fn rules_equal_to_the_default_add_no_code() {
    let empty = program(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
    let redundant = program(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid","read"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(empty.instructions.len(), redundant.instructions.len());
}

#[test]
fn flags_map_to_filter_flag_bits() {
    let p = program(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC"]}"#,
    );
    assert_eq!(p.flags, 0b111);
    let p = program(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
    );
    assert_eq!(
        p.flags, 0,
        "needs a notify listener, which is never created"
    );
    assert_eq!(program(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).flags, 0);
}

#[test]
fn long_programs_reach_far_targets_through_trampolines() {
    // One distinct argument check per x86_64 syscall: the search and the
    // bodies are far apart.
    let names: Vec<&str> = crate::seccomp::profile::ALLOWED
        .iter()
        .copied()
        .filter(|n| Abi::X86_64.syscall_number(n).is_some())
        .collect();
    let entries: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                r#"{{"names":["{n}"],"action":"SCMP_ACT_ERRNO","errnoRet":{},
                    "args":[{{"index":{},"value":{},"op":"SCMP_CMP_EQ"}}]}}"#,
                i + 1,
                i % 6,
                i as u64 * 0x1_0000_0001
            )
        })
        .collect();
    let p = program(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{}]}}"#,
        entries.join(",")
    ));
    assert!(
        p.instructions.len() > 1000,
        "{} instructions",
        p.instructions.len()
    );
    assert!(
        p.instructions.iter().any(|i| i.code == 0x05),
        "expected ja trampolines"
    );
    for (i, n) in names.iter().enumerate() {
        let nr = Abi::X86_64.syscall_number(n).unwrap();
        let mut args = [0u64; 6];
        args[i % 6] = i as u64 * 0x1_0000_0001;
        assert_eq!(eval(&p, X86_64, nr, &args), errno(i as i32 + 1), "{n}");
        args[i % 6] ^= 1 << 32;
        assert_eq!(eval(&p, X86_64, nr, &args), ALLOW, "{n}");
    }
}

#[test]
fn runtime_default_allows_the_allowlist_and_restricts_arguments() {
    let p = compile_for(&runtime_default(), Abi::X86_64).unwrap();
    validate(&p.instructions);
    let len = p.instructions.len();
    assert!(
        len > 255 && len < 800,
        "long jumps needed, yet small: {len} instructions"
    );
    let mut allowed = std::collections::BTreeSet::new();
    for name in crate::seccomp::profile::ALLOWED {
        if let Some(nr) = Abi::X86_64.syscall_number(name) {
            assert_eq!(eval(&p, X86_64, nr, &[]), ALLOW, "{name}");
            allowed.insert(nr);
        }
        if let Some(nr) = Abi::X86.syscall_number(name) {
            assert_eq!(eval(&p, I386, nr, &[]), ALLOW, "i386 {name}");
        }
        if let Some(nr) = Abi::X32.syscall_number(name) {
            assert_eq!(eval(&p, X86_64, nr, &[]), ALLOW, "x32 {name}");
        }
    }
    assert!(
        allowed.len() > 250,
        "{} allowed x86_64 syscalls",
        allowed.len()
    );
    // Every other number, in and around the table, gets the default.
    let conditional = [PERSONALITY, CLONE, CLONE3];
    for nr in (0..1024).chain([X32_BIT - 1, u32::MAX - 1]) {
        if !allowed.contains(&nr) && !conditional.contains(&nr) {
            assert_eq!(eval(&p, X86_64, nr, &[]), errno(libc::EPERM), "nr {nr}");
        }
    }
    for nr in [MOUNT, UNSHARE, SETNS] {
        assert_eq!(eval(&p, X86_64, nr, &[]), errno(libc::EPERM), "nr {nr}");
    }
    for persona in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(
            eval(&p, X86_64, PERSONALITY, &[persona]),
            ALLOW,
            "{persona:#x}"
        );
    }
    assert_eq!(
        eval(&p, X86_64, PERSONALITY, &[0x0040000]),
        errno(libc::EPERM)
    );
    assert_eq!(
        eval(&p, X86_64, PERSONALITY, &[1 << 32]),
        errno(libc::EPERM)
    );
    let sigchld = libc::SIGCHLD as u64;
    let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
    assert_eq!(eval(&p, X86_64, CLONE, &[sigchld]), ALLOW);
    assert_eq!(eval(&p, X86_64, CLONE, &[thread]), ALLOW);
    for ns in [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWPID,
    ] {
        let flags = sigchld | ns as u64;
        assert_eq!(
            eval(&p, X86_64, CLONE, &[flags]),
            errno(libc::EPERM),
            "{ns:#x}"
        );
    }
    assert_eq!(eval(&p, X86_64, CLONE3, &[]), errno(libc::ENOSYS));
    assert_eq!(eval(&p, ARM, I386_GETPID, &[]), KILL_PROCESS);
}

#[test]
fn runtime_default_compiles_for_aarch64() {
    let mut profile = runtime_default();
    profile.set_architectures(Some(vec![
        oci_spec::runtime::Arch::ScmpArchAarch64,
        oci_spec::runtime::Arch::ScmpArchArm,
    ]));
    let p = compile_for(&profile, Abi::Aarch64).unwrap();
    validate(&p.instructions);
    assert_eq!(eval(&p, AARCH64, AARCH64_GETPID, &[]), ALLOW);
    assert_eq!(eval(&p, ARM, I386_GETPID, &[]), ALLOW);
}

fn compile_error(json: &str) -> String {
    match compile_on(json, Abi::X86_64) {
        Ok(_) => panic!("compiled: {json}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn invalid_profiles_are_errors_naming_the_field() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"},{"names":["read"],"action":""}]}"#,
            "syscalls[1].action: missing or empty",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"]}]}"#,
            "syscalls[0].action: missing",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_MAYBE"}]}"#,
            "syscalls[0].action: invalid value \"SCMP_ACT_MAYBE\"",
        ),
        (r#"{"syscalls":[]}"#, "defaultAction: missing"),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_Z80"]}"#,
            "architectures[0]: invalid value",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}"#,
            "syscalls[0].args[0].op: invalid value",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#,
            "syscalls[0].action (read): SCMP_ACT_NOTIFY is not supported",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#,
            "defaultAction: SCMP_ACT_NOTIFY",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock"}"#,
            "listenerPath /run/agent.sock: seccomp notify listeners are not supported",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ERRNO","errnoRet":70000}]}"#,
            "syscalls[0].errnoRet (read,write): value 70000",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":65536}"#,
            "defaultErrnoRet",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[],"action":"SCMP_ACT_ERRNO"}]}"#,
            "syscalls[0].names: at least one",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mmap"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
            "syscalls[0].args[0].index (mmap): argument index 6",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":{}}"#,
            "malformed",
        ),
    ];
    for (json, want) in cases {
        let got = compile_error(json);
        assert!(got.contains(want), "error {got:?} lacks {want:?}");
    }
}
