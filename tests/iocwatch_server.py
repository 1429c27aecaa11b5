"""Shared by the Python suites: finds the built `iocwatch` binary, adds users, and starts
`iocwatch api` on a free loopback port with a fresh data directory."""

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "admin@example.org"
READER = "reader@example.org"


def iocwatch_binary() -> Path:
    """Returns $IOCWATCH_BIN, or the debug build in $CARGO_TARGET_DIR or target/."""
    if os.environ.get("IOCWATCH_BIN"):
        return Path(os.environ["IOCWATCH_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return target / "debug" / "iocwatch"


def built_binary() -> Path:
    """Returns the binary, failing the run with the build command when it is missing."""
    binary = iocwatch_binary()
    if not binary.exists():
        pytest.fail(f"{binary} is missing; build it with `cargo build -p iocwatch` or set IOCWATCH_BIN")
    return binary


def add_user(binary: Path, data_dir: Path, name: str, role: str) -> str:
    """Adds a user with `iocwatch users add` and returns its 40-character key."""
    out = subprocess.run(
        [str(binary), "--data-dir", str(data_dir), "users", "add", name, "--role", role],
        check=True, capture_output=True, text=True,
    )
    key = out.stdout.strip()
    assert len(key) == 40, f"unexpected key output: {out.stdout!r}"
    return key


@contextmanager
def api_server(data_dir: Path):
    """Runs `iocwatch api` on a free loopback port with an admin and a read-only user, and
    yields its URL, the keys by role, the data directory and the read-only user's name."""
    binary = built_binary()
    keys = {
        "admin": add_user(binary, data_dir, ADMIN, "admin"),
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
        yield {"url": url, "keys": keys, "data_dir": data_dir, "reader": READER}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
