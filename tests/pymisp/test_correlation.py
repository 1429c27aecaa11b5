"""Correlation through PyMISP: related events in event views and event searches, related
attributes with includeCorrelations, and the over-correlation flag."""

from pymisp import MISPEvent

SHA1 = "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"


def related_event(entry):
    """PyMISP keeps each RelatedEvent entry as {'Event': MISPEvent} or as a MISPEvent."""
    return entry["Event"] if isinstance(entry, dict) else entry


def add_event(misp, info, kind, value):
    event = MISPEvent()
    event.info = info
    event.add_attribute(kind, value)
    return misp.add_event(event, pythonify=True)


def test_related_event_parses(misp):
    first = add_event(misp, "correlation first", "sha1", SHA1)
    second = add_event(misp, "correlation second", "filename|sha1", f"loader.exe|{SHA1}")

    viewed = misp.get_event(first.id, pythonify=True)
    related = [related_event(r) for r in viewed.RelatedEvent]
    assert [r.id for r in related] == [second.id]
    assert related[0].info == "correlation second"
    assert related[0].uuid == second.uuid
    assert viewed.attributes[0].over_correlation is False

    found = misp.search(eventid=second.id, pythonify=True)
    assert [related_event(r).id for r in found[0].RelatedEvent] == [first.id]


def test_attributes_carry_related_attributes(misp):
    first = add_event(misp, "correlated domain one", "domain", "pivot.example.net")
    second = add_event(misp, "correlated domain two", "hostname", "pivot.example.net")

    found = misp.search(controller="attributes", eventid=first.id, include_correlations=True,
                        pythonify=True)
    assert len(found) == 1
    related = found[0].RelatedAttribute
    assert [int(r["event_id"]) for r in related] == [int(second.id)]
    assert related[0]["type"] == "hostname"
    assert found[0].over_correlation is False
