#!/usr/bin/env bash
# Reproduces the "End to end: EICAR drop to alert" figure of BENCHMARKS.md. It starts
# `iocwatch up` (manager, intel store, API, dashboard and a local agent in one process) on
# a new data folder. Then it writes the EICAR test file into the watched folder under a
# new name, one file after another. Each latency runs from the start of a write to the
# detection alert's line in alerts.json.
#
# Everything runs on this machine only: the API listens on 127.0.0.1 with a free port.
# The EICAR test string is assembled from pieces at run time.
#
# Environment: BENCH_DIR (scratch folder, default /tmp/iocwatch-bench/eicar), DROPS
# (files written, default 1000), IOCWATCH (a release binary to use in place of building
# one).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
bench=${BENCH_DIR:-/tmp/iocwatch-bench/eicar}
drops=${DROPS:-1000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}

if [ -z "${IOCWATCH:-}" ]; then
    cargo build --release -p iocwatch
    IOCWATCH=$CARGO_TARGET_DIR/release/iocwatch
fi
rm -rf "$bench"
mkdir -p "$bench"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$IOCWATCH" "$bench" "$drops" <<'PY'
import os, signal, subprocess, sys, time

binary, bench, drops = sys.argv[1], sys.argv[2], int(sys.argv[3])
up = subprocess.Popen(
    [binary, "--data-dir", os.path.join(bench, "data"), "up", "--listen", "127.0.0.1:0"],
    stdout=subprocess.PIPE, stderr=open(os.path.join(bench, "up.log"), "w"), text=True)
started = time.perf_counter()
info = {}
for line in up.stdout:
    key, _, value = line.rstrip("\n").partition(": ")
    info[key] = value
    if line.startswith("ready in "):
        break
print(f"iocwatch up ready in {(time.perf_counter() - started) * 1e3:.0f} ms (wall, as seen here)")

eicar = "".join([r"X5O!P%@AP[4\PZX54(P^)7CC)7}$", "EICAR-STANDARD-", "ANTIVIRUS-TEST-",
                 "FILE!$H+H*"]).encode()
alerts = open(info["alerts"], "rb")
alerts.seek(0, os.SEEK_END)
pending = b""
latencies = []
for i in range(drops):
    path = os.path.join(info["watching"], f"eicar-{i}.com")
    needle = f'"path":"{path}"'.encode()
    begin = time.perf_counter()
    with open(path, "wb") as f:
        f.write(eicar)
    deadline = begin + 20
    found = False
    while not found:
        pending += alerts.read()
        *lines, pending = pending.split(b"\n")
        found = any(needle in l and b'"misp"' in l for l in lines)
        if not found:
            if time.perf_counter() > deadline:
                sys.exit(f"no alert for {path} within 20 s")
            time.sleep(0.0002)
    latencies.append(time.perf_counter() - begin)

up.send_signal(signal.SIGTERM)
up.wait(timeout=10)
latencies.sort()
def at(q):
    return latencies[max(0, int(-(-len(latencies) * q // 1)) - 1)] * 1e3
print(f"{len(latencies)} drops: p50 {at(0.5):.2f} ms, p90 {at(0.9):.2f} ms, "
      f"p99 {at(0.99):.2f} ms, max {latencies[-1] * 1e3:.2f} ms")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$bench"
