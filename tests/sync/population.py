"""A population of people for the initial-sync tests: GoHighLevel contacts and Connecteam users
put straight into the sandbox's state (thousands in moments, with no webhook), and what both
apps must hold after an initial sync, computed from the same description.

Of 5,000 contacts and 3,000 users (at the default size), 2,000 people are on both sides:

- most share an email (and a phone); a few of them have another last name in Connecteam, some
  changed later in GoHighLevel, some later in Connecteam;
- some share only a phone: the contact has no email, or the user has none;
- ``ambiguous`` contacts share their email with two users each: nothing can pair them;

the others are on one side only. The declaration pairs by ``[email, phone]`` and says
``initial: connecteam``: Connecteam's value wins a field two paired records differ on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.sandbox.seeding import add_contact, add_user
from connector.sandbox.state import SandboxState

T0 = 1_704_067_200  # 2024-01-01


@dataclass
class Person:
    """One person as the test knows them: the fields each side was seeded with, the ids, and
    the fields both sides must hold afterwards (None: the person must be left as seeded)."""

    key: str
    ghl: dict[str, Any] | None = None  # as seeded
    connecteam: list[dict[str, Any]] = field(default_factory=list)  # as seeded (two: ambiguous)
    ghl_id: str | None = None
    connecteam_ids: list[int] = field(default_factory=list)
    expected: dict[str, Any] | None = None  # firstName, lastName, email, phone on both sides
    ghl_at: float | None = None  # when each side last changed (None: by its place in the list)
    ct_at: float | None = None

    @property
    def ambiguous(self) -> bool:
        return self.expected is None


@dataclass
class Population:
    people: list[Person]

    @property
    def contacts(self) -> int:
        return sum(1 for p in self.people if p.ghl is not None)

    @property
    def users(self) -> int:
        return sum(len(p.connecteam) for p in self.people)

    @property
    def both(self) -> int:
        return sum(1 for p in self.people if p.ghl is not None and p.connecteam)


def _phone(n: int) -> str:
    return f"+1444{n:07d}"


def build(
    *,
    by_email: int = 1_500,
    renamed: int = 200,
    by_phone: int = 480,
    ambiguous: int = 20,
    ghl_only: int = 3_000,
    connecteam_only: int = 980,
) -> Population:
    """The population (see the module); nothing is put in a sandbox yet."""
    people: list[Person] = []
    n = 0
    for i in range(by_email):
        n += 1
        contact = {
            "firstName": f"Ann{n}",
            "lastName": f"Both{n}",
            "email": f"both{n}@example.org",
            "phone": _phone(n),
        }
        user = {**contact, "phoneNumber": contact["phone"]}
        del user["phone"]
        expected = dict(contact)
        if i < renamed:
            user["lastName"] = f"Renamed{n}"
            expected["lastName"] = user["lastName"]  # initial: connecteam
        person = Person(f"p{n}", contact, [user], expected=expected)
        # differing pairs: half changed later in GoHighLevel, half later in Connecteam (the
        # declared winner is Connecteam either way, so `newest` would differ for the first half)
        person.ghl_at, person.ct_at = (T0 + 500, T0 + 100) if i % 2 == 0 else (T0 + 100, T0 + 500)
        people.append(person)
    for i in range(by_phone):
        n += 1
        contact = {"firstName": f"Pat{n}", "lastName": f"Phone{n}", "phone": _phone(n)}
        user = {"firstName": f"Pat{n}", "lastName": f"Phone{n}", "phoneNumber": _phone(n)}
        email = f"phone{n}@example.org"
        if i % 2 == 0:
            user["email"] = email  # the contact has none: it gets the user's
        else:
            contact["email"] = email  # the user has none: it gets the contact's
        expected = {**contact, "email": email}
        people.append(Person(f"p{n}", contact, [user], expected=expected))
    for _ in range(ambiguous):
        n += 1
        email = f"twin{n}@example.org"
        contact = {"firstName": f"Tess{n}", "lastName": "Twin", "email": email, "phone": _phone(n)}
        users = [
            {
                "firstName": f"Tess{n}",
                "lastName": f"Twin{k}",
                "email": email,
                "phoneNumber": _phone(500_000 + 2 * n + k),
            }
            for k in range(2)
        ]
        people.append(Person(f"p{n}", contact, users, expected=None))
    for _ in range(ghl_only):
        n += 1
        contact = {
            "firstName": f"Gus{n}",
            "lastName": f"Ghl{n}",
            "email": f"ghl{n}@example.org",
            "phone": _phone(n),
        }
        people.append(Person(f"p{n}", contact, [], expected=dict(contact)))
    for i in range(connecteam_only):
        n += 1
        user = {"firstName": f"Cy{n}", "lastName": f"Ct{n}", "phoneNumber": _phone(n)}
        if i % 4:
            user["email"] = f"ct{n}@example.org"
        expected = {
            "firstName": user["firstName"],
            "lastName": user["lastName"],
            "email": user.get("email"),
            "phone": user["phoneNumber"],
        }
        people.append(Person(f"p{n}", None, [user], expected=expected))
    return Population(people)


def seed(state: SandboxState, population: Population) -> None:
    """Put every contact and user of ``population`` into the sandbox (ids kept on the people)."""
    location = state.default_location_id
    for number, person in enumerate(population.people):
        ghl_at = person.ghl_at or T0 + number % 1000
        ct_at = person.ct_at or T0 + number % 1000
        if person.ghl is not None:
            person.ghl_id = add_contact(state, location, person.ghl, at=ghl_at)
        for user in person.connecteam:
            person.connecteam_ids.append(add_user(state, user, at=ct_at))


def ghl_view(contact: dict[str, Any]) -> dict[str, Any]:
    return {k: contact.get(k) or None for k in ("firstName", "lastName", "email", "phone")}


def connecteam_view(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "firstName": user.get("firstName") or None,
        "lastName": user.get("lastName") or None,
        "email": user.get("email") or None,
        "phone": user.get("phoneNumber") or None,
    }
