"""Feeds through PyMISP: a MISP feed in a local folder and the same layout served over
HTTP on loopback, both fetched into the store and found by search."""

import functools
import http.server
import json
import threading
import time
import uuid

from pymisp import MISPFeed


def write_feed(folder, md5):
    event_uuid = str(uuid.uuid4())
    event = {"Event": {
        "uuid": event_uuid, "info": "feed event", "date": "2024-01-01",
        "timestamp": str(int(time.time())), "threat_level_id": "2", "analysis": "2",
        "Orgc": {"name": "feed publisher", "uuid": str(uuid.uuid4())},
        "Attribute": [{"uuid": str(uuid.uuid4()), "type": "md5", "category": "Payload delivery",
                       "value": md5, "to_ids": True, "timestamp": "1700000000"}],
    }}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{event_uuid}.json").write_text(json.dumps(event))
    manifest = {event_uuid: {"info": "feed event", "Orgc": event["Event"]["Orgc"], "Tag": [],
                             "timestamp": event["Event"]["timestamp"], "date": "2024-01-01",
                             "threat_level_id": "2", "analysis": "2"}}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def add_and_fetch(misp, url, name):
    feed = MISPFeed()
    feed.name = name
    feed.provider = "suite"
    feed.url = url
    feed.source_format = "misp"
    feed.enabled = True
    added = misp.add_feed(feed, pythonify=True)
    assert isinstance(added, MISPFeed), added
    result = misp.fetch_feed(added.id)
    assert "errors" not in result, result
    return added


def test_local_feed_is_fetched(misp, tmp_path):
    md5 = "9e107d9d372bb6826bd81d3542a419d6"
    write_feed(tmp_path / "feed", md5)
    feed = add_and_fetch(misp, str(tmp_path / "feed"), "local feed")
    assert feed.input_source == "local"
    assert [a.value for a in misp.search(controller="attributes", value=md5, pythonify=True)] == [md5]
    assert "local feed" in [f.name for f in misp.feeds(pythonify=True)]


def test_http_feed_is_fetched(misp, tmp_path):
    md5 = "e4d909c290d0fb1ca068ffaddf22cbd0"
    write_feed(tmp_path / "served", md5)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "served"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        feed = add_and_fetch(misp, url, "http feed")
        assert feed.input_source == "network"
    finally:
        httpd.shutdown()
    assert [a.value for a in misp.search(controller="attributes", value=md5, pythonify=True)] == [md5]
