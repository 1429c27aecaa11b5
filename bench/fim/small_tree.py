#!/usr/bin/env python3
"""Write COUNT small files (100 bytes, distinct content) under OUTDIR, 500 per folder.

Usage: small_tree.py OUTDIR COUNT
"""
import os
import sys


def main():
    out, count = sys.argv[1], int(sys.argv[2])
    for i in range(count):
        folder = os.path.join(out, "d%04d" % (i // 500))
        if i % 500 == 0:
            os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "f%06d" % i), "wb") as f:
            f.write(("file %d\n" % i).encode().ljust(100, b"."))


if __name__ == "__main__":
    main()
