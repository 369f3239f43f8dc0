"""The sync converges: random interleaved edits on both sides of many pairs, with a fifth of the
vendors' answers faulty (429, 5xx, dropped connections before and after the write, slow), every
event delivered in a shuffled order and some twice. Afterwards both apps are compared field by
field with what the declared rule (newest wins) says, computed from the test's own log of edits:
no edit reverted, no record duplicated, every conflict recorded once."""

from __future__ import annotations

import random
from typing import Any

from connector.persistence.sync import SyncStore
from tests.runtime.e2e_support import CHAOS_FAULTS, set_faults
from tests.sync.conftest import Apps, Syncer
from tests.sync.test_sync_contacts import _ghl_event

PAIRS = 12
ROUNDS = 6
FIELDS = {"firstName": "firstName", "lastName": "lastName"}  # on GoHighLevel: on Connecteam


def _deliver(syncer: Syncer, side: str, event: str, payload: dict[str, Any]) -> None:
    """One delivery; a run that failed for good (a fault too many) is retried as `connector
    runs retry` would, so that what is judged is the sync, not the faults' luck."""
    for _ in range(5):
        record = syncer.event(side, event, payload)
        if record.status == "succeeded":
            return
    raise AssertionError(f"{side} {event} failed five times: {record.error}")


def test_random_edits_on_both_sides_converge_to_the_newest(apps: Apps, syncer: Syncer) -> None:
    rng = random.Random(24)
    people: list[tuple[str, int]] = []
    for n in range(PAIRS):
        first, last = f"First{n}", f"Last{n}"
        email, phone = f"conv{n}@example.org", f"+1444888{n:04d}"
        contact = apps.new_contact(firstName=first, lastName=last, email=email, phone=phone)
        user = apps.new_user(firstName=first, lastName=last, email=email, phoneNumber=phone)
        _deliver(syncer, "ghl", "ContactCreate", _ghl_event(contact, "ContactCreate"))
        people.append((contact["id"], user["userId"]))
    # the test's own log: per (pair, field), the newest edit (time, value)
    newest: dict[tuple[int, str], tuple[float, str]] = {}
    both_sides = 0
    for round_ in range(ROUNDS):
        events: list[tuple[str, str, dict[str, Any]]] = []
        edited: dict[tuple[int, str], set[str]] = {}
        for index, (contact_id, user_id) in enumerate(people):
            for _ in range(rng.randint(0, 2)):
                field = rng.choice(list(FIELDS))
                side = rng.choice(["ghl", "connecteam"])
                value = f"{field[:1]}{round_}-{index}-{rng.randint(0, 999)}"
                apps.advance(2)  # every edit in its own second: newest is well defined
                at = apps.sandbox.clock()
                if side == "ghl":
                    record = apps.edit_contact(contact_id, **{field: value})
                    events.append(("ghl", "ContactUpdate", _ghl_event(record)))
                else:
                    record = apps.edit_user(user_id, **{FIELDS[field]: value})
                    events.append(("connecteam", "user_updated", record))
                newest[(index, field)] = (at, value)
                edited.setdefault((index, field), set()).add(side)
        both_sides += sum(1 for sides in edited.values() if len(sides) == 2)
        # deliveries: shuffled, a sixth of them twice
        deliveries = events + [e for e in events if rng.random() < 1 / 6]
        rng.shuffle(deliveries)
        set_faults(apps.sandbox, *CHAOS_FAULTS, seed=round_ + 1)
        try:
            for side, event, payload in deliveries:
                _deliver(syncer, side, event, payload)
        finally:
            set_faults(apps.sandbox)
    # both apps agree with the newest edit of every field, and nothing was duplicated
    for index, (contact_id, user_id) in enumerate(people):
        contact, user = apps.contact(contact_id), apps.user(user_id)
        for field, ct_field in FIELDS.items():
            expected = newest.get(
                (index, field), (0.0, f"{'First' if field == 'firstName' else 'Last'}{index}")
            )[1]
            assert contact[field] == expected, (index, field, contact[field], expected)
            assert user[ct_field] == expected, (index, field, user[ct_field], expected)
    assert len([c for c in apps.contacts() if str(c.get("email", "")).startswith("conv")]) == PAIRS
    assert len([u for u in apps.users() if str(u.get("email", "")).startswith("conv")]) == PAIRS
    # conflicts: recorded once each (one fingerprint a row), none open (the rule decides)
    conflicts = SyncStore(syncer.runtime.db.engine).conflicts(limit=10_000)
    assert all(c.status == "decided" for c in conflicts)
    assert len({(c.ghl_id, c.field, c.ghl, c.connecteam) for c in conflicts}) == len(conflicts)
    assert len(conflicts) <= both_sides
