"""STIX 2.1 output of restSearch: valid for the OASIS validator, and importable back
through `events/upload_stix/2` with the same indicators."""

import json

from pymisp import MISPEvent
from stix2validator import ValidationOptions, validate_instance

HASHES = {
    "md5": "5d41402abc4b2a76b9719d911017c592",
    "sha1": "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
    "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
}


def export_bundle(misp, event_id):
    return misp.search(controller="attributes", eventid=event_id, return_format="stix2")


def test_stix2_output_passes_the_validator(misp):
    ev = MISPEvent()
    ev.info = "stix export"
    for type_name, value in HASHES.items():
        ev.add_attribute(type_name, value)
    ev.add_attribute("filename|sha256", "setup.exe|" + "c" * 64)
    ev.add_attribute("domain", "example.org", to_ids=False)
    ev = misp.add_event(ev, pythonify=True)

    bundle = export_bundle(misp, ev.id)
    assert bundle["type"] == "bundle"
    indicators = [o for o in bundle["objects"] if o["type"] == "indicator"]
    assert len(indicators) == 5
    results = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert results.is_valid, [str(e) for e in results.errors]


def test_exported_bundle_imports_back(misp):
    ev = MISPEvent()
    ev.info = "stix round trip"
    for type_name, value in HASHES.items():
        ev.add_attribute(type_name, value)
    ev = misp.add_event(ev, pythonify=True)
    bundle = export_bundle(misp, ev.id)

    response = misp.upload_stix(data=json.dumps(bundle).encode())
    assert response.status_code == 200, response.text
    imported = MISPEvent()
    imported.load(response.json())
    assert imported.uuid != ev.uuid
    assert {(a.type, a.value) for a in imported.attributes} == set(HASHES.items())
