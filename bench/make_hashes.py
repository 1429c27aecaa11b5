#!/usr/bin/env python3
"""Write the hash lists of the scan benchmark into OUTDIR.

hashes.txt: 1,000,000 random sha256 values plus the sha256 of the planted file of the
generated tree, one lower-case hex value per line (a free-text list for `iocwatch intel
import`). db.hsb: the same values as a ClamAV hash signature file, `sha256:*:name:73`; the `*`
size needs the minimum engine level 73 in the fourth field.

Usage: make_hashes.py OUTDIR [COUNT]
"""
import os
import random
import sys

SEED = 20261204
PLANTED_SHA256 = "836b9bf7af01146121e887a9eeab29768d17dca0d9a1275b75c3822091acf51c"


def main():
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    rng = random.Random(SEED)
    values = ["%064x" % rng.getrandbits(256) for _ in range(count)]
    values.append(PLANTED_SHA256)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "hashes.txt"), "w") as text, open(os.path.join(out, "db.hsb"), "w") as hsb:
        for i, value in enumerate(values):
            name = "Bench.Planted.IOC" if value == PLANTED_SHA256 else "Bench.Rand.%d" % i
            text.write(value + "\n")
            hsb.write("%s:*:%s:73\n" % (value, name))
    print("wrote %d sha256 values to %s" % (len(values), out))


if __name__ == "__main__":
    main()
