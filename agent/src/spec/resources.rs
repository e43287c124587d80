//! Cgroup limits from `config.linux.resources` (CPU shares/quota/period,
//! cpusets, memory and swap, hugepages, cgroup v2 `unified` keys), the
//! process's `oom_score_adj`, and the container's cgroups path under the
//! pod's cgroup parent.

use berth_proto::v1::LinuxContainerResources;
use oci_spec::runtime::{LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources};

use super::SpecError;

const FIELD: &str = "config.linux.resources";

/// Fills `resources` (whose `devices` rules are set elsewhere) from the
/// request; returns the process's oom_score_adj, if any.
pub(crate) fn apply(
    resources: &mut LinuxResources,
    requested: Option<&LinuxContainerResources>,
) -> Result<Option<i32>, SpecError> {
    let Some(r) = requested else {
        return Ok(None);
    };
    resources.set_cpu(cpu(r)?);
    resources.set_memory(memory(r)?);
    if !r.hugepage_limits.is_empty() {
        let mut limits = Vec::with_capacity(r.hugepage_limits.len());
        for (i, h) in r.hugepage_limits.iter().enumerate() {
            let field = format!("{FIELD}.hugepage_limits[{i}]");
            if !valid_page_size(&h.page_size) {
                return Err(SpecError::invalid(
                    format!("{field}.page_size"),
                    format!(
                        "invalid hugepage size {:?} (expected e.g. 2MB, 1GB)",
                        h.page_size
                    ),
                ));
            }
            let limit = i64::try_from(h.limit).map_err(|_| {
                SpecError::invalid(format!("{field}.limit"), "limit is out of range")
            })?;
            let mut l = LinuxHugepageLimit::default();
            l.set_page_size(h.page_size.clone());
            l.set_limit(limit);
            limits.push(l);
        }
        resources.set_hugepage_limits(Some(limits));
    }
    if !r.unified.is_empty() {
        for key in r.unified.keys() {
            if key.is_empty() || key.contains('/') || !key.contains('.') {
                return Err(SpecError::invalid(
                    format!("{FIELD}.unified[{key:?}]"),
                    "not a cgroup v2 interface file name",
                ));
            }
        }
        resources.set_unified(Some(r.unified.clone()));
    }
    if r.oom_score_adj == 0 {
        return Ok(None);
    }
    if !(-1000..=1000).contains(&r.oom_score_adj) {
        return Err(SpecError::invalid(
            format!("{FIELD}.oom_score_adj"),
            format!("{} is outside -1000..=1000", r.oom_score_adj),
        ));
    }
    Ok(Some(r.oom_score_adj as i32))
}

fn cpu(r: &LinuxContainerResources) -> Result<Option<LinuxCpu>, SpecError> {
    let mut cpu = LinuxCpu::default();
    let mut any = false;
    if r.cpu_shares != 0 {
        cpu.set_shares(Some(non_negative("cpu_shares", r.cpu_shares)?));
        any = true;
    }
    if r.cpu_period != 0 {
        cpu.set_period(Some(non_negative("cpu_period", r.cpu_period)?));
        any = true;
    }
    if r.cpu_quota != 0 {
        if r.cpu_quota < -1 {
            return Err(SpecError::invalid(
                format!("{FIELD}.cpu_quota"),
                format!(
                    "{} is negative (only -1, unlimited, is allowed)",
                    r.cpu_quota
                ),
            ));
        }
        cpu.set_quota(Some(r.cpu_quota));
        any = true;
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.set_cpus(Some(cpuset("cpuset_cpus", &r.cpuset_cpus)?));
        any = true;
    }
    if !r.cpuset_mems.is_empty() {
        cpu.set_mems(Some(cpuset("cpuset_mems", &r.cpuset_mems)?));
        any = true;
    }
    Ok(any.then_some(cpu))
}

/// Memory limit, and swap: the request's swap limit, else equal to the
/// limit (no swap beyond the memory limit).
fn memory(r: &LinuxContainerResources) -> Result<Option<LinuxMemory>, SpecError> {
    if r.memory_limit_in_bytes == 0 && r.memory_swap_limit_in_bytes == 0 {
        return Ok(None);
    }
    let mut memory = LinuxMemory::default();
    let bytes = |name: &str, v: i64| -> Result<Option<i64>, SpecError> {
        match v {
            0 => Ok(None),
            v if v > 0 || v == -1 => Ok(Some(v)),
            v => Err(SpecError::invalid(
                format!("{FIELD}.{name}"),
                format!("{v} is negative"),
            )),
        }
    };
    let limit = bytes("memory_limit_in_bytes", r.memory_limit_in_bytes)?;
    let swap = bytes("memory_swap_limit_in_bytes", r.memory_swap_limit_in_bytes)?;
    if let (Some(l), Some(s)) = (limit, swap) {
        if l > 0 && s > 0 && s < l {
            return Err(SpecError::invalid(
                format!("{FIELD}.memory_swap_limit_in_bytes"),
                format!("{s} is below the memory limit {l}"),
            ));
        }
    }
    memory.set_limit(limit);
    memory.set_swap(swap.or(limit));
    Ok(Some(memory))
}

fn non_negative(name: &str, v: i64) -> Result<u64, SpecError> {
    u64::try_from(v)
        .map_err(|_| SpecError::invalid(format!("{FIELD}.{name}"), format!("{v} is negative")))
}

/// A cpuset list such as `0-3,8,10-11`.
fn cpuset(name: &str, list: &str) -> Result<String, SpecError> {
    let ok = list.split(',').all(|range| {
        let mut ends = range.splitn(2, '-');
        let num = |s: Option<&str>| {
            s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        };
        let first = ends.next();
        let second = ends.next();
        num(first) && (second.is_none() || num(second))
    });
    if ok {
        Ok(list.to_string())
    } else {
        Err(SpecError::invalid(
            format!("{FIELD}.{name}"),
            format!("invalid cpu/memory-node list {list:?}"),
        ))
    }
}

/// `<digits><K|M|G|T|P>B`.
fn valid_page_size(size: &str) -> bool {
    let Some(number) = size
        .strip_suffix("B")
        .and_then(|s| s.strip_suffix(['K', 'M', 'G', 'T', 'P']))
    else {
        return false;
    };
    !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())
}

/// The spec's `linux.cgroupsPath`: `<parent>/<id>` for a cgroupfs parent,
/// `<parent>:berth:<id>` for a systemd slice parent (`*.slice`), and `None`
/// (the runtime's default parent) when the pod has no parent.
pub(crate) fn cgroups_path(parent: &str, id: &str) -> Option<String> {
    let parent = parent.trim_end_matches('/');
    if parent.is_empty() {
        return None;
    }
    if parent.ends_with(".slice") && !parent.contains('/') {
        return Some(format!("{parent}:berth:{id}"));
    }
    Some(format!("{parent}/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::v1::HugepageLimit;

    fn applied(r: &LinuxContainerResources) -> (LinuxResources, Option<i32>) {
        let mut res = LinuxResources::default();
        let oom = apply(&mut res, Some(r)).unwrap();
        (res, oom)
    }

    #[test]
    fn nothing_requested_sets_nothing() {
        let mut res = LinuxResources::default();
        assert_eq!(apply(&mut res, None).unwrap(), None);
        let (res, oom) = applied(&LinuxContainerResources::default());
        assert_eq!(res, LinuxResources::default());
        assert_eq!(oom, None);
    }

    #[test]
    fn cpu_fields() {
        let (res, _) = applied(&LinuxContainerResources {
            cpu_shares: 512,
            cpu_quota: 50_000,
            cpu_period: 100_000,
            cpuset_cpus: "0-1,3".into(),
            cpuset_mems: "0".into(),
            ..Default::default()
        });
        let cpu = res.cpu().clone().unwrap();
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.quota(), Some(50_000));
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(cpu.cpus().as_deref(), Some("0-1,3"));
        assert_eq!(cpu.mems().as_deref(), Some("0"));
    }

    #[test]
    fn memory_swap_defaults_to_the_limit() {
        let (res, _) = applied(&LinuxContainerResources {
            memory_limit_in_bytes: 64 << 20,
            ..Default::default()
        });
        let mem = res.memory().unwrap();
        assert_eq!(mem.limit(), Some(64 << 20));
        assert_eq!(mem.swap(), Some(64 << 20));
        let (res, _) = applied(&LinuxContainerResources {
            memory_limit_in_bytes: 64 << 20,
            memory_swap_limit_in_bytes: 128 << 20,
            ..Default::default()
        });
        assert_eq!(res.memory().unwrap().swap(), Some(128 << 20));
    }

    #[test]
    fn oom_score_adj_hugepages_and_unified() {
        let r = LinuxContainerResources {
            oom_score_adj: 999,
            hugepage_limits: vec![HugepageLimit {
                page_size: "2MB".into(),
                limit: 4 << 20,
            }],
            unified: [("memory.high".to_string(), "1000000".to_string())].into(),
            ..Default::default()
        };
        let (res, oom) = applied(&r);
        assert_eq!(oom, Some(999));
        let huge = res.hugepage_limits().clone().unwrap();
        assert_eq!(huge[0].page_size(), "2MB");
        assert_eq!(huge[0].limit(), 4 << 20);
        assert_eq!(res.unified().clone().unwrap()["memory.high"], "1000000");
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases: Vec<(LinuxContainerResources, &str)> = vec![
            (
                LinuxContainerResources {
                    cpu_shares: -2,
                    ..Default::default()
                },
                "cpu_shares",
            ),
            (
                LinuxContainerResources {
                    cpu_period: -1,
                    ..Default::default()
                },
                "cpu_period",
            ),
            (
                LinuxContainerResources {
                    cpu_quota: -5,
                    ..Default::default()
                },
                "cpu_quota",
            ),
            (
                LinuxContainerResources {
                    cpuset_cpus: "0-".into(),
                    ..Default::default()
                },
                "cpuset_cpus",
            ),
            (
                LinuxContainerResources {
                    cpuset_mems: "a".into(),
                    ..Default::default()
                },
                "cpuset_mems",
            ),
            (
                LinuxContainerResources {
                    memory_limit_in_bytes: -7,
                    ..Default::default()
                },
                "memory_limit_in_bytes",
            ),
            (
                LinuxContainerResources {
                    memory_limit_in_bytes: 100,
                    memory_swap_limit_in_bytes: 50,
                    ..Default::default()
                },
                "memory_swap_limit_in_bytes",
            ),
            (
                LinuxContainerResources {
                    oom_score_adj: 1001,
                    ..Default::default()
                },
                "oom_score_adj",
            ),
            (
                LinuxContainerResources {
                    hugepage_limits: vec![HugepageLimit {
                        page_size: "2XB".into(),
                        limit: 1,
                    }],
                    ..Default::default()
                },
                "hugepage_limits[0].page_size",
            ),
            (
                LinuxContainerResources {
                    unified: [("../x".to_string(), "1".to_string())].into(),
                    ..Default::default()
                },
                "unified[\"../x\"]",
            ),
        ];
        for (r, field) in cases {
            let mut res = LinuxResources::default();
            let err = apply(&mut res, Some(&r)).unwrap_err();
            assert_eq!(
                err.field(),
                Some(format!("{FIELD}.{field}").as_str()),
                "{err}"
            );
        }
    }

    #[test]
    fn cgroups_path_forms() {
        assert_eq!(
            cgroups_path("/kubepods/burstable/podabc", "c1").as_deref(),
            Some("/kubepods/burstable/podabc/c1")
        );
        assert_eq!(
            cgroups_path("/kubepods/", "c1").as_deref(),
            Some("/kubepods/c1")
        );
        assert_eq!(
            cgroups_path("kubepods-burstable-podabc.slice", "c1").as_deref(),
            Some("kubepods-burstable-podabc.slice:berth:c1")
        );
        assert_eq!(cgroups_path("", "c1"), None);
    }
}
