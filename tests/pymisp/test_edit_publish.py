"""PyMISP's update_event and publish against `iocwatch api`: keys the store does not model
survive an edit, and publish_timestamp is the time of publishing."""

import time
import uuid

from pymisp import MISPEvent, MISPObject

EXTENDS = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
FIRST_SEEN = "2024-01-02T03:04:05.000000+00:00"


def add_event_with_unmodelled_keys(misp):
    ev = MISPEvent()
    ev.info = "pymisp suite: unmodelled keys"
    ev.extends_uuid = EXTENDS
    attribute = ev.add_attribute("sha1", "c" * 40)
    attribute.first_seen = FIRST_SEEN
    obj = MISPObject("file")
    obj.comment = "dropped by the loader"
    obj.add_attribute("filename", value="loader.exe")
    ev.add_object(obj)
    added = misp.add_event(ev, pythonify=True)
    assert isinstance(added, MISPEvent), added
    return added, obj.template_uuid


def assert_kept(event, template_uuid):
    assert event["extends_uuid"] == EXTENDS
    attribute = next(a for a in event["Attribute"] if a["type"] == "sha1")
    assert attribute["first_seen"].startswith("2024-01-02T03:04:05")
    obj = event["Object"][0]
    assert obj["comment"] == "dropped by the loader"
    assert obj["template_uuid"] == template_uuid


def test_update_event_keeps_unmodelled_keys(misp):
    added, template_uuid = add_event_with_unmodelled_keys(misp)
    assert_kept(misp.get_event(added.uuid)["Event"], template_uuid)

    added.info = "pymisp suite: unmodelled keys, edited"
    misp.update_event(added)
    event = misp.get_event(added.uuid)["Event"]
    assert event["info"] == "pymisp suite: unmodelled keys, edited"
    assert_kept(event, template_uuid)

    # A partial edit, as MISP merges it: absent keys stay.
    misp.direct_call(f"events/edit/{added.uuid}", {"Event": {"info": "partial"}})
    event = misp.get_event(added.uuid)["Event"]
    assert event["info"] == "partial"
    assert_kept(event, template_uuid)


def test_publish_records_publish_timestamp(misp):
    ev = MISPEvent()
    ev.info = "pymisp suite: publish time"
    ev.add_attribute("md5", uuid.uuid4().hex)
    ev = misp.add_event(ev, pythonify=True)
    assert misp.get_event(ev.uuid)["Event"]["publish_timestamp"] == "0"

    before = int(time.time())
    misp.publish(ev)
    published = int(misp.get_event(ev.uuid)["Event"]["publish_timestamp"])
    assert before <= published <= int(time.time())

    found = misp.search(controller="events", publish_timestamp=before - 1, pythonify=True)
    assert ev.uuid in [e.uuid for e in found]
    older = misp.search(
        controller="events", publish_timestamp=[before - 7200, before - 3600], pythonify=True
    )
    assert ev.uuid not in [e.uuid for e in older]

    misp.unpublish(ev)
    event = misp.get_event(ev.uuid)["Event"]
    assert event["published"] is False
    assert int(event["publish_timestamp"]) == published
