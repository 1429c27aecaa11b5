"""Starts `iocwatch api` on a free loopback port with a fresh data directory, for the
TAXII tests: an admin key to add indicators through PyMISP, and a read-only user that
TAXII clients log in as with HTTP Basic."""

import os
import subprocess
from pathlib import Path

import pytest
from pymisp import PyMISP

ROOT = Path(__file__).resolve().parents[2]
READER = "reader@example.org"


def iocwatch_binary() -> Path:
    if os.environ.get("IOCWATCH_BIN"):
        return Path(os.environ["IOCWATCH_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return target / "debug" / "iocwatch"


def add_user(binary: Path, data_dir: Path, name: str, role: str) -> str:
    out = subprocess.run(
        [str(binary), "--data-dir", str(data_dir), "users", "add", name, "--role", role],
        check=True, capture_output=True, text=True,
    )
    key = out.stdout.strip()
    assert len(key) == 40, f"unexpected key output: {out.stdout!r}"
    return key


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    binary = iocwatch_binary()
    if not binary.exists():
        pytest.fail(f"{binary} is missing; build it with `cargo build -p iocwatch` or set IOCWATCH_BIN")
    data_dir = tmp_path_factory.mktemp("iocwatch-data")
    keys = {
        "admin": add_user(binary, data_dir, "admin@example.org", "admin"),
        "read-only": add_user(binary, data_dir, READER, "read-only"),
    }
    proc = subprocess.Popen(
        [str(binary), "--data-dir", str(data_dir), "api", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on "), f"unexpected first line: {line!r}"
        url = line.removeprefix("listening on ") + "/"
        yield {"url": url, "keys": keys, "reader": READER}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def misp(server):
    return PyMISP(server["url"], server["keys"]["admin"], ssl=False)
