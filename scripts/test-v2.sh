#!/usr/bin/env bash
# Runs the cgroup-sensitive part of berth's tests on a pure cgroup v2 kernel:
# the runtime's unit and end-to-end tests, the monitor's tests and the CRI
# tests (lifecycle, every config field, recovery, streaming, network), inside
# the throw-away QEMU guest of ../shared/tools/v2vm (this host boots cgroup v1
# hybrid). The test binaries are built here and run there, each with two
# threads. Called by scripts/test.sh; skipped with a note when the tool is
# not there (set V2VM=/path/to/v2vm.sh to point at it).
set -euo pipefail
cd "$(dirname "$0")/.."
v2vm=${V2VM:-$(cd .. && pwd)/shared/tools/v2vm/v2vm.sh}
if [ ! -x "$v2vm" ]; then
  echo "scripts/test-v2.sh: no $v2vm: the cgroup v2 tests are skipped" >&2
  exit 0
fi
tests=(runtime_lifecycle runtime_config runtime_errors runtime_limits
  monitor_pod monitor_exec monitor_stream monitor_detach
  cri_lifecycle cri_config cri_recovery cri_streaming cri_network)
cargo build --workspace --bins
# Test executables by target name; `berth_runtime` is the runtime's unit tests.
mapfile -t binaries < <(cargo test --workspace --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
wanted = set(sys.argv[1:])
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"] \
            and (t.get("name") in wanted or (t.get("name") == "berth_runtime" and "lib" in t.get("kind", []))):
        print(m["executable"])
' "${tests[@]}")
if [ "${#binaries[@]}" -ne $((${#tests[@]} + 1)) ]; then
  echo "scripts/test-v2.sh: found ${#binaries[@]} of $((${#tests[@]} + 1)) test binaries" >&2
  exit 1
fi
work=$(mktemp -d /tmp/berth-v2-tests.XXXXXX)
trap 'rm -rf "$work"' EXIT
{
  echo '#!/bin/bash'
  echo "cd $(pwd)"
  echo 'fail=0'
  for b in "${binaries[@]}"; do
    echo "echo \"== $(basename "$b")\""
    echo "$b --test-threads=2 >$work/out.log 2>&1 || { fail=1; cat $work/out.log; }"
    echo "grep 'test result' $work/out.log"
  done
  echo 'exit $fail'
} >"$work/run.sh"
chmod +x "$work/run.sh"
echo "cgroup v2 guest: ${#binaries[@]} test binaries"
"$v2vm" -d "$work" -t 2400 -- "$work/run.sh"
