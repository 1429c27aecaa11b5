"""PyMISP's event report and object reference calls against `iocwatch api`: add, get,
update, list and delete, with the shapes PyMISP reads back."""

from pymisp import MISPEvent, MISPEventReport, MISPObject, MISPObjectReference


def new_event(misp, info):
    ev = MISPEvent()
    ev.info = info
    ev.add_attribute("domain", "entries.example")
    obj = MISPObject("file")
    obj.add_attribute("filename", value="entries.exe")
    ev.add_object(obj)
    added = misp.add_event(ev, pythonify=True)
    assert isinstance(added, MISPEvent), added
    return added


def new_report(name, content):
    report = MISPEventReport()
    report.name = name
    report.content = content
    return report


def test_event_report_lifecycle(misp):
    ev = new_event(misp, "pymisp suite: event reports")
    added = misp.add_event_report(ev, new_report("Summary", "# Findings"), pythonify=True)
    assert isinstance(added, MISPEventReport), added
    assert added.name == "Summary"
    assert str(added.event_id) == str(ev.id)

    fetched = misp.get_event_report(added.id, pythonify=True)
    assert fetched.uuid == added.uuid
    assert fetched.content == "# Findings"

    fetched.content = "# Findings, revised"
    updated = misp.update_event_report(fetched, pythonify=True)
    assert updated.content == "# Findings, revised"
    assert misp.get_event_report(added.uuid)["EventReport"]["content"] == "# Findings, revised"

    second = misp.add_event_report(ev.uuid, new_report("Second", "text"), pythonify=True)
    listed = misp.get_event_reports(ev.id, pythonify=True)
    assert sorted(r.name for r in listed) == ["Second", "Summary"]

    answer = misp.delete_event_report(added)
    assert answer["success"], answer
    answer = misp.delete_event_report(second, hard=True)
    assert answer["message"] == f"Event Report {second.id} hard deleted", answer
    assert misp.get_event_reports(ev.id) == []
    assert "errors" in misp.get_event_report(added.id)


def test_event_report_needs_name_and_content(misp):
    ev = new_event(misp, "pymisp suite: invalid report")
    answer = misp.direct_call(f"eventReports/add/{ev.id}", {"EventReport": {"name": "n"}})
    status, body = answer["errors"]
    assert status == 403
    assert list(body["errors"]) == ["content"], body


def test_object_reference_add_and_delete(misp):
    ev = new_event(misp, "pymisp suite: object references")
    obj = ev.objects[0]
    reference = obj.add_reference(ev.attributes[0].uuid, "communicates-with")
    added = misp.add_object_reference(reference, pythonify=True)
    assert isinstance(added, MISPObjectReference), added
    assert added.uuid == reference.uuid
    assert added.relationship_type == "communicates-with"
    view = misp.get_event(ev.uuid)["Event"]
    assert [r["uuid"] for r in view["Object"][0]["ObjectReference"]] == [added.uuid]

    answer = misp.delete_object_reference(added)
    assert answer["success"], answer
    assert misp.get_event(ev.uuid)["Event"]["Object"][0].get("ObjectReference", []) == []

    second = obj.add_reference(obj.uuid, "related-to")
    second = misp.add_object_reference(second, pythonify=True)
    answer = misp.delete_object_reference(second.id, hard=True)
    assert answer["message"] == "ObjectReference permanently deleted.", answer


def test_object_reference_needs_relationship(misp):
    ev = new_event(misp, "pymisp suite: invalid reference")
    answer = misp.direct_call(
        "objectReferences/add",
        {"object_uuid": ev.objects[0].uuid, "referenced_uuid": ev.attributes[0].uuid},
    )
    status, body = answer["errors"]
    assert status == 403
    assert list(body["errors"]) == ["relationship_type"], body


def test_reader_cannot_add_report(server, reader, misp):
    ev = new_event(misp, "pymisp suite: read-only report")
    answer = reader.add_event_report(ev, new_report("n", "c"))
    assert "errors" in answer, answer
