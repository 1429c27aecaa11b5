"""Galaxy clusters of events and attributes come back in MISP's `Galaxy` shape, which
PyMISP parses into MISPGalaxy and MISPGalaxyCluster objects."""

import uuid

APT28 = 'misp-galaxy:threat-actor="APT28"'
POWERSHELL = 'misp-galaxy:mitre-attack-pattern="PowerShell - T1059.001"'


def cluster(galaxy_type, value, tag_name, external_id=None):
    entry = {"type": galaxy_type, "value": value, "tag_name": tag_name}
    if external_id:
        entry["meta"] = {"external_id": [external_id]}
    return entry


def test_event_and_attribute_galaxies_parse(misp):
    event_uuid = str(uuid.uuid4())
    event = {"Event": {
        "uuid": event_uuid,
        "info": "galaxy clusters",
        "Galaxy": [{"name": "Threat Actor", "type": "threat-actor",
                    "GalaxyCluster": [cluster("threat-actor", "APT28", APT28)]}],
        "Attribute": [{
            "type": "domain", "category": "Network activity", "value": "galaxy.example",
            "Galaxy": [{"name": "Attack Pattern", "type": "mitre-attack-pattern",
                        "GalaxyCluster": [cluster("mitre-attack-pattern",
                                                  "PowerShell - T1059.001", POWERSHELL,
                                                  "T1059.001")]}],
        }],
    }}
    misp.direct_call("events/add", event)

    viewed = misp.get_event(event_uuid, pythonify=True)
    assert [g.type for g in viewed.galaxies] == ["threat-actor"]
    clusters = viewed.galaxies[0].clusters
    assert [(c.value, c.tag_name) for c in clusters] == [("APT28", APT28)]

    attribute = viewed.attributes[0]
    assert [g.type for g in attribute.galaxies] == ["mitre-attack-pattern"]
    technique = attribute.galaxies[0].clusters[0]
    assert technique.value == "PowerShell - T1059.001"
    assert technique.meta["external_id"] == ["T1059.001"]

    # The derived uuids stay the same from one read to the next.
    again = misp.get_event(event_uuid, pythonify=True)
    assert again.galaxies[0].clusters[0].uuid == clusters[0].uuid


def test_event_without_galaxies_has_an_empty_list(misp):
    event_uuid = str(uuid.uuid4())
    misp.direct_call("events/add", {"Event": {"uuid": event_uuid, "info": "no galaxy"}})
    raw = misp.direct_call(f"events/view/{event_uuid}")
    assert raw["Event"]["Galaxy"] == []
