#!/usr/bin/env bash
# Demo: build berth and run a busybox container with berth-runtime (no registry).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "scripts/demo.sh: run as root (sudo)" >&2; exit 1; fi
command -v busybox >/dev/null && command -v protoc >/dev/null || scripts/install-deps.sh
cargo build --release -p berth-runtime -p berth-fixtures
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
target/release/berth-fixtures bundle "$dir/bundle" -- \
  sh -c 'echo "hello from $(hostname), pid $$ in my own namespaces"; id; ls /'
target/release/berth-runtime --root "$dir/state" run --bundle "$dir/bundle" "demo-$$"
