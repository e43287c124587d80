#!/usr/bin/env bash
# Fails if the test suite left berth mounts, network namespaces, veths,
# bridges, cgroups or processes on the machine.
set -u
leaks=""
m=$(grep -E 'berth' /proc/self/mountinfo | awk '{print $5}')
[ -n "$m" ] && leaks+="mounts:\n$m\n"
c=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d \( -path '*/berth/*' -o -name 'berth-test-*' -o -path '*/berth-test-*/*' \) 2>/dev/null)
[ -n "$c" ] && leaks+="cgroups:\n$c\n"
p=$(ps -eo pid,comm | awk '$2 ~ /^(berth-runtime|berth-monitor|berth-pause|berthd)$/')
[ -n "$p" ] && leaks+="processes:\n$p\n"
v=$(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | grep '^bv')
[ -n "$v" ] && leaks+="veths:\n$v\n"
b=$(ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}' | grep -E '^bt[0-9]+$')
[ -n "$b" ] && leaks+="test bridges:\n$b\n"
if [ -n "$leaks" ]; then printf "left behind by the tests:\n$leaks" >&2; exit 1; fi
echo "no leaks"
