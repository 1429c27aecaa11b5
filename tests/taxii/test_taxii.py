"""The TAXII 2.1 server through taxii2-client, the OASIS TC's Python client: discovery,
collections, paged downloads, and STIX 2.1 that the OASIS validator accepts."""

import pytest
import requests
from pymisp import MISPEvent
from stix2validator import ValidationOptions, validate_instance
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import Server, as_pages

INDICATORS = 23
PAGE = 5


@pytest.fixture(scope="module")
def indicators(misp):
    """Adds INDICATORS sha256 indicators in two events, and two attributes that are not
    indicators; returns the STIX ids of the indicators."""
    ids = []
    for number, count in enumerate([INDICATORS - 10, 10]):
        event = MISPEvent()
        event.info = f"taxii event {number}"
        for i in range(count):
            event.add_attribute("sha256", f"{number:02x}{i:062x}")
        event.add_attribute("md5", "f" * 32, to_ids=False)
        event.add_attribute("text", "not an indicator")
        event = misp.add_event(event, pythonify=True)
        ids += [f"indicator--{a.uuid}" for a in event.attributes if a.to_ids and a.type == "sha256"]
    assert len(ids) == INDICATORS
    return ids


@pytest.fixture(scope="module")
def collection(server, indicators):
    taxii = Server(
        server["url"] + "taxii2/", user=server["reader"], password=server["keys"]["read-only"]
    )
    (root,) = taxii.api_roots
    assert taxii.default.url == root.url
    (collection,) = root.collections
    return collection


def test_discovery_and_collection(collection):
    assert collection.can_read
    assert not collection.can_write
    assert collection.media_types == ["application/stix+json;version=2.1"]


def test_objects_page_by_page(collection, indicators):
    pages = list(as_pages(collection.get_objects, per_request=PAGE))
    objects = [o for page in pages for o in page.get("objects", [])]
    assert all(len(page.get("objects", [])) <= PAGE for page in pages)
    # 23 indicators and one identity, 5 a page.
    assert len(pages) == 5
    assert sorted(o["id"] for o in objects if o["type"] == "indicator") == sorted(indicators)
    assert [o["type"] for o in objects].count("identity") == 1


def test_manifest_matches_objects(collection, indicators):
    manifest = collection.get_manifest()
    records = manifest["objects"]
    assert len(records) == INDICATORS + 1
    dates = [r["date_added"] for r in records]
    assert dates == sorted(dates)
    newest = dates[-1]
    assert collection.get_objects(added_after=newest) == {"more": False}


def test_bundle_passes_the_validator(collection):
    envelope = collection.get_objects()
    bundle = {"type": "bundle", "id": "bundle--8e6f1c55-3f2b-4d6c-9a57-0c1f2b3d4e5f",
              "objects": envelope["objects"]}
    results = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert results.is_valid, [str(e) for e in results.errors]


def test_one_object_and_its_versions(collection, indicators):
    envelope = collection.get_object(indicators[0])
    (indicator,) = envelope["objects"]
    assert indicator["pattern"].startswith("[file:hashes.'SHA-256' = '")
    versions = collection.object_versions(indicators[0])
    assert versions["versions"] == [indicator["modified"]]


def test_wrong_password_is_rejected(server):
    taxii = Server(server["url"] + "taxii2/", user=server["reader"], password="x" * 40)
    with pytest.raises(requests.HTTPError) as error:
        taxii.refresh()
    assert error.value.response.status_code == 401
    assert error.value.response.headers["WWW-Authenticate"].startswith("Basic ")
