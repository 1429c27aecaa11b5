"""Tags through PyMISP: create, list, attach to an attribute, search by tag, remove."""

from pymisp import MISPEvent, MISPTag


def test_tag_attach_search_and_remove(misp):
    tag = MISPTag()
    tag.name = "iocwatch:suite"
    tag.colour = "#ff0000"
    created = misp.add_tag(tag, pythonify=True)
    assert created.name == "iocwatch:suite"
    assert "iocwatch:suite" in [t.name for t in misp.tags(pythonify=True)]

    ev = MISPEvent()
    ev.info = "tags"
    ev.add_tag("tlp:amber")
    attribute = ev.add_attribute("sha1", "1" * 40)
    ev = misp.add_event(ev, pythonify=True)
    attribute = ev.attributes[0]

    assert misp.tag(attribute, "iocwatch:suite")["saved"]
    found = misp.search(controller="attributes", tags="iocwatch:suite", pythonify=True)
    assert [a.uuid for a in found] == [attribute.uuid]

    with_event_tags = misp.search(controller="attributes", eventid=ev.id, include_event_tags=True, pythonify=True)
    assert {t.name for t in with_event_tags[0].tags} == {"iocwatch:suite", "tlp:amber"}

    misp.untag(attribute, "iocwatch:suite")
    assert not misp.search(controller="attributes", tags="iocwatch:suite", pythonify=True)
