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

for input in event.json list.txt; do
    rm -rf "$work/data"
    # A fresh store each time, so the import inserts every attribute.
    start="$(date +%s.%N)"
    "$bin" --data-dir "$work/data" intel import --no-progress "$work/$input" >"$work/summary.txt"
    end="$(date +%s.%N)"
    python3 - "$input" "$n" "$start" "$end" <<'PY'
import sys
name, n, start, end = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
secs = end - start
print(f"intel import {name}: {n} attributes in {secs:.2f} s = {n / secs:,.0f} attributes/s")
PY
    tail -n 1 "$work/summary.txt"
done
