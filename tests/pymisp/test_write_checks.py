"""Write checks through PyMISP, as MISP makes them. Another organisation cannot reach an
attribute by its uuid. Invalid event fields are rejected and leave the event readable, and
a stale event copy is rejected. Sightings name the organisation that recorded them, and a
hard delete removes the attribute."""

import uuid

import pytest
from pymisp import MISPAttribute, MISPEvent, MISPSighting, PyMISP

from test_sharing import add_org_user

MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture(scope="module")
def clients(server):
    return {
        "a": PyMISP(server["url"], add_org_user(server, "writer@a.example", "Write Org A"),
                    ssl=False),
        "b": PyMISP(server["url"], add_org_user(server, "writer@b.example", "Write Org B"),
                    ssl=False),
    }


def private_event(client, attribute_uuid):
    e = MISPEvent()
    e.info = "write checks: org A private"
    e.distribution = 0
    a = e.add_attribute("md5", MD5, to_ids=True)
    a.uuid = attribute_uuid
    return client.add_event(e, pythonify=True)


def test_private_uuid_unreachable_by_other_org(clients):
    attribute_uuid = str(uuid.uuid4())
    owner = private_event(clients["a"], attribute_uuid)

    plant = MISPEvent()
    plant.info = "write checks: plant"
    plant.distribution = 0
    planted = plant.add_attribute("comment", "x")
    planted.uuid = attribute_uuid
    response = clients["b"].add_event(plant)
    assert "errors" in response, response

    change = MISPAttribute()
    change.from_dict(uuid=attribute_uuid, type="comment", value="changed by org B")
    response = clients["b"].update_attribute(change, attribute_uuid)
    assert "errors" in response, response
    response = clients["b"].delete_attribute(attribute_uuid)
    assert "errors" in response, response

    stored = clients["a"].get_event(owner.id, pythonify=True)
    assert [(a.type, a.value, a.to_ids) for a in stored.attributes] == [("md5", MD5, True)]


@pytest.mark.parametrize("fields", [
    {"date": "2026-99-99"},
    {"EventReport": [{"name": "no content"}]},
    {"Attribute": [{"type": "md5", "value": MD5, "first_seen": "garbage"}]},
    {"Attribute": [{"type": "md5", "value": MD5, "uuid": "not-a-uuid"}]},
    {"Object": [{"Attribute": [{"type": "filename", "value": "a.exe"}]}]},
])
def test_invalid_edit_rejected(misp, fields):
    e = MISPEvent()
    e.info = "write checks: valid"
    e = misp.add_event(e, pythonify=True)
    response = misp._check_json_response(
        misp._prepare_request("POST", f"events/edit/{e.id}", data={"Event": fields}))
    assert "errors" in response, response
    stored = misp.get_event(e.id, pythonify=True)
    assert stored.info == "write checks: valid"
    assert stored.attributes == []


def test_stale_edit_rejected(misp):
    e = MISPEvent()
    e.info = "write checks: fresh"
    e = misp.add_event(e, pythonify=True)
    stale = {"Event": {"info": "stale", "timestamp": "1"}}
    response = misp._check_json_response(
        misp._prepare_request("POST", f"events/edit/{e.id}", data=stale))
    status, body = response["errors"]
    assert status == 403
    assert body["errors"] == (
        "Event could not be saved: Event in the request not newer than the local copy.")
    assert misp.get_event(e.id, pythonify=True).info == "write checks: fresh"


def test_sighting_names_the_recording_org(clients):
    e = MISPEvent()
    e.info = "write checks: community"
    e.distribution = 1
    value = f"{uuid.uuid4().hex}.example.org"
    e.add_attribute("domain", value)
    clients["a"].add_event(e)
    s = MISPSighting()
    s.from_dict(value=value)
    sighting = clients["b"].add_sighting(s, pythonify=True)
    assert sighting.Organisation["name"] == "Write Org B"


def test_hard_delete_removes_the_attribute(misp):
    attribute_uuid = str(uuid.uuid4())
    e = private_event(misp, attribute_uuid)
    response = misp.delete_attribute(attribute_uuid, hard=True)
    assert response.get("message") == "Attribute permanently deleted.", response
    assert misp.get_event(e.id, deleted=True, pythonify=True).attributes == []
