//! Pod networking through berthd: pods reach each other and are reached
//! from the host over TCP, a hostPort answers on the host's loopback, 20
//! pods set up at once get 20 distinct addresses, and removal leaves no
//! veth behind.

use std::collections::HashSet;
use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_proto::v1 as cri;
use berth_tests::daemon::{pod_config, sh_container, Berthd};
use berth_tests::need_root;

/// A busybox TCP server answering `hello from NAME` on `port`.
fn server(name: &str, port: u16) -> cri::ContainerConfig {
    sh_container(
        "server",
        &format!("exec nc -ll -p {port} -e echo hello from {name}"),
    )
}

/// Reads what the server at `addr` says, retrying while it starts.
fn fetch(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) =
            TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
        {
            let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
            let mut out = String::new();
            if s.read_to_string(&mut out).is_ok() && !out.is_empty() {
                return out;
            }
        }
        assert!(Instant::now() < deadline, "no answer from {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn veths_on(bridge: &str) -> usize {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_reach_each_other_the_host_and_host_ports() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let host_port = 20000 + (std::process::id() % 20000) as u16;
    let mut a_cfg = pod_config("net-a");
    a_cfg.port_mappings.push(cri::PortMapping {
        protocol: cri::Protocol::Tcp as i32,
        container_port: 8080,
        host_port: host_port as i32,
        host_ip: String::new(),
    });
    let a = d.run_pod(&a_cfg).await;
    d.start_container(&a, &a_cfg, server("a", 8080)).await;
    let a_ip = d.pod_status(&a).await.network.expect("net").ip;

    let b_cfg = pod_config("net-b");
    let b = d.run_pod(&b_cfg).await;
    let client = d
        .start_container(&b, &b_cfg, sh_container("client", "exec sleep 1000"))
        .await;

    // Host → pod.
    assert_eq!(fetch(&format!("{a_ip}:8080")), "hello from a\n");
    // Pod → pod.
    let (code, out, err) = d
        .sh(
            &client,
            &format!(
                "for i in 1 2 3 4 5; do nc -w 2 {a_ip} 8080 </dev/null && break; sleep 0.2; done"
            ),
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "hello from a\n");
    // hostPort from the host's loopback and from the host's own address on
    // the pod bridge.
    assert_eq!(fetch(&format!("127.0.0.1:{host_port}")), "hello from a\n");
    let gateway = format!("{}.1", d.subnet_prefix());
    assert_eq!(fetch(&format!("{gateway}:{host_port}")), "hello from a\n");

    // Pod → host: a listener on the host's bridge address.
    let listener = std::net::TcpListener::bind(format!("{gateway}:0")).expect("bind");
    let port = listener.local_addr().unwrap().port();
    let accept = std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, _) = listener.accept().expect("accept");
        s.write_all(b"hello from the host\n").unwrap();
    });
    let (code, out, err) = d
        .sh(&client, &format!("nc -w 3 {gateway} {port} </dev/null"))
        .await;
    assert_eq!((code, out.as_str()), (0, "hello from the host\n"), "{err}");
    accept.join().unwrap();

    // A berthd restart keeps every allocation: same IPs, a new pod gets
    // another one.
    let b_ip = d.pod_status(&b).await.network.expect("net").ip;
    d.restart().await;
    assert_eq!(d.pod_status(&a).await.network.expect("net").ip, a_ip);
    assert_eq!(d.pod_status(&b).await.network.expect("net").ip, b_ip);
    let c = d.run_pod(&pod_config("net-c")).await;
    let c_ip = d.pod_status(&c).await.network.expect("net").ip;
    assert!(c_ip != a_ip && c_ip != b_ip, "{c_ip} reused");
    assert_eq!(fetch(&format!("127.0.0.1:{host_port}")), "hello from a\n");

    let stats = d.pod_stats(&a).await;
    let net = stats.linux.expect("linux").network.expect("network");
    let iface = net.default_interface.expect("iface");
    assert!(iface.rx_bytes.expect("rx").value > 0 && iface.tx_bytes.expect("tx").value > 0);

    d.remove_all().await;
    assert_eq!(
        veths_on(&format!(
            "bt{}",
            d.subnet_prefix().rsplit('.').next().unwrap()
        )),
        0
    );
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_pods_at_once_get_distinct_addresses() {
    if need_root() {
        return;
    }
    let mut d = Berthd::start().await;
    let mut calls = Vec::new();
    for i in 0..20 {
        let mut cri = d.cri.clone();
        calls.push(tokio::spawn(async move {
            let id = cri
                .runtime
                .run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(pod_config(&format!("burst{i}"))),
                    runtime_handler: String::new(),
                })
                .await?
                .into_inner()
                .pod_sandbox_id;
            let st = cri
                .runtime
                .pod_sandbox_status(cri::PodSandboxStatusRequest {
                    pod_sandbox_id: id,
                    verbose: false,
                })
                .await?
                .into_inner();
            Ok::<_, tonic::Status>(
                st.status
                    .and_then(|s| s.network)
                    .map(|n| n.ip)
                    .unwrap_or_default(),
            )
        }));
    }
    let mut ips = HashSet::new();
    for c in calls {
        let ip = c
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("pod: {e}\n{}", d.log()));
        assert!(ip.starts_with(&d.subnet_prefix()), "{ip}");
        ips.insert(ip);
    }
    assert_eq!(ips.len(), 20);
    let bridge = format!("bt{}", d.subnet_prefix().rsplit('.').next().unwrap());
    assert_eq!(veths_on(&bridge), 20);
    d.remove_all().await;
    assert_eq!(veths_on(&bridge), 0);
    d.shutdown().await;
}
