#!/usr/bin/env python3
"""Generates intel import benchmark inputs, deterministic for a given count.

    gen_intel.py event N OUT     one MISP event (feed format) with N hash attributes
    gen_intel.py freetext N OUT  a hash list with N lines

Hashes are sha256 (1 in 2), md5 (1 in 4) and sha1 (1 in 4) of the line number, so
every value is distinct and valid.
"""

import hashlib
import json
import sys
import uuid

NAMESPACE = uuid.UUID("5d1f7a2c-9e0b-4c61-8a3f-2b6e1c9d4e70")


def hash_for(i):
    data = str(i).encode()
    if i % 2 == 0:
        return "sha256", hashlib.sha256(data).hexdigest()
    if i % 4 == 1:
        return "md5", hashlib.md5(data).hexdigest()
    return "sha1", hashlib.sha1(data).hexdigest()


def write_event(n, out):
    event_uuid = uuid.uuid5(NAMESPACE, "bench-event")
    head = {
        "uuid": str(event_uuid),
        "info": f"Generated benchmark event with {n} attributes",
        "date": "2024-01-01",
        "timestamp": "1704067200",
        "threat_level_id": "3",
        "analysis": "2",
        "published": True,
        "Orgc": {"name": "bench", "uuid": str(uuid.uuid5(NAMESPACE, "bench-org"))},
        "Tag": [{"name": "tlp:white"}],
    }
    with open(out, "w") as f:
        f.write('{"Event": ')
        f.write(json.dumps(head)[:-1])
        f.write(', "Attribute": [\n')
        for i in range(n):
            kind, value = hash_for(i)
            attribute = {
                "uuid": str(uuid.uuid5(event_uuid, str(i))),
                "type": kind,
                "category": "Payload delivery",
                "to_ids": True,
                "value": value,
                "timestamp": "1704067200",
                "comment": "",
                "distribution": "5",
            }
            f.write(("," if i else "") + json.dumps(attribute) + "\n")
        f.write("]}}\n")


def write_freetext(n, out):
    with open(out, "w") as f:
        f.write("# generated hash list\n")
        for i in range(n):
            f.write(hash_for(i)[1] + "\n")


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("event", "freetext"):
        sys.exit(__doc__)
    kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    (write_event if kind == "event" else write_freetext)(n, out)


if __name__ == "__main__":
    main()
