"""PyMISP's object calls, search_index, repeated attributes, stale update_event copies
and sightings by value against `iocwatch api`, expecting the responses MISP returns."""

import time
import uuid

from pymisp import MISPEvent, MISPObject


def new_event(misp, info, *attributes):
    ev = MISPEvent()
    ev.info = info
    for kind, value in attributes:
        ev.add_attribute(kind, value)
    added = misp.add_event(ev, pythonify=True)
    assert isinstance(added, MISPEvent), added
    return added


def test_objects_add_update_delete(misp):
    ev = new_event(misp, "pymisp suite: objects")
    obj = MISPObject("file")
    obj.add_attribute("filename", value="first.exe")
    added = misp.add_object(ev, obj, pythonify=True)
    assert added.uuid == obj.uuid
    assert added.template_uuid == obj.template_uuid

    added.comment = "edited"
    edited = misp.update_object(added, pythonify=True)
    assert edited.comment == "edited"

    misp.delete_object(edited)
    assert misp.get_event(ev.uuid)["Event"].get("Object", []) == []

    second = MISPObject("file")
    second.add_attribute("filename", value="second.exe")
    second = misp.add_object(ev, second, pythonify=True)
    misp.delete_object(second, hard=True)
    view = misp.get_event(f"{ev.uuid}/deleted:1")["Event"]
    assert [o["uuid"] for o in view.get("Object", [])] == [edited.uuid]


def test_similar_attribute_is_rejected(misp):
    ev = new_event(misp, "pymisp suite: duplicates", ("domain", "dup.example"))
    answer = misp.add_attribute(ev, {"type": "domain", "value": "dup.example"})
    assert "errors" in answer, answer
    assert "A similar attribute already exists" in str(answer)
    assert len(misp.get_event(ev.uuid)["Event"]["Attribute"]) == 1


def test_stale_update_event_does_not_undelete(misp):
    ev = new_event(misp, "pymisp suite: stale copy", ("domain", "stale.example"))
    stale = misp.get_event(ev.uuid, pythonify=True)
    time.sleep(1.1)
    misp.delete_attribute(stale.attributes[0])
    stale.info = "pymisp suite: stale copy, edited"
    misp.update_event(stale)
    event = misp.get_event(ev.uuid)["Event"]
    assert event["info"] == "pymisp suite: stale copy, edited"
    assert event.get("Attribute", []) == []


def test_search_index_filters(misp):
    marker = uuid.uuid4().hex
    published = new_event(misp, f"pymisp suite: index {marker} a")
    misp.publish(published)
    new_event(misp, f"pymisp suite: index {marker} b")
    found = misp.search_index(eventinfo=marker)
    assert len(found) == 2
    found = misp.search_index(eventinfo=marker, published=True)
    assert [e["uuid"] for e in found] == [published.uuid]
    assert len(misp.search_index(eventinfo=marker, limit=1)) == 1
    found = misp.search_index(eventinfo=marker, sort="info", desc=True)
    assert found[0]["info"].endswith(" b")
    answer = misp.search_index(publish_timestamp="banana")
    assert "errors" in answer or "message" in answer, answer


def test_sighting_by_values(misp):
    value = f"{uuid.uuid4().hex}.example"
    new_event(misp, "pymisp suite: sighting by values", ("domain", value))
    answer = misp.direct_call("sightings/add", {"values": [value], "source": "pymisp"})
    assert answer["Sighting"]["source"] == "pymisp", answer
