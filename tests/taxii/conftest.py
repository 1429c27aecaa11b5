"""Starts `iocwatch api` on a free loopback port with a fresh data directory, for the
TAXII tests: an admin key to add indicators through PyMISP, and a read-only user that
TAXII clients log in as with HTTP Basic."""

import sys
from pathlib import Path

import pytest
from pymisp import PyMISP

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from iocwatch_server import api_server  # noqa: E402


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    with api_server(tmp_path_factory.mktemp("iocwatch-data")) as running:
        yield running


@pytest.fixture(scope="session")
def misp(server):
    return PyMISP(server["url"], server["keys"]["admin"], ssl=False)
