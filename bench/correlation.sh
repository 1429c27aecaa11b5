#!/usr/bin/env bash
# Builds intel stores of 250,000, 500,000 and 1,000,000 attributes whose values repeat
# with a Zipf distribution (exponent 1 over N/2 values: a few values in thousands of
# events, most in one or a few), once with correlation and once without, and prints a
# Markdown table: import time (wall and CPU), correlation rows, values, over-correlating
# values, bytes of the correlation tables (SQLite dbstat), the store file, and how many
# attribute pairs a pairwise table (MISP's) would hold with and without the limit of 100.
# Set SIZES to change the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes="${SIZES:-250000 500000 1000000}"
cargo build --release -p intel --example correlation_bench
target="${CARGO_TARGET_DIR:-target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo), $(uname -sr)"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086 # the sizes are separate arguments
"$target/release/examples/correlation_bench" "$work" $sizes
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
