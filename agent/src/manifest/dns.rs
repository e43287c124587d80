//! The pod's name resolution as kubelet sets it up: the CRI `DnsConfig`
//! from `dnsPolicy`/`dnsConfig` (ClusterFirst on a node without cluster DNS
//! falls back to Default, i.e. the host's resolv.conf, as kubelet does after
//! its MissingClusterDNS event), the hostname and FQDN from
//! hostname/subdomain, and `hostAliases` as extra /etc/hosts lines.

use std::net::IpAddr;

use berth_proto::v1::DnsConfig;
use k8s_openapi::api::core::v1::PodSpec;

use super::field::{Errors, FieldPath};
use super::names;
use super::options::PlanOptions;

/// Limits kubelet applies to the result.
pub const MAX_NAMESERVERS: usize = 3;
pub const MAX_SEARCHES: usize = 32;
pub const MAX_SEARCH_CHARS: usize = 2048;

/// `dnsPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsPolicy {
    ClusterFirst,
    ClusterFirstWithHostNet,
    Default,
    None,
}

impl DnsPolicy {
    const NAMES: [&'static str; 4] = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];

    fn parse(s: &str) -> Option<Self> {
        match s {
            "" | "ClusterFirst" => Some(Self::ClusterFirst),
            "ClusterFirstWithHostNet" => Some(Self::ClusterFirstWithHostNet),
            "Default" => Some(Self::Default),
            "None" => Some(Self::None),
            _ => None,
        }
    }
}

/// One `hostAliases` entry: an /etc/hosts line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAlias {
    pub ip: String,
    pub hostnames: Vec<String>,
}

impl HostAlias {
    /// The entry as kubelet writes it: `IP\tname1\tname2`.
    pub fn hosts_line(&self) -> String {
        format!("{}\t{}", self.ip, self.hostnames.join("\t"))
    }
}

/// The lines kubelet appends to a pod's hosts file for its aliases.
pub fn host_alias_lines(aliases: &[HostAlias]) -> String {
    if aliases.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for a in aliases {
        out.push_str(&a.hosts_line());
        out.push('\n');
    }
    out
}

/// A parsed resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// Parses resolv.conf text as kubelet does: `nameserver` lines add up,
/// the last `search`/`domain` line wins, `options` add up.
pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut r = ResolvConf::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => r.nameservers.extend(fields.next().map(String::from)),
            Some("search") | Some("domain") => {
                r.searches = fields
                    .map(|s| s.trim_end_matches('.').to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
            Some("options") => r.options.extend(fields.map(String::from)),
            _ => {}
        }
    }
    r
}

/// Checks `dnsPolicy`, `dnsConfig`, hostname, subdomain and hostAliases.
pub fn validate(spec: &PodSpec, path: &FieldPath, errs: &mut Errors) -> Option<DnsPolicy> {
    let policy = match DnsPolicy::parse(spec.dns_policy.as_deref().unwrap_or_default()) {
        Some(p) => Some(p),
        None => {
            errs.unsupported(
                &path.child("dnsPolicy"),
                spec.dns_policy.as_deref().unwrap_or_default(),
                &DnsPolicy::NAMES,
            );
            None
        }
    };
    let cp = path.child("dnsConfig");
    match (&spec.dns_config, policy) {
        (None, Some(DnsPolicy::None)) => {
            errs.add(&cp, "must provide `dnsConfig` when `dnsPolicy` is None");
        }
        (Some(c), _) => {
            let servers = c.nameservers.as_deref().unwrap_or_default();
            if policy == Some(DnsPolicy::None) && servers.is_empty() {
                errs.add(
                    &cp.child("nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                );
            }
            if servers.len() > MAX_NAMESERVERS {
                errs.add(
                    &cp.child("nameservers"),
                    format!("must not have more than {MAX_NAMESERVERS} nameservers"),
                );
            }
            for (i, s) in servers.iter().enumerate() {
                if s.parse::<IpAddr>().is_err() {
                    errs.add(
                        &cp.child("nameservers").index(i),
                        "must be a valid IP address",
                    );
                }
            }
            let searches = c.searches.as_deref().unwrap_or_default();
            if searches.len() > MAX_SEARCHES {
                errs.add(
                    &cp.child("searches"),
                    format!("must not have more than {MAX_SEARCHES} search paths"),
                );
            }
            for (i, s) in searches.iter().enumerate() {
                let s = s.trim_end_matches('.');
                if s.is_empty() {
                    continue;
                }
                if let Err(e) = names::dns_subdomain(s) {
                    errs.add(&cp.child("searches").index(i), e);
                }
            }
            for (i, o) in c.options.iter().flatten().enumerate() {
                if o.name.as_deref().unwrap_or_default().is_empty() {
                    errs.required(&cp.child("options").index(i).child("name"));
                }
            }
        }
        _ => {}
    }
    for (field, v) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            if let Err(e) = names::dns_label(v) {
                errs.add(&path.child(field), e);
            }
        }
    }
    for (i, a) in spec.host_aliases.iter().flatten().enumerate() {
        let ap = path.child("hostAliases").index(i);
        if a.ip.parse::<IpAddr>().is_err() {
            errs.add(&ap.child("ip"), "must be a valid IP address");
        }
        for (j, h) in a.hostnames.iter().flatten().enumerate() {
            if let Err(e) = names::dns_subdomain(h) {
                errs.add(&ap.child("hostnames").index(j), e);
            }
        }
    }
    policy
}

/// The pod's hostname and, with a subdomain, its FQDN
/// (`<hostname>.<subdomain>.<namespace>.svc.<cluster domain>`).
pub fn hostname(
    spec: &PodSpec,
    pod_name: &str,
    namespace: &str,
    opts: &PlanOptions,
) -> (String, Option<String>) {
    let name = match spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => h.to_string(),
        None => truncate_hostname(pod_name),
    };
    let fqdn = spec
        .subdomain
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| format!("{name}.{s}.{namespace}.svc.{}", opts.cluster_domain));
    (name, fqdn)
}

/// kubelet's hostname from a pod name: at most 63 characters, without a
/// trailing `-` or `.`.
fn truncate_hostname(name: &str) -> String {
    let cut: String = name.chars().take(63).collect();
    cut.trim_end_matches(['-', '.']).to_string()
}

/// The aliases from the spec.
pub fn host_aliases(spec: &PodSpec) -> Vec<HostAlias> {
    spec.host_aliases
        .iter()
        .flatten()
        .map(|a| HostAlias {
            ip: a.ip.clone(),
            hostnames: a.hostnames.clone().unwrap_or_default(),
        })
        .collect()
}

/// The sandbox's DNS config (kubelet's `GetPodDNS`) and, when ClusterFirst
/// fell back to the host's settings, the warning kubelet records.
pub fn dns_config(
    spec: &PodSpec,
    policy: DnsPolicy,
    namespace: &str,
    opts: &PlanOptions,
) -> (DnsConfig, Option<String>) {
    let host_network = spec.host_network == Some(true);
    let host = || match &opts.host_resolv_conf {
        Some(text) => {
            let r = parse_resolv_conf(text);
            DnsConfig {
                servers: r.nameservers,
                searches: r.searches,
                options: r.options,
            }
        }
        None => DnsConfig {
            servers: vec!["127.0.0.1".into()],
            searches: vec![".".into()],
            options: Vec::new(),
        },
    };
    let mut warning = None;
    let cluster = matches!(policy, DnsPolicy::ClusterFirstWithHostNet)
        || (policy == DnsPolicy::ClusterFirst && !host_network);
    let mut config = match policy {
        DnsPolicy::None => DnsConfig::default(),
        _ if cluster && !opts.cluster_dns.is_empty() => {
            let d = &opts.cluster_domain;
            let mut searches = vec![
                format!("{namespace}.svc.{d}"),
                format!("svc.{d}"),
                d.clone(),
            ];
            if let Some(text) = &opts.host_resolv_conf {
                searches.extend(parse_resolv_conf(text).searches);
            }
            DnsConfig {
                servers: opts.cluster_dns.clone(),
                searches,
                options: vec!["ndots:5".into()],
            }
        }
        _ => {
            if cluster {
                warning = Some(format!(
                    "MissingClusterDNS: the node has no cluster DNS, so dnsPolicy {:?} falls back to \"Default\" (the host's resolv.conf)",
                    spec.dns_policy.as_deref().unwrap_or("ClusterFirst")
                ));
            }
            host()
        }
    };
    if let Some(c) = &spec.dns_config {
        config
            .servers
            .extend(c.nameservers.clone().unwrap_or_default());
        config
            .searches
            .extend(c.searches.clone().unwrap_or_default());
        let pod_options: Vec<String> = c
            .options
            .iter()
            .flatten()
            .map(|o| match &o.value {
                Some(v) => format!("{}:{v}", o.name.as_deref().unwrap_or_default()),
                None => o.name.clone().unwrap_or_default(),
            })
            .collect();
        config.options = merge_options(&config.options, &pod_options);
    }
    config.servers = dedup(config.servers);
    config.searches = dedup(config.searches);
    fit_limits(&mut config);
    (config, warning)
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in list {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Options by name, the pod's overriding the base's.
fn merge_options(base: &[String], pod: &[String]) -> Vec<String> {
    let name = |o: &str| o.split(':').next().unwrap_or_default().to_string();
    let mut out: Vec<String> = Vec::new();
    for o in base.iter().chain(pod) {
        match out.iter().position(|x| name(x) == name(o)) {
            Some(i) => out[i] = o.clone(),
            None => out.push(o.clone()),
        }
    }
    out
}

/// kubelet's `formDNSConfigFitsLimits`: at most 3 servers, 32 search paths
/// and 2048 characters of search list.
fn fit_limits(c: &mut DnsConfig) {
    c.servers.truncate(MAX_NAMESERVERS);
    c.searches.truncate(MAX_SEARCHES);
    while c.searches.iter().map(|s| s.len() + 1).sum::<usize>() > MAX_SEARCH_CHARS {
        c.searches.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# generated\nnameserver 10.0.0.1\nnameserver 10.0.0.2 # second\nsearch old.example\nsearch corp.example lab.example.\noptions ndots:2 timeout:1\n";

    fn spec(yaml: &str) -> PodSpec {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn opts() -> PlanOptions {
        PlanOptions {
            host_resolv_conf: Some(HOST.into()),
            ..PlanOptions::default()
        }
    }

    #[test]
    fn resolv_conf() {
        let r = parse_resolv_conf(HOST);
        assert_eq!(r.nameservers, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(r.searches, ["corp.example", "lab.example"]);
        assert_eq!(r.options, ["ndots:2", "timeout:1"]);
    }

    #[test]
    fn cluster_first_without_cluster_falls_back_to_host() {
        let s = spec("containers: []\n");
        let (c, w) = dns_config(&s, DnsPolicy::ClusterFirst, "default", &opts());
        assert_eq!(c.servers, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(c.searches, ["corp.example", "lab.example"]);
        assert!(w.unwrap().starts_with("MissingClusterDNS"));
        let (c2, w) = dns_config(&s, DnsPolicy::Default, "default", &opts());
        assert_eq!((c2, w), (c, None));
        let (c, _) = dns_config(&s, DnsPolicy::Default, "default", &PlanOptions::default());
        assert_eq!(
            (c.servers, c.searches),
            (vec!["127.0.0.1".to_string()], vec![".".to_string()])
        );
    }

    #[test]
    fn cluster_first_with_cluster_dns() {
        let o = PlanOptions {
            cluster_dns: vec!["10.96.0.10".into()],
            ..opts()
        };
        let s = spec("containers: []\n");
        let (c, w) = dns_config(&s, DnsPolicy::ClusterFirst, "prod", &o);
        assert!(w.is_none());
        assert_eq!(c.servers, ["10.96.0.10"]);
        assert_eq!(
            c.searches,
            [
                "prod.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example",
                "lab.example"
            ]
        );
        assert_eq!(c.options, ["ndots:5"]);
        // A host-network pod uses the host's unless WithHostNet.
        let h = spec("containers: []\nhostNetwork: true\n");
        assert_eq!(
            dns_config(&h, DnsPolicy::ClusterFirst, "prod", &o)
                .0
                .servers,
            ["10.0.0.1", "10.0.0.2"]
        );
        assert_eq!(
            dns_config(&h, DnsPolicy::ClusterFirstWithHostNet, "prod", &o)
                .0
                .servers,
            ["10.96.0.10"]
        );
    }

    #[test]
    fn none_and_merge_of_pod_dns_config() {
        let s = spec(
            "containers: []\ndnsPolicy: None\ndnsConfig: {nameservers: [1.1.1.1], searches: [a.example], options: [{name: ndots, value: \"1\"}, {name: edns0}]}\n",
        );
        let (c, _) = dns_config(&s, DnsPolicy::None, "default", &opts());
        assert_eq!(
            (c.servers, c.searches, c.options),
            (
                vec!["1.1.1.1".into()],
                vec!["a.example".into()],
                vec!["ndots:1".into(), "edns0".into()]
            )
        );
        let s = spec("containers: []\ndnsConfig: {nameservers: [10.0.0.1, 9.9.9.9, 8.8.8.8], searches: [corp.example, x.example], options: [{name: ndots, value: \"3\"}]}\n");
        let (c, _) = dns_config(&s, DnsPolicy::Default, "default", &opts());
        assert_eq!(
            c.servers,
            ["10.0.0.1", "10.0.0.2", "9.9.9.9"],
            "deduplicated, at most 3"
        );
        assert_eq!(c.searches, ["corp.example", "lab.example", "x.example"]);
        assert_eq!(c.options, ["ndots:3", "timeout:1"]);
    }

    #[test]
    fn validation() {
        let mut e = Errors::new();
        let p = FieldPath::root("spec");
        validate(&spec("containers: []\ndnsPolicy: None\n"), &p, &mut e);
        validate(&spec("containers: []\ndnsPolicy: Sometimes\n"), &p, &mut e);
        validate(&spec("containers: []\ndnsPolicy: None\ndnsConfig: {nameservers: [bad]}\nhostname: Bad_Name\nhostAliases: [{ip: 1.2.3, hostnames: [ok.example, \"bad name\"]}]\n"), &p, &mut e);
        let v: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(v.len(), 6, "{v:#?}");
        assert_eq!(
            v[0],
            "spec.dnsConfig: must provide `dnsConfig` when `dnsPolicy` is None"
        );
        assert!(v[1].starts_with("spec.dnsPolicy: unsupported value \"Sometimes\""));
        assert_eq!(
            v[2],
            "spec.dnsConfig.nameservers[0]: must be a valid IP address"
        );
        assert!(v[3].starts_with("spec.hostname: a lowercase RFC 1123 label"));
        assert_eq!(v[4], "spec.hostAliases[0].ip: must be a valid IP address");
        assert!(v[5].starts_with("spec.hostAliases[0].hostnames[1]:"));
    }

    #[test]
    fn hostnames_and_aliases() {
        let o = PlanOptions::default();
        let s = spec("containers: []\nhostname: web-0\nsubdomain: web\nhostAliases: [{ip: 10.1.2.3, hostnames: [db, db.local]}]\n");
        assert_eq!(
            hostname(&s, "pod", "prod", &o),
            (
                "web-0".into(),
                Some("web-0.web.prod.svc.cluster.local".into())
            )
        );
        let long = format!("{}-x", "a".repeat(62));
        assert_eq!(
            hostname(&spec("containers: []\n"), &long, "d", &o).0,
            "a".repeat(62)
        );
        let a = host_aliases(&s);
        assert_eq!(
            host_alias_lines(&a),
            "\n# Entries added by HostAliases.\n10.1.2.3\tdb\tdb.local\n"
        );
        assert_eq!(host_alias_lines(&[]), "");
    }
}
