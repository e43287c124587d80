#!/usr/bin/env bash
# Installs the Debian packages that berth's build, tests and benchmarks need.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  busybox-static runc crun podman conmon skopeo umoci docker-registry containerd \
  hyperfine containernetworking-plugins nftables iptables iproute2 \
  apache2-utils procps util-linux kmod ca-certificates protobuf-compiler \
  qemu-system-x86 linux-image-cloud-amd64 cpio python3 >/dev/null
