#!/usr/bin/env bash
# Fails if the test suite left berth mounts, network namespaces, veths,
# bridges, cgroups or processes on the machine.
set -u
leaks=""
m=$(grep -E 'berth' /proc/self/mountinfo | awk '{print $5}')
[ -n "$m" ] && leaks+="mounts:\n$m\n"
c=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d \( -path '*/berth/*' -o -name 'berth-test-*' -o -path '*/berth-test-*/*' \) 2>/dev/null)
[ -n "$c" ] && leaks+="cgroups:\n$c\n"
# Zombies are not counted: a detached monitor's exit is reaped by PID 1,
# which on some machines does so only every few seconds. A process still on
# its way out gets up to 5 s.
berth_procs() {
  ps -eo pid,stat,comm | awk '$2 !~ /^Z/ && $3 ~ /^(berth-runtime|berth-monitor|berth-pause|berthd)$/ {print $1, $3}'
}
for _ in $(seq 50); do [ -z "$(berth_procs)" ] && break; sleep 0.1; done
p=$(berth_procs)
[ -n "$p" ] && leaks+="processes:\n$p\n"
v=$(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | grep '^bv')
[ -n "$v" ] && leaks+="veths:\n$v\n"
b=$(ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}' | grep -E '^bt[0-9]+$')
[ -n "$b" ] && leaks+="test bridges:\n$b\n"
if [ -n "$leaks" ]; then printf "left behind by the tests:\n$leaks" >&2; exit 1; fi
echo "no leaks"
