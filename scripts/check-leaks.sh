#!/usr/bin/env bash
# Fails if the test suite left berth mounts, cgroups or processes on the machine.
set -u
leaks=""
m=$(grep -E 'berth' /proc/self/mountinfo | awk '{print $5}')
[ -n "$m" ] && leaks+="mounts:\n$m\n"
c=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path '*/berth/*' 2>/dev/null)
[ -n "$c" ] && leaks+="cgroups:\n$c\n"
p=$(ps -eo pid,comm | awk '$2 ~ /^berth-(runtime|monitor)$/')
[ -n "$p" ] && leaks+="processes:\n$p\n"
if [ -n "$leaks" ]; then printf "left behind by the tests:\n$leaks" >&2; exit 1; fi
echo "no leaks"
