#!/usr/bin/env bash
# Reproduces the "Hash lookups" and "Scan" figures of BENCHMARKS.md.
#
# It installs the peer tools from Debian and generates the test tree once. It loads the same
# 1,000,001 sha256 values into iocwatch's store and into a ClamAV .hsb file. Then it times
# iocwatch against clamscan, hashdeep, rhash and plain reading in one hyperfine invocation,
# so that every ratio comes from the same run. Runs are warm: the tree is read once before,
# and hyperfine adds one warm-up run per command. COLD=1 drops the page cache before every
# run instead (needs root).
#
# Environment: BENCH_DIR (scratch folder, default /tmp/iocwatch-bench), GEN_TREE (the tree
# generator, default ../shared/bench/gen_tree.py from the repository root), RUNS (default 3),
# IOCWATCH_BIN (an already built release binary, to skip `cargo build --release`).
# Results go to $BENCH_DIR/results; report.py prints them as the BENCHMARKS.md tables.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
bench=${BENCH_DIR:-/tmp/iocwatch-bench}
gen_tree=${GEN_TREE:-../shared/bench/gen_tree.py}
runs=${RUNS:-3}
out=$bench/results
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
iocwatch=${IOCWATCH_BIN:-$CARGO_TARGET_DIR/release/iocwatch}
data_dir=$bench/iocwatch-data

install_peers() {
    local need=()
    for pkg in clamav hashdeep rhash aide inotify-tools hyperfine time; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
    [ "${#need[@]}" -eq 0 ] && return
    if [ "$(id -u)" != 0 ]; then
        echo "bench/run.sh: missing packages: ${need[*]} (install them with apt-get as root)" >&2
        exit 2
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
}

make_tree() {
    local files
    files=$( [ -d "$bench/tree" ] && find "$bench/tree" -type f | wc -l || echo 0)
    if [ "$files" != 20000 ]; then
        [ -f "$gen_tree" ] || { echo "bench/run.sh: tree generator not found: $gen_tree (set GEN_TREE)" >&2; exit 2; }
        rm -rf "$bench/tree"
        python3 "$gen_tree" "$bench/tree"
    fi
}

record_machine() {
    {
        echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
        echo "cores: $(nproc)"
        echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
        echo "kernel: $(uname -r)"
        echo "sha_ni: $(grep -q sha_ni /proc/cpuinfo && echo yes || echo no)"
        echo "load_before: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
        echo "versions: $(clamscan --version | head -1); hashdeep $(hashdeep -V); $(rhash --version); $(hyperfine --version)"
    } > "$out/machine.txt"
}

main() {
    mkdir -p "$bench" "$out"
    install_peers
    [ -n "${IOCWATCH_BIN:-}" ] || cargo build --release -p iocwatch
    make_tree
    python3 bench/make_hashes.py "$bench"
    record_machine

    rm -rf "$data_dir" && mkdir -p "$bench/empty"
    "$iocwatch" --data-dir "$data_dir" intel import --no-progress "$bench/hashes.txt" > "$out/import.txt"

    # Correctness first: both scanners must report the planted file.
    set +e
    "$iocwatch" --data-dir "$data_dir" scan "$bench/tree" > "$out/iocwatch_matches.jsonl" 2> "$out/iocwatch_summary.txt"
    echo "iocwatch_exit=$?" > "$out/checks.txt"
    clamscan -r --infected --no-summary -d "$bench/db.hsb" "$bench/tree" > "$out/clamscan_matches.txt"
    echo "clamscan_exit=$?" >> "$out/checks.txt"
    set -e

    find "$bench/tree" -type f -print0 | xargs -0 cat > /dev/null
    local prepare=true
    [ "${COLD:-0}" = 1 ] && prepare='sync; echo 3 > /proc/sys/vm/drop_caches'
    local scan="$iocwatch --data-dir $data_dir scan --quiet"
    cd "$bench"
    hyperfine --warmup 1 --runs "$runs" --ignore-failure --prepare "$prepare" \
        --export-json "$out/scan.json" --export-markdown "$out/scan.md" \
        -n 'read (find | xargs cat)' 'find tree -type f -print0 | xargs -0 cat > /dev/null' \
        -n 'iocwatch scan, 1M sha256' "$scan tree" \
        -n 'iocwatch load only, 1M sha256' "$scan empty" \
        -n 'clamscan -d 1M sha256 .hsb' 'clamscan -r --no-summary -d db.hsb tree' \
        -n 'clamscan load only' 'clamscan -r --no-summary -d db.hsb empty' \
        -n 'iocwatch scan --digests md5,sha1,sha256' "$scan --digests md5,sha1,sha256 tree" \
        -n 'iocwatch scan --digests md5,sha1,sha256 --threads 1' "$scan --digests md5,sha1,sha256 --threads 1 tree" \
        -n 'hashdeep -r -c md5,sha1,sha256' 'hashdeep -r -c md5,sha1,sha256 tree' \
        -n 'rhash --md5 --sha1 --sha256 -r' 'rhash --md5 --sha1 --sha256 -r tree'
    cd "$repo"

    for cmd in "$scan tree" "clamscan -r --no-summary -d $bench/db.hsb $bench/tree"; do
        (cd "$bench" && /usr/bin/time -f "%M KB max RSS: $cmd" $cmd > /dev/null 2>> "$out/rss.txt") || true
    done
    echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"

    cargo bench -p index --bench lookup > "$out/index.txt"
    cargo bench -p hashing --bench throughput > "$out/hashing.txt"
    python3 bench/report.py "$out"
}

main "$@"
