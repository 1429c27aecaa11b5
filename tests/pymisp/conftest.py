"""Starts `iocwatch api` on a free loopback port with a fresh data directory, and gives
the tests PyMISP clients for an admin and a read-only user."""

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


@pytest.fixture(scope="session")
def reader(server):
    return PyMISP(server["url"], server["keys"]["read-only"], ssl=False)
