"""MISP's sharing model through PyMISP with users of two organisations (and a third outside
the sharing group): organisation-only events and attributes stay with their organisation,
a sharing group admits its members, and only the owner organisation changes an event."""

import subprocess

import pytest
from pymisp import MISPEvent, MISPSharingGroup, PyMISP

from iocwatch_server import iocwatch_binary

SECRET = "org-a-only.example.org"
HIDDEN = "hidden-attribute.example.org"
GROUP_VALUE = "sharing-group.example.org"


def add_org_user(server, name, org):
    """Adds a user of `org` (created when missing) with the `users add --org` command."""
    out = subprocess.run(
        [str(iocwatch_binary()), "--data-dir", str(server["data_dir"]), "users", "add", name,
         "--role", "user", "--org", org],
        check=True, capture_output=True, text=True,
    )
    key = out.stdout.strip()
    assert len(key) == 40, f"unexpected key output: {out.stdout!r}"
    return key


@pytest.fixture(scope="module")
def orgs(server):
    clients = {}
    for name, org in [("alice@a.example", "Sharing Org A"), ("bob@b.example", "Sharing Org B"),
                      ("carol@c.example", "Sharing Org C")]:
        clients[org] = PyMISP(server["url"], add_org_user(server, name, org), ssl=False)
    return clients


def event(info, distribution, value):
    e = MISPEvent()
    e.info = info
    e.distribution = distribution
    e.add_attribute("domain", value, to_ids=True)
    return e


def values(client, controller, value):
    found = client.search(controller=controller, value=value, pythonify=True)
    if controller == "events":
        return [a.value for e in found for a in e.attributes]
    return [a.value for a in found]


def test_users_belong_to_orgs(orgs):
    alice = orgs["Sharing Org A"]
    me = alice.get_user(pythonify=True)
    org = alice.get_organisation(me.org_id, pythonify=True)
    assert org.name == "Sharing Org A"
    names = [o.name for o in alice.organisations(pythonify=True)]
    assert {"Sharing Org A", "Sharing Org B", "Sharing Org C"} <= set(names)


def test_org_only_event_stays_private(orgs):
    alice, bob = orgs["Sharing Org A"], orgs["Sharing Org B"]
    secret = alice.add_event(event("org A private", 0, SECRET), pythonify=True)
    assert secret.distribution == 0
    assert alice.get_event(secret.id, pythonify=True).info == "org A private"

    assert bob.get_event(secret.id)["errors"][0] == 404
    assert values(bob, "attributes", SECRET) == []
    assert values(bob, "events", SECRET) == []
    assert secret.uuid not in str(bob.events())
    assert values(alice, "attributes", SECRET) == [SECRET]


def test_org_only_attribute_hidden_alone(orgs):
    alice, bob = orgs["Sharing Org A"], orgs["Sharing Org B"]
    e = event("community event", 1, "community.example.org")
    e.add_attribute("domain", HIDDEN, distribution=0, to_ids=True)
    stored = alice.add_event(e, pythonify=True)

    seen = bob.get_event(stored.id, pythonify=True)
    assert [a.value for a in seen.attributes] == ["community.example.org"]
    owner = alice.get_event(stored.id, pythonify=True)
    assert sorted(a.value for a in owner.attributes) == ["community.example.org", HIDDEN]
    assert values(bob, "attributes", HIDDEN) == []


def test_sharing_group_admits_members(misp, orgs):
    alice, bob, carol = orgs["Sharing Org A"], orgs["Sharing Org B"], orgs["Sharing Org C"]
    group = MISPSharingGroup()
    group.name = "Org A and Org B"
    group.releasability = "A and B"
    group = misp.add_sharing_group(group, pythonify=True)
    org_ids = {o.name: o.id for o in misp.organisations(pythonify=True)}
    for name in ["Sharing Org A", "Sharing Org B"]:
        reply = misp.add_org_to_sharing_group(group, org_ids[name])
        assert reply.get("success") is True, reply
    listed = {g.name for g in misp.sharing_groups(pythonify=True)}
    assert "Org A and Org B" in listed

    e = event("group event", 4, GROUP_VALUE)
    e.sharing_group_id = group.id
    stored = alice.add_event(e, pythonify=True)
    assert int(stored.sharing_group_id) == int(group.id)

    assert bob.get_event(stored.id, pythonify=True).info == "group event"
    assert values(bob, "attributes", GROUP_VALUE) == [GROUP_VALUE]
    assert carol.get_event(stored.id)["errors"][0] == 404
    assert values(carol, "attributes", GROUP_VALUE) == []
    assert "Org A and Org B" not in str(carol.sharing_groups())


def test_other_org_cannot_edit_or_delete(orgs):
    alice, bob = orgs["Sharing Org A"], orgs["Sharing Org B"]
    stored = alice.add_event(event("owned by A", 1, "owned.example.org"), pythonify=True)

    stored.info = "changed by B"
    assert bob.update_event(stored)["errors"][0] == 403
    assert bob.delete_event(stored.id)["errors"][0] == 403
    assert alice.get_event(stored.id, pythonify=True).info == "owned by A"
    assert alice.delete_event(stored.id).get("success") is True
