#!/usr/bin/env python3
"""Print the FIM benchmark results (bench/fim.sh) as the Markdown of BENCHMARKS.md.

Usage: report.py RESULTS_DIR
"""
import json
import os
import sys


def load(out, name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


def openssl_mb_s(out, alg):
    # Last line of `openssl speed -bytes 16384`: name, then bytes/s in units of 1000.
    line = open(os.path.join(out, "openssl-%s.txt" % alg)).read().split()
    return float(line[-1].rstrip("k")) / 1000.0


def scan_table(out):
    results = load(out, "scan.json")["results"]
    tree_bytes = int(open(os.path.join(out, "tree-bytes.txt")).read())
    cores = os.cpu_count()
    speeds = {alg: openssl_mb_s(out, alg) for alg in ("md5", "sha1", "sha256")}
    per_core = 1.0 / sum(1.0 / s for s in speeds.values())
    floor_s = tree_bytes / 1e6 / (per_core * cores)
    ours = results[0]["median"]
    print("| command | median (s) | min-max (s) | vs iocwatch |")
    print("|---|---|---|---|")
    for r in results:
        print("| %s | %.2f | %.2f-%.2f | %.2fx |" % (
            r["command"], r["median"], r["min"], r["max"], r["median"] / ours))
    print("| floor: openssl speed md5 %.0f, sha1 %.0f, sha256 %.0f MB/s -> %.0f MB/s per core x %d cores | %.2f | | %.2fx |" % (
        speeds["md5"], speeds["sha1"], speeds["sha256"], per_core, cores, floor_s, floor_s / ours))
    print()
    print("iocwatch / floor: %.2f (goal: at most 1.3)" % (ours / floor_s))
    for r in results[1:]:
        print("%s / iocwatch: %.2f (goal: at least 2.5)" % (r["command"], r["median"] / ours))


def realtime_table(out):
    print("| watcher | p50 | p90 | p99 | max |")
    print("|---|---|---|---|---|")
    for name, label in (("agent", "iocwatch agent"), ("peer", "inotifywait + sha256sum loop")):
        r = load(out, "latency-%s.json" % name)
        print("| %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms |" % (
            label, r["p50_us"] / 1e3, r["p90_us"] / 1e3, r["p99_us"] / 1e3, r["max_us"] / 1e3))
    print()
    print("| watcher | files written | writer time | reported | last report after the writer finished |")
    print("|---|---|---|---|---|")
    for name, label in (("agent", "iocwatch agent"), ("peer", "inotifywait + sha256sum loop")):
        r = load(out, "burst-%s.json" % name)
        print("| %s | %d | %.2f s | %d | %.0f ms |" % (
            label, r["files"], r["write_ms"] / 1e3, r["reported"], r["last_after_writer_ms"]))


def rest_table(out):
    r = load(out, "rest.json")
    cpu_s = r["cpu_ticks"] / r["ticks_per_sec"]
    print("| files | RSS at rest | peak RSS (baseline scan) | CPU at rest | baseline scan |")
    print("|---|---|---|---|---|")
    print("| %d | %.1f MB | %.1f MB | %.2f s in %d s | %.1f s |" % (
        r["files"], r["rss_kb"] / 1024, r["peak_rss_kb"] / 1024, cpu_s, r["seconds"],
        r["scan"]["duration_ms"] / 1e3))


def main():
    out = sys.argv[1]
    print(open(os.path.join(out, "machine.txt")).read())
    scan_table(out)
    print()
    realtime_table(out)
    print()
    rest_table(out)


if __name__ == "__main__":
    main()
