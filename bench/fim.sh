#!/usr/bin/env bash
# Reproduces the "FIM" figures of BENCHMARKS.md, all in one run on one machine:
#   1. baseline scan of the generated tree: `iocwatch agent --once` against `aide --init -W 2`
#      (md5+sha1+sha256) and `hashdeep -r -c md5,sha1,sha256`, in one hyperfine invocation,
#      plus the floor from `openssl speed` (three digests' single-core costs over all cores);
#   2. realtime latency, writer's close() to the event line with digests, 1,000 files of
#      4 KiB one at a time, against `inotifywait -m -e close_write | while read; sha256sum`;
#   3. a burst of 10,000 new 4 KiB files: how many are reported, and how late the last is;
#   4. memory and CPU of the agent at rest with 100,000 monitored files.
#
# Environment: BENCH_DIR (scratch folder, default /tmp/iocwatch-bench), GEN_TREE (the tree
# generator, default ../shared/bench/gen_tree.py from the repository root), RUNS (hyperfine
# runs, default 3), REST_SECS (seconds of the at-rest CPU sample, default 30).
# Results go to $BENCH_DIR/fim/results; bench/fim/report.py prints them as Markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
bench=${BENCH_DIR:-/tmp/iocwatch-bench}
gen_tree=${GEN_TREE:-../shared/bench/gen_tree.py}
runs=${RUNS:-3}
rest_secs=${REST_SECS:-30}
work=$bench/fim
out=$work/results
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
iocwatch=$CARGO_TARGET_DIR/release/iocwatch
driver=$CARGO_TARGET_DIR/release/examples/fim_bench

install_peers() {
    local need=()
    for pkg in aide hashdeep inotify-tools hyperfine openssl; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
    [ "${#need[@]}" -eq 0 ] && return
    if [ "$(id -u)" != 0 ]; then
        echo "bench/fim.sh: missing packages: ${need[*]} (install them with apt-get as root)" >&2
        exit 2
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
}

make_tree() {
    local files
    files=$( [ -d "$bench/tree" ] && find "$bench/tree" -type f | wc -l || echo 0)
    if [ "$files" != 20000 ]; then
        [ -f "$gen_tree" ] || { echo "bench/fim.sh: tree generator not found: $gen_tree (set GEN_TREE)" >&2; exit 2; }
        rm -rf "$bench/tree"
        python3 "$gen_tree" "$bench/tree"
    fi
}

# agent_config DIR NAME [OUTPUT_FILE]: writes $work/NAME.toml monitoring DIR.
agent_config() {
    local output='kind = "stdout"'
    [ -n "${3:-}" ] && output="kind = \"file\"
path = \"$3\""
    cat > "$work/$2.toml" <<TOML
database_path = "$work/$2-db/baseline.sqlite"
quarantine_dir = "$work/$2-quarantine"
[output]
$output
[[directories]]
path = "$1"
TOML
}

baseline_scan() {
    agent_config "$bench/tree" scan "$work/scan-events.jsonl"
    mkdir -p "$work/aide"
    cat > "$work/aide.conf" <<CONF
database_in=file:$work/aide/aide.db
database_out=file:$work/aide/aide.db.new
gzip_dbout=no
report_url=stdout
log_level=warning
IOC = md5+sha1+sha256
$bench/tree IOC
CONF
    find "$bench/tree" -type f -print0 | xargs -0 cat > /dev/null
    hyperfine --warmup 1 --runs "$runs" \
        --prepare "rm -rf $work/scan-db $work/aide/aide.db.new" \
        --export-json "$out/scan.json" \
        -n 'iocwatch agent --once (baseline, md5+sha1+sha256)' "$iocwatch agent --config $work/scan.toml --once" \
        -n 'aide --init -W 2 (md5+sha1+sha256)' "aide -c $work/aide.conf --init -W 2" \
        -n 'hashdeep -r -c md5,sha1,sha256' "hashdeep -r -c md5,sha1,sha256 $bench/tree"
    "$iocwatch" agent --config "$work/scan.toml" --once 2> "$out/scan-summary.txt"
    du -sb "$bench/tree" | cut -f1 > "$out/tree-bytes.txt"
    for alg in md5 sha1 sha256; do
        openssl speed -seconds 3 -bytes 16384 -evp "$alg" 2>/dev/null | tail -1 > "$out/openssl-$alg.txt"
    done
}

realtime() {
    local peer='inotifywait -m -e close_write --format %w%f DIR | while IFS= read -r f; do sha256sum "$f"; done'
    for what in latency burst; do
        for dir in "$work/$what-agent" "$work/$what-peer"; do rm -rf "$dir" && mkdir -p "$dir"; done
        rm -rf "$work/$what-db"
        agent_config "$work/$what-agent" "$what"
    done
    "$driver" latency "$work/latency-agent" 1000 10 scan_finished -- \
        "$iocwatch" agent --config "$work/latency.toml" > "$out/latency-agent.json"
    "$driver" latency "$work/latency-peer" 1000 10 "Watches established" -- \
        sh -c "${peer//DIR/$work/latency-peer}" > "$out/latency-peer.json"
    "$driver" burst "$work/burst-agent" 10000 scan_finished -- \
        "$iocwatch" agent --config "$work/burst.toml" > "$out/burst-agent.json"
    "$driver" burst "$work/burst-peer" 10000 "Watches established" -- \
        sh -c "${peer//DIR/$work/burst-peer}" > "$out/burst-peer.json"
}

at_rest() {
    local tree=$work/rest-tree events=$work/rest-events.jsonl
    if [ "$(find "$tree" -type f 2>/dev/null | wc -l)" != 100000 ]; then
        rm -rf "$tree"
        python3 bench/fim/small_tree.py "$tree" 100000
    fi
    rm -rf "$work/rest-db" "$events"
    agent_config "$tree" rest "$events"
    "$iocwatch" agent --config "$work/rest.toml" & local pid=$!
    local waited=0
    until grep -q scan_finished "$events" 2>/dev/null; do
        sleep 1; waited=$((waited + 1))
        [ "$waited" -lt 600 ] || { echo "bench/fim.sh: the agent never finished its scan" >&2; kill "$pid"; exit 1; }
    done
    sleep 5
    local ticks=$(getconf CLK_TCK)
    local cpu0 cpu1
    cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    sleep "$rest_secs"
    cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    {
        echo "{\"files\":100000,\"rss_kb\":$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status"),"
        echo "\"peak_rss_kb\":$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status"),"
        echo "\"cpu_ticks\":$((cpu1 - cpu0)),\"ticks_per_sec\":$ticks,\"seconds\":$rest_secs,"
        echo "\"scan\":$(grep scan_finished "$events" | tail -1 | python3 -c 'import json,sys; print(json.dumps(json.loads(sys.stdin.read())["scan"]))')}"
    } > "$out/rest.json"
    kill "$pid"; wait "$pid" || true
}

main() {
    mkdir -p "$work" "$out"
    install_peers
    cargo build --release -p iocwatch
    cargo build --release -p fim --example fim_bench
    make_tree
    {
        echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
        echo "cores: $(nproc)"
        echo "kernel: $(uname -r)"
        echo "sha_ni: $(grep -q sha_ni /proc/cpuinfo && echo yes || echo no)"
        echo "inotify: max_user_watches=$(cat /proc/sys/fs/inotify/max_user_watches) max_queued_events=$(cat /proc/sys/fs/inotify/max_queued_events)"
        echo "versions: $(aide --version 2>&1 | head -1); hashdeep $(hashdeep -V); $(inotifywait --help 2>&1 | head -1); $(openssl version); $(hyperfine --version)"
        echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
        echo "uptime_before: $(uptime)"
    } > "$out/machine.txt"
    baseline_scan
    realtime
    at_rest
    echo "uptime_after: $(uptime)" >> "$out/machine.txt"
    python3 bench/fim/report.py "$out"
}

main "$@"
