#!/usr/bin/env bash
# Runs berth's whole test suite (unit tests and the root end-to-end tests) on
# this host's cgroups, then the cgroup-sensitive tests on a cgroup v2 guest.
# Needs root: the end-to-end tests create namespaces, mounts, cgroups and veths.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "scripts/test.sh: run as root (sudo)" >&2; exit 1; fi
command -v busybox >/dev/null || scripts/install-deps.sh
cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
# berth-runtime's default parent cgroup (/berth), which the runtime tests'
# containers use and leave empty as runc leaves its own: remove it.
for d in /sys/fs/cgroup/berth /sys/fs/cgroup/*/berth; do
  [ -d "$d" ] && rmdir "$d" 2>/dev/null || true
done
scripts/check-leaks.sh
# The cgroup v2 half: the runtime, monitor and CRI tests again in a guest
# that boots cgroup v2 only (skipped when ../shared/tools/v2vm is absent, and
# when a test filter was given).
if [ $# -eq 0 ]; then scripts/test-v2.sh; fi
