//! Container resources as kubelet computes them: requests and limits
//! (requests defaulted to limits, as the apiserver does), the pod's QoS
//! class, the CRI `LinuxContainerResources` (cpu shares from requests with a
//! minimum of 2, CFS quota from limits over a 100 ms period, the memory
//! limit, oom_score_adj by QoS class), the sandbox's pod-level resources,
//! and the values of `resourceFieldRef`s.

use std::collections::BTreeMap;

use berth_proto::v1::LinuxContainerResources;
use k8s_openapi::api::core::v1::ResourceRequirements;

use super::field::{Errors, FieldPath};
use super::quantity::Amount;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";

/// kubelet's cpu shares bounds and CFS period.
pub const MIN_SHARES: i64 = 2;
pub const MAX_SHARES: i64 = 262_144;
pub const SHARES_PER_CPU: i64 = 1024;
pub const QUOTA_PERIOD: i64 = 100_000;
pub const MIN_QUOTA_PERIOD: i64 = 1000;

/// oom_score_adj of Guaranteed (and node-critical) and BestEffort containers.
pub const GUARANTEED_OOM_SCORE_ADJ: i64 = -997;
pub const BEST_EFFORT_OOM_SCORE_ADJ: i64 = 1000;

/// The priority class whose pods kubelet protects like Guaranteed ones.
pub const SYSTEM_NODE_CRITICAL: &str = "system-node-critical";

/// One container's requests and limits, requests defaulted to limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerResources {
    pub requests: BTreeMap<String, Amount>,
    pub limits: BTreeMap<String, Amount>,
}

impl ContainerResources {
    pub fn request(&self, name: &str) -> Option<Amount> {
        self.requests.get(name).copied()
    }

    pub fn limit(&self, name: &str) -> Option<Amount> {
        self.limits.get(name).copied()
    }
}

/// The pod's QoS class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Guaranteed => "Guaranteed",
            Self::Burstable => "Burstable",
            Self::BestEffort => "BestEffort",
        }
    }
}

/// Reads and checks `resources` of the container at `path`.
pub fn container_resources(
    path: &FieldPath,
    resources: Option<&ResourceRequirements>,
    errs: &mut Errors,
) -> ContainerResources {
    let mut out = ContainerResources::default();
    let Some(r) = resources else {
        return out;
    };
    let path = path.child("resources");
    if r.claims.as_ref().is_some_and(|c| !c.is_empty()) {
        errs.add(
            &path.child("claims"),
            "resource claims are not supported by berth",
        );
    }
    out.limits = quantities(&path.child("limits"), r.limits.as_ref(), errs);
    out.requests = quantities(&path.child("requests"), r.requests.as_ref(), errs);
    for (name, request) in &out.requests {
        if let Some(limit) = out.limits.get(name) {
            if request > limit {
                errs.add(
                    &path.child("requests").key(name),
                    format!("must be less than or equal to {name} limit of {limit}"),
                );
            }
        }
    }
    for (name, limit) in &out.limits {
        out.requests.entry(name.clone()).or_insert(*limit);
    }
    out
}

fn quantities(
    path: &FieldPath,
    list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    errs: &mut Errors,
) -> BTreeMap<String, Amount> {
    let mut out = BTreeMap::new();
    for (name, q) in list.into_iter().flatten() {
        let p = path.key(name);
        match name.as_str() {
            CPU | MEMORY | EPHEMERAL_STORAGE => {}
            n if n.starts_with("hugepages-") => {
                errs.add(&p, "hugepages are not supported by berth");
                continue;
            }
            _ => {
                errs.add(
                    &p,
                    "extended resources are not supported by berth (no device plugins)",
                );
                continue;
            }
        }
        match Amount::parse(&q.0) {
            Ok(a) if a.is_negative() => errs.add(&p, "must be greater than or equal to 0"),
            Ok(a) => {
                out.insert(name.clone(), a);
            }
            Err(e) => errs.add(&p, e.to_string()),
        }
    }
    out
}

/// kubelet's `GetPodQOS` over all containers (init and app).
pub fn pod_qos<'a>(containers: impl IntoIterator<Item = &'a ContainerResources>) -> QosClass {
    let mut requests: BTreeMap<&str, Amount> = BTreeMap::new();
    let mut limits: BTreeMap<&str, Amount> = BTreeMap::new();
    let mut guaranteed = true;
    for c in containers {
        for (map, list) in [(&mut requests, &c.requests), (&mut limits, &c.limits)] {
            for name in [CPU, MEMORY] {
                if let Some(a) = list.get(name).filter(|a| !a.is_zero()) {
                    let sum = map.entry(name).or_insert(Amount::ZERO);
                    *sum = sum.checked_add(*a).unwrap_or(*sum);
                }
            }
        }
        let has = |name| c.limits.get(name).is_some_and(|a| !a.is_zero());
        if !(has(CPU) && has(MEMORY)) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return QosClass::BestEffort;
    }
    if guaranteed
        && requests.len() == limits.len()
        && requests.iter().all(|(n, r)| limits.get(n) == Some(r))
    {
        return QosClass::Guaranteed;
    }
    QosClass::Burstable
}

/// kubelet's `MilliCPUToShares`.
pub fn milli_cpu_to_shares(milli: i64) -> i64 {
    if milli <= 0 {
        return MIN_SHARES;
    }
    (milli.saturating_mul(SHARES_PER_CPU) / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// kubelet's `milliCPUToQuota` for `period` microseconds (0: no limit).
pub fn milli_cpu_to_quota(milli: i64, period: i64) -> i64 {
    if milli <= 0 {
        return 0;
    }
    (milli.saturating_mul(period) / 1000).max(MIN_QUOTA_PERIOD)
}

/// kubelet's `calculateLinuxResources`: shares from the CPU request (the
/// limit when only that is set), quota from the CPU limit, the memory limit.
pub fn linux_resources(
    cpu_request: Option<Amount>,
    cpu_limit: Option<Amount>,
    memory_limit: Option<Amount>,
) -> LinuxContainerResources {
    let shares_from = cpu_request.or(cpu_limit).unwrap_or(Amount::ZERO);
    LinuxContainerResources {
        cpu_shares: milli_cpu_to_shares(shares_from.milli_value()),
        cpu_period: QUOTA_PERIOD,
        cpu_quota: milli_cpu_to_quota(
            cpu_limit.unwrap_or(Amount::ZERO).milli_value(),
            QUOTA_PERIOD,
        ),
        memory_limit_in_bytes: memory_limit.map(Amount::value).unwrap_or(0),
        ..Default::default()
    }
}

/// What `oom_score_adj` depends on besides the container itself.
#[derive(Debug, Clone, Copy)]
pub struct OomContext {
    pub qos: QosClass,
    /// The pod's priorityClassName is system-node-critical.
    pub node_critical: bool,
    pub memory_capacity: i64,
    /// For a sidecar: the smallest memory request of the app containers.
    pub min_app_memory_request: Option<i64>,
}

/// kubelet's `GetContainerOOMScoreAdjust`.
pub fn oom_score_adj(memory_request: i64, sidecar: bool, ctx: &OomContext) -> i64 {
    if ctx.node_critical {
        return GUARANTEED_OOM_SCORE_ADJ;
    }
    match ctx.qos {
        QosClass::Guaranteed => return GUARANTEED_OOM_SCORE_ADJ,
        QosClass::BestEffort => return BEST_EFFORT_OOM_SCORE_ADJ,
        QosClass::Burstable => {}
    }
    let capacity = ctx.memory_capacity.max(1);
    let formula = |request: i64| 1000 - request.saturating_mul(1000) / capacity;
    let mut adj = formula(memory_request);
    if sidecar {
        if let Some(min) = ctx.min_app_memory_request {
            adj = adj.min(formula(min));
        }
    }
    if adj < 1000 + GUARANTEED_OOM_SCORE_ADJ {
        return 1000 + GUARANTEED_OOM_SCORE_ADJ;
    }
    if adj == BEST_EFFORT_OOM_SCORE_ADJ {
        return adj - 1;
    }
    adj
}

/// The pod's effective requests or limits (`resourcehelper.PodRequests`):
/// app containers and sidecars add up; each init container adds to the
/// sidecars started before it; the larger of the two phases wins.
pub fn pod_totals<'a>(
    init: impl IntoIterator<Item = (&'a ContainerResources, bool)>,
    app: impl IntoIterator<Item = &'a ContainerResources>,
    pick: fn(&ContainerResources) -> &BTreeMap<String, Amount>,
) -> BTreeMap<String, Amount> {
    let mut steady = BTreeMap::new();
    for c in app {
        add_into(&mut steady, pick(c));
    }
    let mut sidecars = BTreeMap::new();
    let mut init_peak = BTreeMap::new();
    for (c, sidecar) in init {
        let phase = if sidecar {
            add_into(&mut steady, pick(c));
            add_into(&mut sidecars, pick(c));
            sidecars.clone()
        } else {
            let mut p = sidecars.clone();
            add_into(&mut p, pick(c));
            p
        };
        max_into(&mut init_peak, &phase);
    }
    max_into(&mut steady, &init_peak);
    steady
}

fn add_into(sum: &mut BTreeMap<String, Amount>, add: &BTreeMap<String, Amount>) {
    for (n, a) in add {
        let s = sum.entry(n.clone()).or_insert(Amount::ZERO);
        *s = s.checked_add(*a).unwrap_or(*s);
    }
}

fn max_into(acc: &mut BTreeMap<String, Amount>, other: &BTreeMap<String, Amount>) {
    for (n, a) in other {
        let s = acc.entry(n.clone()).or_insert(*a);
        *s = (*s).max(*a);
    }
}

/// The value of a `resourceFieldRef` (`limits.cpu`, `requests.memory`, ...)
/// with `divisor`: kubelet rounds up, and a missing limit is the node's
/// allocatable amount (`node`, by resource name).
pub fn resource_field_value(
    resources: &ContainerResources,
    resource: &str,
    divisor: Amount,
    node: &BTreeMap<&str, Amount>,
) -> Option<String> {
    let (kind, name) = resource.split_once('.')?;
    let amount = match kind {
        "limits" => resources
            .limit(name)
            .or_else(|| node.get(name).copied())
            .unwrap_or(Amount::ZERO),
        "requests" => resources.request(name).unwrap_or(Amount::ZERO),
        _ => return None,
    };
    let v = if name == CPU {
        let d = divisor.milli_value();
        (d != 0).then(|| ceil_div_i64(amount.milli_value(), d))?
    } else {
        amount.ceil_div(Amount::from_units(divisor.value()))?
    };
    Some(v.to_string())
}

fn ceil_div_i64(a: i64, b: i64) -> i64 {
    let q = a / b;
    if a % b != 0 && ((a < 0) == (b < 0)) {
        q + 1
    } else {
        q
    }
}

/// The `resourceFieldRef.resource` values an env var or a downwardAPI file
/// may read.
pub const FIELD_REF_RESOURCES: [&str; 6] = [
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// Checks a `resourceFieldRef` divisor for `resource` (cpu: 1m or 1; the
/// others: 1 or a power of 1000 or 1024 up to E/Ei).
pub fn valid_divisor(resource: &str, divisor: Amount) -> bool {
    const MEMORY_DIVISORS: [&str; 13] = [
        "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
    ];
    let allowed: &[&str] = if resource.ends_with(".cpu") {
        &["1m", "1"]
    } else {
        &MEMORY_DIVISORS
    };
    allowed
        .iter()
        .any(|s| Amount::parse(s).is_ok_and(|a| a == divisor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn req(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> ResourceRequirements {
        let map = |l: &[(&str, &str)]| {
            (!l.is_empty()).then(|| {
                l.iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect()
            })
        };
        ResourceRequirements {
            requests: map(requests),
            limits: map(limits),
            ..Default::default()
        }
    }

    fn res(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> ContainerResources {
        let mut e = Errors::new();
        let r = container_resources(&FieldPath::root("c"), Some(&req(requests, limits)), &mut e);
        assert!(e.is_empty(), "{e}");
        r
    }

    #[test]
    fn shares_and_quota_match_kubelet() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(100), 102);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(1_000_000), MAX_SHARES);
        assert_eq!(milli_cpu_to_quota(0, QUOTA_PERIOD), 0);
        assert_eq!(milli_cpu_to_quota(5, QUOTA_PERIOD), 1000);
        assert_eq!(milli_cpu_to_quota(250, QUOTA_PERIOD), 25_000);
        assert_eq!(milli_cpu_to_quota(2000, QUOTA_PERIOD), 200_000);
    }

    #[test]
    fn linux_resources_from_requests_and_limits() {
        let r = res(&[("cpu", "250m")], &[("cpu", "500m"), ("memory", "64Mi")]);
        let l = linux_resources(r.request(CPU), r.limit(CPU), r.limit(MEMORY));
        assert_eq!(
            (l.cpu_shares, l.cpu_quota, l.cpu_period),
            (256, 50_000, 100_000)
        );
        assert_eq!(l.memory_limit_in_bytes, 64 << 20);
        // Only a limit: the request defaults to it.
        let r = res(&[], &[("cpu", "1")]);
        assert_eq!(r.request(CPU), Some(Amount::from_units(1)));
        let l = linux_resources(r.request(CPU), r.limit(CPU), r.limit(MEMORY));
        assert_eq!(
            (l.cpu_shares, l.cpu_quota, l.memory_limit_in_bytes),
            (1024, 100_000, 0)
        );
        // Nothing: minimum shares, no quota, period still set.
        let l = linux_resources(None, None, None);
        assert_eq!((l.cpu_shares, l.cpu_quota, l.cpu_period), (2, 0, 100_000));
    }

    #[test]
    fn resource_errors_name_the_field() {
        let mut e = Errors::new();
        let r = req(
            &[("cpu", "2"), ("memory", "lots")],
            &[
                ("cpu", "1"),
                ("nvidia.com/gpu", "1"),
                ("hugepages-2Mi", "2Mi"),
                ("memory", "-1"),
            ],
        );
        container_resources(
            &FieldPath::root("spec").child("containers").index(0),
            Some(&r),
            &mut e,
        );
        let s = e.to_string();
        assert!(s.contains("spec.containers[0].resources.requests[cpu]: must be less than or equal to cpu limit of 1"), "{s}");
        assert!(
            s.contains("resources.requests[memory]: quantities must match"),
            "{s}"
        );
        assert!(
            s.contains("resources.limits[nvidia.com/gpu]: extended resources"),
            "{s}"
        );
        assert!(
            s.contains("resources.limits[hugepages-2Mi]: hugepages"),
            "{s}"
        );
        assert!(
            s.contains("resources.limits[memory]: must be greater than or equal to 0"),
            "{s}"
        );
    }

    #[test]
    fn qos_classes() {
        let g = res(&[], &[("cpu", "1"), ("memory", "1Gi")]);
        let b = res(&[("cpu", "100m")], &[]);
        let none = res(&[], &[]);
        let zero = res(&[("cpu", "0")], &[]);
        assert_eq!(pod_qos([&g]), QosClass::Guaranteed);
        assert_eq!(pod_qos([&g, &g]), QosClass::Guaranteed);
        assert_eq!(pod_qos([&g, &none]), QosClass::Burstable);
        assert_eq!(pod_qos([&b]), QosClass::Burstable);
        assert_eq!(pod_qos([&none, &zero]), QosClass::BestEffort);
        let unequal = res(
            &[("cpu", "500m"), ("memory", "1Gi")],
            &[("cpu", "1"), ("memory", "1Gi")],
        );
        assert_eq!(pod_qos([&unequal]), QosClass::Burstable);
        assert_eq!(pod_qos([]), QosClass::BestEffort);
    }

    #[test]
    fn oom_score_adj_by_class() {
        let ctx = |qos| OomContext {
            qos,
            node_critical: false,
            memory_capacity: 1000,
            min_app_memory_request: None,
        };
        assert_eq!(oom_score_adj(0, false, &ctx(QosClass::Guaranteed)), -997);
        assert_eq!(oom_score_adj(0, false, &ctx(QosClass::BestEffort)), 1000);
        let b = ctx(QosClass::Burstable);
        assert_eq!(
            oom_score_adj(0, false, &b),
            999,
            "never equal to BestEffort"
        );
        assert_eq!(oom_score_adj(250, false, &b), 750);
        assert_eq!(oom_score_adj(999, false, &b), 3, "floor above Guaranteed");
        assert_eq!(oom_score_adj(5000, false, &b), 3);
        let sidecar = OomContext {
            min_app_memory_request: Some(500),
            ..b
        };
        assert_eq!(oom_score_adj(100, true, &sidecar), 500);
        assert_eq!(oom_score_adj(800, true, &sidecar), 200);
        let critical = OomContext {
            node_critical: true,
            ..ctx(QosClass::BestEffort)
        };
        assert_eq!(oom_score_adj(0, false, &critical), -997);
    }

    #[test]
    fn pod_totals_with_init_and_sidecars() {
        let a = res(&[("cpu", "100m")], &[]);
        let b = res(&[("cpu", "200m")], &[]);
        let big_init = res(&[("cpu", "1")], &[]);
        let sidecar = res(&[("cpu", "50m")], &[]);
        let t = pod_totals([(&sidecar, true), (&big_init, false)], [&a, &b], |r| {
            &r.requests
        });
        // Init phase: sidecar + big init = 1050m beats 350m of steady state.
        assert_eq!(t[CPU], Amount::from_milli(1050));
        let t = pod_totals([(&sidecar, true)], [&a, &b], |r| &r.requests);
        assert_eq!(t[CPU], Amount::from_milli(350));
    }

    #[test]
    fn resource_field_refs() {
        let r = res(
            &[("cpu", "250m"), ("memory", "32Mi")],
            &[("memory", "64Mi")],
        );
        let one = Amount::from_units(1);
        let node: BTreeMap<&str, Amount> = [(CPU, Amount::from_units(4))].into_iter().collect();
        let v = |res: &str, d: Amount| resource_field_value(&r, res, d, &node).unwrap();
        assert_eq!(v("requests.cpu", one), "1", "rounded up");
        assert_eq!(v("requests.cpu", Amount::from_milli(1)), "250");
        assert_eq!(v("limits.cpu", one), "4", "node allocatable when unlimited");
        assert_eq!(v("limits.memory", Amount::parse("1Mi").unwrap()), "64");
        assert_eq!(v("requests.memory", one), (32u64 << 20).to_string());
        assert_eq!(v("requests.ephemeral-storage", one), "0");
        assert!(resource_field_value(&r, "bogus", one, &node).is_none());
        assert!(valid_divisor("limits.cpu", Amount::from_milli(1)));
        assert!(valid_divisor("limits.cpu", Amount::parse("1000m").unwrap()));
        assert!(!valid_divisor("limits.cpu", Amount::parse("1Mi").unwrap()));
        assert!(valid_divisor(
            "limits.memory",
            Amount::parse("1Mi").unwrap()
        ));
        assert!(!valid_divisor("limits.memory", Amount::parse("3").unwrap()));
    }
}
