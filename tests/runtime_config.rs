//! Each config.json field's effect, observed from inside the container.

use std::collections::HashMap;

use berth_tests::*;
use oci_spec::runtime::{
    Capability, LinuxCapabilitiesBuilder, LinuxDeviceBuilder, LinuxDeviceType,
    LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxSeccompAction,
    LinuxSeccompBuilder, LinuxSyscallBuilder, MountBuilder, PosixRlimitBuilder, PosixRlimitType,
    UserBuilder,
};

fn run_ok(b: &Bundle) -> String {
    let rt = Runtime::new();
    let (code, out, err) = rt.run(&unique_id("cfg"), b);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    out
}

#[test]
fn hostname_domainname_and_pid_one() {
    if need_root() {
        return;
    }
    let mut b = sh_bundle(
        "hostname; domainname 2>/dev/null || cat /proc/sys/kernel/domainname; echo pid=$$",
    );
    edit(&mut b, |b| {
        b.spec_mut().set_hostname(Some("box1".into()));
        b.spec_mut().set_domainname(Some("example.org".into()));
    });
    let out = run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["box1", "example.org", "pid=1"], "{out}");
}

#[test]
fn default_mounts_devices_and_symlinks() {
    if need_root() {
        return;
    }
    let b = sh_bundle(
        "cat /proc/self/mountinfo; stat -c '%n %F %t,%T' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; for l in /dev/fd /dev/stdin /dev/ptmx; do readlink $l; done",
    );
    let out = run_ok(&b);
    for m in [
        " /proc ",
        " /dev ",
        " /dev/pts ",
        " /dev/shm ",
        " /dev/mqueue ",
        " /sys ",
    ] {
        assert!(out.contains(m), "mount {m:?} missing:\n{out}");
    }
    for dev in [
        "/dev/null character special file 1,3",
        "/dev/zero character special file 1,5",
        "/dev/full character special file 1,7",
        "/dev/random character special file 1,8",
        "/dev/urandom character special file 1,9",
        "/dev/tty character special file 5,0",
    ] {
        assert!(out.contains(dev), "{dev} missing:\n{out}");
    }
    assert!(
        out.contains("/proc/self/fd\n/proc/self/fd/0\npts/ptmx"),
        "{out}"
    );
}

#[test]
fn bind_mounts_honour_ro_and_see_host_files() {
    if need_root() {
        return;
    }
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("data"), "from-host").unwrap();
    let mut b = sh_bundle("cat /data/data; echo x > /data/new && echo WROTE; cat /rw/data; echo y > /rw/new && echo RW-OK");
    edit(&mut b, |b| {
        let mut mounts = b.spec().mounts().clone().unwrap_or_default();
        for (dest, opts) in [("/data", vec!["rbind", "ro"]), ("/rw", vec!["bind", "rw"])] {
            mounts.push(
                MountBuilder::default()
                    .destination(dest)
                    .typ("bind")
                    .source(host.path())
                    .options(opts.into_iter().map(String::from).collect::<Vec<_>>())
                    .build()
                    .unwrap(),
            );
        }
        b.spec_mut().set_mounts(Some(mounts));
    });
    let out = run_ok(&b);
    assert!(out.starts_with("from-host"), "{out}");
    assert!(!out.contains("WROTE"), "ro bind was writable: {out}");
    assert!(out.contains("RW-OK"), "{out}");
    assert_eq!(
        std::fs::read_to_string(host.path().join("new")).unwrap(),
        "y\n"
    );
}

#[test]
fn capabilities_and_no_new_privileges() {
    if need_root() {
        return;
    }
    let mut b = sh_bundle("grep -E '^(CapInh|CapPrm|CapEff|CapBnd|NoNewPrivs)' /proc/self/status");
    edit(&mut b, |b| {
        let set: std::collections::HashSet<Capability> =
            [Capability::Chown, Capability::Kill].into_iter().collect();
        let caps = LinuxCapabilitiesBuilder::default()
            .bounding(set.clone())
            .effective(set.clone())
            .permitted(set.clone())
            .inheritable(std::collections::HashSet::new())
            .ambient(std::collections::HashSet::new())
            .build()
            .unwrap();
        let p = process_mut(b);
        p.set_capabilities(Some(caps));
        p.set_no_new_privileges(Some(true));
    });
    let out = run_ok(&b);
    // CAP_CHOWN = bit 0, CAP_KILL = bit 5.
    for want in [
        "CapInh:\t0000000000000000",
        "CapPrm:\t0000000000000021",
        "CapEff:\t0000000000000021",
        "CapBnd:\t0000000000000021",
        "NoNewPrivs:\t1",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
}

#[test]
fn user_groups_umask_and_home() {
    if need_root() {
        return;
    }
    let mut b = sh_bundle("id -u; id -g; id -G; umask; echo $HOME");
    edit(&mut b, |b| {
        let user = UserBuilder::default()
            .uid(1000u32)
            .gid(1000u32)
            .additional_gids(vec![1001u32, 1002])
            .umask(0o027u32)
            .build()
            .unwrap();
        process_mut(b).set_user(user);
    });
    let out = run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1000");
    let groups: Vec<&str> = lines[2].split_whitespace().collect();
    for g in ["1000", "1001", "1002"] {
        assert!(groups.contains(&g), "{groups:?}");
    }
    assert_eq!(lines[3], "0027");
    assert_eq!(lines[4], "/home/app");
}

#[test]
fn rlimits_are_set() {
    if need_root() {
        return;
    }
    let mut b = sh_bundle("ulimit -n; ulimit -Hn");
    edit(&mut b, |b| {
        let r = PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(1234u64)
            .hard(2345u64)
            .build()
            .unwrap();
        process_mut(b).set_rlimits(Some(vec![r]));
    });
    assert_eq!(run_ok(&b), "1234\n2345\n");
}

#[test]
fn readonly_root_masked_and_readonly_paths() {
    if need_root() {
        return;
    }
    let mut b = sh_bundle(
        "touch /newfile 2>/dev/null && echo ROOT-WRITABLE; \
         wc -c < /proc/keys; wc -c < /proc/timer_list; ls /sys/firmware | wc -l; \
         echo 1 > /proc/sys/vm/overcommit_memory 2>/dev/null && echo SYS-WRITABLE; echo done",
    );
    edit(&mut b, |b| {
        let mut root = b.spec().root().clone().unwrap();
        root.set_readonly(Some(true));
        b.spec_mut().set_root(Some(root));
    });
    let out = run_ok(&b);
    assert!(!out.contains("ROOT-WRITABLE"), "{out}");
    assert!(!out.contains("SYS-WRITABLE"), "{out}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        ["0", "0", "0", "done"],
        "masked /proc/keys, /proc/timer_list, /sys/firmware: {out}"
    );
}

#[test]
fn linux_devices_are_created() {
    if need_root() {
        return;
    }
    let mut b = sh_bundle("stat -c '%F %t,%T %a %u' /dev/fuse");
    edit(&mut b, |b| {
        let d = LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10i64)
            .minor(229i64)
            .file_mode(0o640u32)
            .uid(0u32)
            .build()
            .unwrap();
        linux_mut(b).set_devices(Some(vec![d]));
    });
    assert_eq!(run_ok(&b).trim(), "character special file a,e5 640 0");
}

#[test]
fn sysctls_apply_to_the_container_only() {
    if need_root() {
        return;
    }
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl").unwrap();
    let mut b = sh_bundle("cat /proc/sys/net/ipv4/ip_default_ttl");
    edit(&mut b, |b| {
        let mut s = HashMap::new();
        s.insert("net.ipv4.ip_default_ttl".to_string(), "33".to_string());
        linux_mut(b).set_sysctl(Some(s));
    });
    assert_eq!(run_ok(&b).trim(), "33");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl").unwrap(),
        host
    );
}

#[test]
fn user_namespace_with_id_maps() {
    if need_root() {
        return;
    }
    let mut b = sh_bundle("cat /proc/self/uid_map /proc/self/gid_map; id -u");
    edit(&mut b, |b| {
        let map = LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(200000u32)
            .size(65536u32)
            .build()
            .unwrap();
        let l = linux_mut(b);
        let mut ns = l.namespaces().clone().unwrap_or_default();
        ns.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::User)
                .build()
                .unwrap(),
        );
        l.set_namespaces(Some(ns));
        l.set_uid_mappings(Some(vec![map]));
        l.set_gid_mappings(Some(vec![map]));
    });
    let out = run_ok(&b);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "200000", "65536", "0", "200000", "65536", "0"],
        "{out}"
    );
}

#[test]
fn namespaces_joined_by_path() {
    if need_root() {
        return;
    }
    let rt = Runtime::new();
    let holder_bundle = Bundle::temp(&["sleep", "1000"]).unwrap();
    let holder = rt.start(&unique_id("holder"), &holder_bundle);
    let mut b = sh_bundle(
        "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; hostname",
    );
    let hpid = holder.pid;
    edit(&mut b, |b| {
        let l = linux_mut(b);
        let ns: Vec<_> = l
            .namespaces()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|mut n| {
                let name = match n.typ() {
                    LinuxNamespaceType::Network => "net",
                    LinuxNamespaceType::Ipc => "ipc",
                    LinuxNamespaceType::Uts => "uts",
                    _ => return n,
                };
                n.set_path(Some(format!("/proc/{hpid}/ns/{name}").into()));
                n
            })
            .collect();
        l.set_namespaces(Some(ns));
    });
    let (code, out, err) = rt.run(&unique_id("joiner"), &b);
    assert_eq!(code, 0, "{err}");
    let mut want = String::new();
    for ns in ["net", "ipc", "uts"] {
        let l = std::fs::read_link(format!("/proc/{hpid}/ns/{ns}")).unwrap();
        want.push_str(&format!("{}\n", l.display()));
    }
    assert!(out.starts_with(&want), "{out} vs {want}");
    drop(holder);
}

#[test]
fn seccomp_filter_is_applied() {
    if need_root() {
        return;
    }
    let mut b = sh_bundle("mkdir /tmp/x 2>&1; echo rc=$?; ls / >/dev/null && echo ls-ok");
    edit(&mut b, |b| {
        let rule = LinuxSyscallBuilder::default()
            .names(vec!["mkdir".to_string(), "mkdirat".to_string()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(1u32)
            .build()
            .unwrap();
        let s = LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActAllow)
            .syscalls(vec![rule])
            .build()
            .unwrap();
        linux_mut(b).set_seccomp(Some(s));
    });
    let out = run_ok(&b);
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("rc=1") && out.contains("ls-ok"), "{out}");
}
