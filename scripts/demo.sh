#!/usr/bin/env bash
# Demo: build berth, start berthd (unless one runs), and run a pod manifest on
# berth's built-in image (berth.local/busybox, made from Debian's
# busybox-static): no registry, no cluster. The pod prints what the downward
# API and a Secret give it and exits; `berth run` shows its progress and log,
# then removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "scripts/demo.sh: run as root (sudo)" >&2; exit 1; fi
command -v busybox >/dev/null && command -v protoc >/dev/null && command -v nft >/dev/null \
  || scripts/install-deps.sh
cargo build --release -p berth-agent --bins
bin=target/release
manifest=${1:-examples/oneshot.yaml}
started=""
if ! "$bin/berth" version >/dev/null 2>&1; then
  log=$(mktemp /tmp/berthd-demo.XXXXXX.log)
  "$bin/berthd" >"$log" 2>&1 &
  started=$!
  trap 'kill -TERM $started 2>/dev/null; wait $started 2>/dev/null || true' EXIT
  for _ in $(seq 100); do "$bin/berth" version >/dev/null 2>&1 && break; sleep 0.1; done
  "$bin/berth" version >/dev/null || { cat "$log" >&2; exit 1; }
  echo "berthd started (log: $log)"
fi
"$bin/berth" images
"$bin/berth" run "$manifest"
