#!/usr/bin/env bash
# Times `iocwatch intel import` on a generated MISP event and a freetext hash list of
# N attributes each (default 1,000,000) and prints attributes per second, store commit
# included. Set IOCWATCH to a built binary to skip the release build.
set -euo pipefail
cd "$(dirname "$0")/.."

n="${N:-1000000}"
bin="${IOCWATCH:-target/release/iocwatch}"
if [ ! -x "$bin" ]; then
    cargo build --release -p iocwatch
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 bench/gen_intel.py event "$n" "$work/event.json"
python3 bench/gen_intel.py freetext "$n" "$work/list.txt"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo), $(uname -sr)"
echo "inputs: event.json $(du -h "$work/event.json" | cut -f1), list.txt $(du -h "$work/list.txt" | cut -f1)"

# Wall time is what the goal is about; CPU time (user + system) is printed too, because
# on a machine shared with other jobs the wall time includes waiting for a core.
TIMEFORMAT='%R %U %S'
for input in event.json list.txt; do
    rm -rf "$work/data"
    # A fresh store each time, so the import inserts every attribute.
    times="$( { time "$bin" --data-dir "$work/data" intel import --no-progress "$work/$input" >"$work/summary.txt"; } 2>&1 )"
    python3 - "$input" "$n" $times <<'PY'
import sys
name, n = sys.argv[1], int(sys.argv[2])
wall, user, system = (float(x) for x in sys.argv[3:6])
cpu = user + system
print(f"intel import {name}: {n} attributes in {wall:.2f} s wall = {n / wall:,.0f} attributes/s; "
      f"CPU {cpu:.2f} s (user {user:.2f}, system {system:.2f}) = {n / cpu:,.0f} attributes/CPU-s")
PY
    tail -n 1 "$work/summary.txt"
done
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
