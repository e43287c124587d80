//! Root-only tests of the built-in network against the real kernel.

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use berth_cni::{NetError, Network, PortMapping, Protocol};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pods_reach_each_other_and_the_host_over_v4_and_v6() {
    let t = TestNet::new("reach", 1, true);
    let a = t.add_pod("reach-a", vec![]).await.unwrap();
    let b = t.add_pod("reach-b", vec![]).await.unwrap();
    let (a4, a6) = (a.ipv4.unwrap(), a.ipv6.unwrap());
    assert_ne!(Some(a4), b.ipv4);
    assert_eq!(a.all_ips().len(), 2);

    let server = echo_server(Some(t.netns("reach-a")), "[::]:8080".parse().unwrap(), 2);
    let got = in_netns(&t.netns("reach-b"), || {
        let v4 = echo(SocketAddr::new(a4.into(), 8080), "hello4").unwrap();
        let v6 = echo(SocketAddr::new(a6.into(), 8080), "hello6").unwrap();
        (v4, v6)
    });
    assert_eq!(got, ("hello4".to_string(), "hello6".to_string()));
    assert_eq!(server.join().unwrap(), 2);

    // The pod reaches the host through the bridge gateway.
    let gw: IpAddr = "10.231.1.1".parse().unwrap();
    let host = echo_server(None, SocketAddr::new(gw, 18101), 1);
    let reply = in_netns(&t.netns("reach-b"), || {
        echo(SocketAddr::new(gw, 18101), "to-host")
    });
    assert_eq!(reply.unwrap(), "to-host");
    assert_eq!(host.join().unwrap(), 1);

    // Counters see the traffic from the pod's side.
    let stats = t.net().stats("reach-b").unwrap();
    assert!(stats.tx_bytes > 0 && stats.rx_bytes > 0, "{stats:?}");
    assert!(stats.tx_packets > 0 && stats.rx_packets > 0, "{stats:?}");

    t.remove_pod("reach-a").await;
    t.remove_pod("reach-b").await;
    assert!(matches!(
        t.net().stats("reach-b"),
        Err(NetError::NotConfigured(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_port_answers_from_loopback_and_host_address() {
    let t = TestNet::new("hport", 2, true);
    let ports = vec![
        PortMapping {
            protocol: Protocol::Tcp,
            container_port: 80,
            host_port: 18201,
            host_ip: None,
        },
        PortMapping {
            protocol: Protocol::Tcp,
            container_port: 80,
            host_port: 18202,
            host_ip: Some("127.0.0.1".parse().unwrap()),
        },
        PortMapping {
            protocol: Protocol::Udp,
            container_port: 53,
            host_port: 18203,
            host_ip: None,
        },
        PortMapping {
            protocol: Protocol::Sctp,
            container_port: 90,
            host_port: 18204,
            host_ip: None,
        },
    ];
    let pod = t.add_pod("hport-a", ports.clone()).await.unwrap();
    let peer = t.add_pod("hport-p", vec![]).await.unwrap();
    let server = echo_server(Some(t.netns("hport-a")), "[::]:80".parse().unwrap(), 5);
    for (addr, msg) in [
        ("127.0.0.1:18201", "lo"),
        ("10.231.2.1:18201", "gw"),
        ("[fd00:bee:2::1]:18201", "gw6"),
        ("127.0.0.1:18202", "ip"),
    ] {
        assert_eq!(echo(addr.parse().unwrap(), msg).unwrap(), msg, "{addr}");
    }
    // Another pod reaches the hostPort through the host's address; the
    // reply comes back through the host thanks to the DNAT masquerade.
    let from_pod = in_netns(&t.netns("hport-p"), || {
        echo("10.231.2.1:18201".parse().unwrap(), "pod")
    });
    assert_eq!(from_pod.unwrap(), "pod", "from pod {:?}", peer.ipv4);
    assert_eq!(server.join().unwrap(), 5);
    // UDP through the same maps, from the host's loopback.
    let udp = udp_echo_once(t.netns("hport-a"), 53);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    sock.send_to(b"dgram", "127.0.0.1:18203").unwrap();
    let mut buf = [0u8; 16];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"dgram");
    udp.join().unwrap();
    let listing = nft_list(&t.cfg.nft_table);
    assert!(
        listing.contains(&format!("tcp . 18201 : {} . 80", pod.ipv4.unwrap())),
        "{listing}"
    );
    assert!(listing.contains("sctp . 18204"), "{listing}");

    // A second pod cannot take a host port already mapped.
    let clash = t.add_pod("hport-b", ports[..1].to_vec()).await;
    assert!(
        matches!(clash, Err(NetError::PortMapping { .. })),
        "{clash:?}"
    );
    // ... and its failed setup left nothing behind, nor broke the first pod's mapping.
    let mut pods = t.net().configured_pods().unwrap();
    pods.sort();
    assert_eq!(pods, ["hport-a", "hport-p"]);
    assert_eq!(t.net().allocations().unwrap().len(), 4);
    t.net().remove_netns("hport-b").unwrap();
    assert!(nft_list(&t.cfg.nft_table).contains("tcp . 18201"));

    t.remove_pod("hport-a").await;
    t.remove_pod("hport-p").await;
    let listing = nft_list(&t.cfg.nft_table);
    assert!(
        !listing.contains("18201") && !listing.contains("18204"),
        "{listing}"
    );
    assert!(echo("127.0.0.1:18201".parse().unwrap(), "x").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_pods_get_distinct_addresses() {
    let t = TestNet::new("conc", 3, true);
    let pods: Vec<String> = (0..20).map(|i| format!("conc-{i}")).collect();
    let results = futures_join_all(pods.iter().map(|p| t.add_pod(p, vec![]))).await;
    let mut v4 = HashSet::new();
    let mut v6 = HashSet::new();
    for r in results {
        let status = r.unwrap();
        assert!(v4.insert(status.ipv4.unwrap()));
        assert!(v6.insert(status.ipv6.unwrap()));
    }
    assert_eq!(t.net().allocations().unwrap().len(), 40);
    futures_join_all(pods.iter().map(|p| t.remove_pod(p))).await;
    assert!(t.net().allocations().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_cycles_leave_nothing_behind() {
    let t = TestNet::new("cycle", 4, true);
    let ports = vec![PortMapping {
        protocol: Protocol::Tcp,
        container_port: 80,
        host_port: 18401,
        host_ip: None,
    }];
    let mut veths = HashSet::new();
    for i in 0..100 {
        let pod = format!("cycle-{i}");
        t.add_pod(&pod, ports.clone()).await.unwrap();
        veths.extend(host_links_on(&t.cfg.bridge));
        t.remove_pod(&pod).await;
    }
    assert_eq!(veths.len(), 100, "each pod had its own host veth");
    // Host veths die with their namespaces, in the kernel's async cleanup.
    assert!(eventually(|| veths.iter().all(|v| !link_exists(v))));
    assert!(host_links_on(&t.cfg.bridge).is_empty());
    assert_eq!(std::fs::read_dir(&t.cfg.netns_dir).unwrap().count(), 0);
    assert!(t.net().allocations().unwrap().is_empty());
    assert!(t.net().configured_pods().unwrap().is_empty());
    let listing = nft_list(&t.cfg.nft_table);
    assert!(
        !listing.contains("18401") && !listing.contains("elements"),
        "{listing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_allocations_and_teardown_still_works() {
    let mut t = TestNet::new("restart", 5, true);
    let before: Vec<_> = futures_join_all((0..3).map(|i| t.add_pod_owned(format!("restart-{i}"))))
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    t.reopen();
    assert_eq!(t.net().allocations().unwrap().len(), 6);
    assert_eq!(t.net().pod_status("restart-1").unwrap(), before[1]);
    let fresh = t.add_pod("restart-new", vec![]).await.unwrap();
    assert!(before
        .iter()
        .all(|b| b.ipv4 != fresh.ipv4 && b.ipv6 != fresh.ipv6));
    for i in 0..3 {
        t.remove_pod(&format!("restart-{i}")).await;
    }
    t.remove_pod("restart-new").await;
    assert!(t.net().allocations().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_and_repeated_teardown_is_done_once() {
    let t = TestNet::new("race", 6, false);
    t.add_pod("race-a", vec![]).await.unwrap();
    let net = t.net();
    let (a, b, c) = tokio::join!(
        net.teardown("race-a"),
        net.teardown("race-a"),
        net.teardown("race-a")
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    net.teardown("race-a").await.unwrap();
    net.remove_netns("race-a").unwrap();
    net.remove_netns("race-a").unwrap();
    net.teardown("never-existed").await.unwrap();
    assert!(net.allocations().unwrap().is_empty());
    assert!(host_links_on(&t.cfg.bridge).is_empty());
    // A pod can be set up only once.
    t.add_pod("race-b", vec![]).await.unwrap();
    let again = t.add_pod("race-b", vec![]).await;
    assert!(matches!(again, Err(NetError::AlreadyConfigured(_))));
    // Set up again after a teardown that left the namespace (and its
    // detached veth) in place: the stale pair is replaced.
    t.net().teardown("race-b").await.unwrap();
    let netns = t.netns("race-b");
    let again = t
        .net()
        .setup(&request("race-b", netns, vec![]))
        .await
        .unwrap();
    assert!(again.ipv4.is_some());
    assert_eq!(host_links_on(&t.cfg.bridge).len(), 1);
    t.remove_pod("race-b").await;
}

#[tokio::test]
async fn subnets_given_with_host_bits_are_normalised() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config("norm", 13, true, dir.path());
    cfg.subnet_v4 = "10.231.13.77/24".parse().unwrap();
    cfg.subnet_v6 = Some("fd00:bee:13::77/64".parse().unwrap());
    let t = TestNet::with_config(cfg, dir);
    assert_eq!(t.net().config().subnet_v4.to_string(), "10.231.13.0/24");
    let pod = t.add_pod("norm-a", vec![]).await.unwrap();
    assert_eq!(pod.ipv4.unwrap().to_string(), "10.231.13.2");
    t.remove_pod("norm-a").await;
}

#[tokio::test]
async fn invalid_pod_ids_are_refused() {
    let t = TestNet::new("badid", 7, false);
    for id in ["", "../x", ".hidden", "a/b", &"x".repeat(129)] {
        assert!(
            matches!(t.net().create_netns(id), Err(NetError::InvalidPodId(_))),
            "{id}"
        );
        assert!(matches!(
            t.net().teardown(id).await,
            Err(NetError::InvalidPodId(_))
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_is_masqueraded_to_the_host_address() {
    let t = TestNet::new("masq", 8, false);
    let pod = t.add_pod("masq-a", vec![]).await.unwrap();
    // An "outside" namespace on a point-to-point link with the host.
    let outside = Outside::new("masq", "10.231.208");
    let server = outside.peer_reporter(18801);
    let seen = in_netns(&t.netns("masq-a"), || {
        echo("10.231.208.2:18801".parse().unwrap(), "?")
    })
    .unwrap();
    assert_eq!(server.join().unwrap(), 1);
    assert_eq!(
        seen, "10.231.208.1",
        "pod {:?} was not masqueraded",
        pod.ipv4
    );
    t.remove_pod("masq-a").await;
}

/// A namespace `<prefix>.2/30` reached from the host over a veth
/// (`<prefix>.1/30` on the host side); removed on drop.
struct Outside {
    dir: tempfile::TempDir,
    host_if: String,
}

impl Outside {
    fn new(tag: &str, prefix: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns");
        std::fs::write(&path, "").unwrap();
        let host_if = format!("bo-{tag}");
        let out = Outside { dir, host_if };
        let ns = out.path();
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                nix::mount::mount(
                    Some("/proc/thread-self/ns/net"),
                    &ns,
                    None::<&str>,
                    nix::mount::MsFlags::MS_BIND,
                    None::<&str>,
                )
                .unwrap();
            })
            .join()
            .unwrap()
        });
        let ip = |args: &[&str]| {
            let ok = std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap()
                .success();
            assert!(ok, "ip {args:?}");
        };
        let ns = ns.to_str().unwrap();
        let host_if = out.host_if.as_str();
        ip(&[
            "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ]);
        ip(&["addr", "add", &format!("{prefix}.1/30"), "dev", host_if]);
        ip(&["link", "set", host_if, "up"]);
        in_netns(Path::new(ns), || {
            ip(&["addr", "add", &format!("{prefix}.2/30"), "dev", "eth0"]);
            ip(&["link", "set", "eth0", "up"]);
            ip(&["link", "set", "lo", "up"]);
        });
        out
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("ns")
    }

    /// Serves one connection on `port`, answering with the peer's address.
    fn peer_reporter(&self, port: u16) -> std::thread::JoinHandle<usize> {
        use std::io::Write;
        let ns = self.path();
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let file = std::fs::File::open(ns).unwrap();
            nix::sched::setns(
                std::os::fd::AsFd::as_fd(&file),
                nix::sched::CloneFlags::CLONE_NEWNET,
            )
            .unwrap();
            let listener = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
            tx.send(()).unwrap();
            let (mut stream, peer) = listener.accept().unwrap();
            stream.write_all(peer.ip().to_string().as_bytes()).unwrap();
            1
        });
        rx.recv().unwrap();
        handle
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_if])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = nix::mount::umount2(&self.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_after_restart_removes_what_no_live_pod_owns() {
    let mut t = TestNet::new("gc", 9, false);
    for pod in ["gc-live", "gc-dead1", "gc-dead2"] {
        t.add_pod(pod, vec![]).await.unwrap();
    }
    // A namespace whose setup never happened, and an address claimed by a
    // pod whose record never got written (a crash in between).
    t.net().create_netns("gc-orphan").unwrap();
    let ghost = t.cfg.state_dir.join("ipam/10.231.9.0_24/10.231.9.250");
    std::fs::write(&ghost, "gc-ghost").unwrap();
    t.reopen();
    let live = ["gc-live".to_string()].into_iter().collect();
    let mut report = t.net().gc(&live).await.unwrap();
    report.torn_down.sort();
    report.netns_removed.sort();
    assert_eq!(report.torn_down, ["gc-dead1", "gc-dead2"]);
    assert_eq!(report.netns_removed, ["gc-dead1", "gc-dead2", "gc-orphan"]);
    assert_eq!(report.addresses_released, 1);
    let owners: Vec<String> = t
        .net()
        .allocations()
        .unwrap()
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    assert_eq!(owners, ["gc-live"]);
    assert_eq!(host_links_on(&t.cfg.bridge).len(), 1);
    t.remove_pod("gc-live").await;
}

#[tokio::test]
async fn netns_dir_is_a_shared_mount() {
    let t = TestNet::new("shared", 10, false);
    let dir = t.cfg.netns_dir.canonicalize().unwrap();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == dir.to_str())
        .expect("netns dir is a mount point");
    assert!(line.contains(" shared:"), "{line}");
    // Re-opening does not stack another bind mount.
    drop(Network::new(t.cfg.clone()).unwrap());
    let count = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4) == dir.to_str())
        .count();
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_interface_has_mtu_addresses_routes_and_no_dad() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config("iface", 12, true, dir.path());
    cfg.mtu = 1400;
    let t = TestNet::with_config(cfg, dir);
    let pod = t.add_pod("iface-a", vec![]).await.unwrap();
    let run = |args: &[&str]| -> String {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "ip {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (link, addrs, routes4, routes6, dad, lo) = in_netns(&t.netns("iface-a"), || {
        (
            run(&["-o", "link", "show", "eth0"]),
            run(&["-o", "addr", "show", "dev", "eth0"]),
            run(&["-4", "route", "show", "default"]),
            run(&["-6", "route", "show", "default"]),
            std::fs::read_to_string("/proc/sys/net/ipv6/conf/eth0/accept_dad").unwrap(),
            run(&["-o", "link", "show", "lo"]),
        )
    });
    assert!(
        link.contains("mtu 1400") && link.contains("state UP"),
        "{link}"
    );
    assert!(lo.contains("UP"), "{lo}");
    assert!(
        addrs.contains(&format!("{}/24", pod.ipv4.unwrap())),
        "{addrs}"
    );
    assert!(
        addrs.contains(&format!("{}/64", pod.ipv6.unwrap())),
        "{addrs}"
    );
    assert!(!addrs.contains("tentative"), "{addrs}");
    assert!(routes4.contains("via 10.231.12.1"), "{routes4}");
    assert!(routes6.contains("via fd00:bee:12::1"), "{routes6}");
    assert_eq!(dad.trim(), "0");
    let bridge_mtu =
        std::fs::read_to_string(format!("/sys/class/net/{}/mtu", t.cfg.bridge)).unwrap();
    assert_eq!(bridge_mtu.trim(), "1400");
    t.remove_pod("iface-a").await;
}

/// Echoes one UDP datagram on `port` inside `netns`.
fn udp_echo_once(netns: std::path::PathBuf, port: u16) -> std::thread::JoinHandle<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let file = std::fs::File::open(netns).unwrap();
        nix::sched::setns(
            std::os::fd::AsFd::as_fd(&file),
            nix::sched::CloneFlags::CLONE_NEWNET,
        )
        .unwrap();
        let sock = std::net::UdpSocket::bind(("0.0.0.0", port)).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 64];
        let (n, peer) = sock.recv_from(&mut buf).unwrap();
        sock.send_to(&buf[..n], peer).unwrap();
    });
    rx.recv().unwrap();
    handle
}

/// Links enslaved to `bridge`.
fn host_links_on(bridge: &str) -> Vec<String> {
    let dir = format!("/sys/class/net/{bridge}/brif");
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    futures_util::future::join_all(futs).await
}

impl TestNet {
    async fn add_pod_owned(&self, pod: String) -> Result<berth_cni::PodNetworkStatus, NetError> {
        self.add_pod(&pod, vec![]).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_host_ip_port_works_and_teardown_survives_missing_elements() {
    let t = TestNet::new("hp6ip", 14, true);
    let ports = vec![
        PortMapping {
            protocol: Protocol::Tcp,
            container_port: 80,
            host_port: 18401,
            host_ip: Some("fd00:bee:14::1".parse().unwrap()),
        },
        PortMapping {
            protocol: Protocol::Tcp,
            container_port: 80,
            host_port: 18402,
            host_ip: None,
        },
    ];
    let pod = t.add_pod("hp6ip-a", ports).await.unwrap();
    let server = echo_server(Some(t.netns("hp6ip-a")), "[::]:80".parse().unwrap(), 1);
    let addr: SocketAddr = "[fd00:bee:14::1]:18401".parse().unwrap();
    assert_eq!(echo(addr, "v6").unwrap(), "v6");
    assert_eq!(server.join().unwrap(), 1);
    let listing = nft_list(&t.cfg.nft_table);
    let v6 = pod.ipv6.unwrap();
    assert!(
        listing.contains(&format!("fd00:bee:14::1 . tcp . 18401 : {v6} . 80")),
        "{listing}"
    );

    // An interrupted earlier teardown removed one element already: the
    // next teardown still removes the others and succeeds.
    let gone = std::process::Command::new("nft")
        .args(["delete", "element", "inet", &t.cfg.nft_table, "hp4"])
        .arg("{ tcp . 18402 }")
        .status()
        .unwrap();
    assert!(gone.success());
    t.remove_pod("hp6ip-a").await;
    let listing = nft_list(&t.cfg.nft_table);
    assert!(
        !listing.contains("18401") && !listing.contains("18402"),
        "{listing}"
    );
}
