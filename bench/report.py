#!/usr/bin/env python3
"""Print the results of bench/run.sh as the markdown tables of BENCHMARKS.md.

Reads RESULTS/scan.json (hyperfine), RESULTS/index.txt and RESULTS/hashing.txt (key=value
lines from the bench binaries), RESULTS/machine.txt and RESULTS/rss.txt, writes
RESULTS/summary.md and prints it.

Usage: report.py RESULTS
"""
import json
import os
import statistics
import sys

TREE_BYTES = 1_574_295_382
TREE_FILES = 20_000


def key_values(path):
    values = {}
    if os.path.exists(path):
        for line in open(path):
            for field in line.split():
                if "=" in field:
                    key, value = field.split("=", 1)
                    values[key] = value
    return values


def scan_table(results):
    by_name = {r["command"]: r for r in results}
    median = {name: statistics.median(r["times"]) for name, r in by_name.items()}
    lines = [
        "| command | median wall (s) [min–max] | user+sys CPU (s) | MB/s | vs iocwatch |",
        "|---|---|---|---|---|",
    ]
    pairs = {
        "clamscan -d 1M sha256 .hsb": "iocwatch scan, 1M sha256",
        "clamscan load only": "iocwatch load only, 1M sha256",
        "hashdeep -r -c md5,sha1,sha256": "iocwatch scan --digests md5,sha1,sha256",
        "rhash --md5 --sha1 --sha256 -r": "iocwatch scan --digests md5,sha1,sha256",
    }
    for name, r in by_name.items():
        ratio = ""
        if name in pairs and pairs[name] in median:
            ratio = "%.1fx slower" % (median[name] / median[pairs[name]])
        mb_per_second = TREE_BYTES / median[name] / 1e6 if "load only" not in name else float("nan")
        lines.append(
            "| `%s` | %.2f [%.2f–%.2f] | %.1f | %s | %s |"
            % (
                name,
                median[name],
                min(r["times"]),
                max(r["times"]),
                r["user"] + r["system"],
                "–" if mb_per_second != mb_per_second else "%.0f" % mb_per_second,
                ratio,
            )
        )
    return lines, median


def main():
    results = sys.argv[1]
    out = []
    machine = open(os.path.join(results, "machine.txt")).read().strip()
    out += ["Machine:", "", "```", machine, "```", ""]

    index = key_values(os.path.join(results, "index.txt"))
    if index:
        out += [
            "| figure | value |",
            "|---|---|",
            "| digests in the index | %s sha256 + md5 |" % index.get("digests"),
            "| `get` lookups/s, one thread, half hits | %.1f M |" % (float(index["get_lookups_per_second"]) / 1e6),
            "| `get_batch` lookups/s, one thread, half hits | %.1f M |"
            % (float(index["get_batch_lookups_per_second"]) / 1e6),
            "| heap bytes per sha256 (sha256-only index of %s) | %s |"
            % (index.get("sha256_only_digests"), index.get("heap_bytes_per_sha256")),
            "| heap bytes per digest, sha256 + md5 index | %s |" % index.get("heap_bytes_per_digest"),
            "| build time, sha256 + md5 | %s s |" % index.get("build_seconds"),
            "| process RSS after build | %s MiB |" % index.get("rss_mib"),
            "",
        ]

    hashing = key_values(os.path.join(results, "hashing.txt"))
    if hashing:
        out += ["In-memory hashing, one thread (MB/s): " + ", ".join("%s %s" % (k.replace("_mb_per_second", ""), v) for k, v in hashing.items()), ""]

    scan_json = os.path.join(results, "scan.json")
    if os.path.exists(scan_json):
        lines, median = scan_table(json.load(open(scan_json))["results"])
        out += lines + [""]
        scan = median.get("iocwatch scan, 1M sha256")
        full = median.get("iocwatch scan --digests md5,sha1,sha256")
        if scan and full:
            out.append(
                "Ratios: clamscan / iocwatch = %.1f; hashdeep / iocwatch (3 digests) = %.2f; "
                "rhash / iocwatch (3 digests) = %.2f; iocwatch files/s = %.0f."
                % (
                    median["clamscan -d 1M sha256 .hsb"] / scan,
                    median["hashdeep -r -c md5,sha1,sha256"] / full,
                    median["rhash --md5 --sha1 --sha256 -r"] / full,
                    TREE_FILES / scan,
                )
            )
            out.append("")

    for name in ("checks.txt", "rss.txt"):
        path = os.path.join(results, name)
        if os.path.exists(path):
            out += ["```", open(path).read().strip(), "```", ""]

    text = "\n".join(out)
    open(os.path.join(results, "summary.md"), "w").write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
