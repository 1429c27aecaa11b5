"""PyMISP from PyPI against `iocwatch api`: events, attributes, objects, searches,
sightings, warninglists, freetext import, updates and deletes."""

import uuid

import pytest
import requests
from pymisp import MISPAttribute, MISPEvent, MISPObject, MISPSighting, PyMISP
from pymisp.exceptions import PyMISPError

MD5_UPPER = "0749BAE92CA336A02C83D126E04EC628"
SHA256 = "a0e3b3a1f1b3b3c6d1a8e4c3a1a9d27bb0b1f7c1a8a3d5b4c3e2f1a0b9c8d7e6"
SHA256_IN_OBJECT = "b1f4c7e8d9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6"
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture(scope="module")
def event(misp):
    ev = MISPEvent()
    ev.info = "pymisp suite: hashes"
    ev.add_tag("tlp:green")
    ev.add_attribute("md5", MD5_UPPER)
    ev.add_attribute("filename|sha256", f"dropper.exe|{SHA256.upper()}")
    ev.add_attribute("comment", "context only", to_ids=False)
    obj = MISPObject("file")
    obj.add_attribute("filename", value="payload.dll")
    obj.add_attribute("sha256", value=SHA256_IN_OBJECT)
    ev.add_object(obj)
    added = misp.add_event(ev, pythonify=True)
    assert isinstance(added, MISPEvent), added
    return added


def test_connects_and_reads_user(misp):
    assert misp._current_user.email == "admin@example.org"
    assert misp._current_role.perm_add
    assert "md5" in misp.describe_types["types"]
    assert misp.misp_instance_version["version"]


def test_wrong_key_is_refused(server):
    with pytest.raises(PyMISPError):
        PyMISP(server["url"], "x" * 40, ssl=False)
    r = requests.get(server["url"] + "servers/getVersion", headers={"Authorization": "wrong"})
    assert r.status_code == 403
    assert set(r.json()) >= {"name", "message", "url"}


def test_event_values_are_normalised(event):
    values = {a.type: a.value for a in event.attributes}
    assert values["md5"] == MD5_UPPER.lower()
    assert values["filename|sha256"] == f"dropper.exe|{SHA256}"
    assert event.objects[0].name == "file"
    assert isinstance(event.id, (str, int))
    assert [t.name for t in event.tags] == ["tlp:green"]


def test_get_event_round_trip(misp, event):
    fetched = misp.get_event(event.id, pythonify=True)
    assert fetched.uuid == event.uuid
    assert len(fetched.attributes) == 3
    assert len(fetched.objects[0].attributes) == 2


def test_search_by_upper_case_value(misp, event):
    found = misp.search(controller="attributes", value=MD5_UPPER, pythonify=True)
    assert [a.value for a in found] == [MD5_UPPER.lower()]
    assert found[0].Event.uuid == event.uuid


def test_bare_sha256_finds_composite(misp, event):
    found = misp.search(controller="attributes", value=SHA256, pythonify=True)
    assert [a.type for a in found] == ["filename|sha256"]


def test_search_by_type_and_to_ids(misp, event):
    found = misp.search(controller="attributes", type_attribute="sha256", pythonify=True)
    assert [a.value for a in found] == [SHA256_IN_OBJECT]
    not_ids = misp.search(controller="attributes", eventid=event.id, to_ids=0, pythonify=True)
    assert [a.type for a in not_ids] == ["comment"]
    ids = misp.search(controller="attributes", eventid=event.id, to_ids=1, pythonify=True)
    assert len(ids) == 4


def test_search_wildcard_and_paging(misp, event):
    found = misp.search(controller="attributes", value="dropper%", pythonify=True)
    assert len(found) == 1
    page = misp.search(controller="attributes", eventid=event.id, limit=2, page=2, pythonify=True)
    assert len(page) == 2


def test_search_csv_and_text(misp, event):
    csv_text = misp.search(controller="attributes", value=MD5_UPPER, return_format="csv")
    assert csv_text.splitlines()[0].startswith("uuid,event_id,category,type,value")
    text = misp.search(controller="attributes", eventid=event.id, type_attribute="md5", return_format="text")
    assert text.strip() == MD5_UPPER.lower()


def test_events_search(misp, event):
    found = misp.search(controller="events", value=SHA256, pythonify=True)
    assert [e.uuid for e in found] == [event.uuid]


def test_sightings_add_and_list(misp, event):
    attribute = next(a for a in event.attributes if a.type == "md5")
    s = MISPSighting()
    s.value = MD5_UPPER
    s.source = "pytest"
    added = misp.add_sighting(s, pythonify=True)
    assert isinstance(added, MISPSighting), added
    misp.add_sighting({"source": "pytest"}, attribute, pythonify=True)
    listed = misp.sightings(attribute, pythonify=True)
    assert len(listed) == 2
    assert all(x.source == "pytest" for x in listed)

    found = misp.search_sightings(context="attribute", context_id=attribute, source="pytest", pythonify=True)
    assert len(found) == 2
    misp.delete_sighting(found[0])
    assert len(misp.sightings(attribute, pythonify=True)) == 1


def test_empty_file_md5_is_on_a_warninglist(misp):
    hits = misp.values_in_warninglist([EMPTY_MD5, MD5_UPPER.lower()])
    assert EMPTY_MD5 in hits
    assert MD5_UPPER.lower() not in hits


def test_freetext_import(misp, event):
    text = "seen 8.8.8.8 and evil[.]example[.]com with 44d88612fea8a8f36de82e1278abb02f"
    added = misp.freetext(event.id, text, pythonify=True)
    types = sorted(a.type for a in added)
    assert "hostname" in types
    assert "md5" in types


def test_invalid_value_is_rejected_per_field(misp, event):
    response = misp.add_attribute(event.id, {"type": "md5", "value": "not-a-hash"})
    assert "errors" in response
    status, body = response["errors"]
    assert status == 403
    assert "value" in body["errors"]


def test_read_only_key_cannot_write(reader, event):
    response = reader.add_attribute(event.id, {"type": "md5", "value": EMPTY_MD5})
    assert response["errors"][0] == 403
    assert reader.search(controller="attributes", value=MD5_UPPER, pythonify=True)


def test_update_and_delete(misp):
    ev = MISPEvent()
    ev.info = "pymisp suite: to change"
    ev.add_attribute("sha1", "A" * 40)
    ev = misp.add_event(ev, pythonify=True)

    attribute = ev.attributes[0]
    attribute.comment = "changed"
    updated = misp.update_attribute(attribute, pythonify=True)
    assert isinstance(updated, MISPAttribute), updated
    assert updated.comment == "changed"

    ev.info = "pymisp suite: changed"
    ev.add_attribute("md5", "b" * 32)
    ev = misp.update_event(ev, pythonify=True)
    assert ev.info == "pymisp suite: changed"
    assert len(ev.attributes) == 2

    misp.delete_attribute(ev.attributes[1])
    assert not misp.search(controller="attributes", value="b" * 32, pythonify=True)

    misp.delete_event(ev)
    assert "errors" in misp.get_event(ev.id)
    marker = str(uuid.uuid4())
    assert not misp.search(controller="attributes", value=marker, pythonify=True)
