#!/usr/bin/env bash
# Reproduces the "Manager" figures of BENCHMARKS.md. It measures manager throughput in
# file events per second through decoding, de-duplication, intel lookup, rules and
# alert writing, fed by iocwatch-loadgen over TLS on loopback. Then it measures the
# detection latency from a file's close on an agent to its alert line.
#
# The manager and the load generator run on this machine only (127.0.0.1). The intel
# store holds one MISP event with one sha256 indicator, which every 1,000th event
# carries, so that those events raise the level 12 intel alert.
#
# Environment: BENCH_DIR (scratch folder, default /tmp/iocwatch-bench/manager), EVENTS
# (per run, default 200000), RUNS (default 3), CONNECTIONS (agents, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
bench=${BENCH_DIR:-/tmp/iocwatch-bench/manager}
events=${EVENTS:-200000}
runs=${RUNS:-3}
connections=${CONNECTIONS:-2}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
release=$CARGO_TARGET_DIR/release

cargo build --release -p iocwatch -p link --bins
rm -rf "$bench"
mkdir -p "$bench/data"
head -c 32 /dev/urandom | base64 > "$bench/secret"
known=4915089489c8f7e4f91a2d17a00c9c17a469b1d509983aae0e21dfe6877ee008
cat > "$bench/event.json" <<JSON
{"Event": {"info": "manager benchmark", "uuid": "6c1f7d2a-3b4e-4f5a-8c9d-0e1f2a3b4c5d",
  "threat_level_id": "1", "analysis": "2", "date": "2024-05-01",
  "Attribute": [{"type": "sha256", "category": "Payload delivery", "to_ids": true,
    "uuid": "7d2a3b4e-4f5a-4c9d-8e1f-2a3b4c5d6e7f", "value": "$known"}]}}
JSON
"$release/iocwatch" intel import --no-progress --data-dir "$bench/data" "$bench/event.json" >/dev/null
cat > "$bench/server.toml" <<TOML
data_dir = "$bench/data"
[listen]
enrollment = "127.0.0.1:0"
agents = "127.0.0.1:0"
[enrollment]
secret_file = "$bench/secret"
[api]
listen = "127.0.0.1:0"
TOML

"$release/iocwatch" --log warn server --config "$bench/server.toml" 2> "$bench/server.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -f "$bench/data/listen.json" ] && break; sleep 0.1; done
enroll=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['enrollment'])" "$bench/data/listen.json")

cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$runs"); do
    before=$(cpu_ticks)
    report=$("$release/iocwatch-loadgen" --manager "$enroll" --secret-file "$bench/secret" \
        --events "$events" --connections "$connections" --batch 1000 --window 8 \
        --match-sha256 "$known" --match-every 1000)
    after=$(cpu_ticks)
    ticks=$((after - before))
    echo "run $run: $report manager_cpu_seconds=$(awk -v t="$ticks" 'BEGIN { printf "%.2f", t / 100 }')" \
        "events_per_cpu_second=$((events * 100 / ticks))"
done
# CPU seconds of each manager thread over all runs, by thread name. The kernel cuts names
# to 15 bytes: `iocwatch-pipeli` is the pipeline's analysis thread.
for task in "/proc/$server/task"/*; do
    echo "$(cat "$task/comm") $(awk '{print $14 + $15}' "$task/stat")"
done | awk '{ticks[$1] += $2} END {for (name in ticks) printf "thread %s: %.2f cpu_seconds\n", name, ticks[name] / 100}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
kill $server
wait $server 2>/dev/null || true

cargo test --release -p iocwatch --test manager_e2e -- --ignored --nocapture detection_latency \
    2>&1 | grep "detection latency"
