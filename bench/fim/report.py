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
    floor_cpu = tree_bytes / 1e6 / per_core
    floor_wall = floor_cpu / cores
    ours = results[0]
    ours_cpu = ours["user"] + ours["system"]
    print("| command | median wall (s) | min-max (s) | CPU-s (user+sys) | wall vs iocwatch | CPU vs iocwatch |")
    print("|---|---|---|---|---|---|")
    for r in results:
        cpu = r["user"] + r["system"]
        print("| %s | %.2f | %.2f-%.2f | %.2f | %.2fx | %.2fx |" % (
            r["command"], r["median"], r["min"], r["max"], cpu,
            r["median"] / ours["median"], cpu / ours_cpu))
    print("| floor: openssl speed md5 %.0f, sha1 %.0f, sha256 %.0f MB/s = %.0f MB/s per core, %d cores | %.2f | | %.2f | %.2fx | %.2fx |" % (
        speeds["md5"], speeds["sha1"], speeds["sha256"], per_core, cores,
        floor_wall, floor_cpu, floor_wall / ours["median"], floor_cpu / ours_cpu))
    print()
    print("iocwatch / floor: %.2f by wall time, %.2f by CPU time (goal: at most 1.3)" % (
        ours["median"] / floor_wall, ours_cpu / floor_cpu))
    for r in results[1:]:
        print("%s / iocwatch: %.2f by wall time, %.2f by CPU time (goal: at least 2.5)" % (
            r["command"], r["median"] / ours["median"], (r["user"] + r["system"]) / ours_cpu))


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
