"""Look-ups by value without walking every record: GoHighLevel contacts by email or phone (a
contact search's ``eq`` filter, the duplicate check of a create), Connecteam users by email or
phone (``GET /users`` filtered by ``emailAddresses`` or ``phoneNumbers``, the phone check of a
create or an edit).

What the fakes answer is what a walk over every record would answer: an index only says which
records to look at. Each candidate it names is checked against the record as it is now, so a
record changed behind the index's back is never found by its old value. The sandbox's handlers
tell the index of every record they add, change or remove (:func:`contacts_changed`,
:func:`users_changed`); a table replaced (a reset) or grown or shrunk without a word (a test or
a seeding helper putting records straight into the state) is indexed again at the next look-up.
Code that changes the email or phone of a record already in the state, outside the handlers,
tells the index too.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from connector.sandbox.ghl_model import normalize_phone
from connector.sandbox.state import SandboxState

__all__ = [
    "contact_key",
    "contacts_changed",
    "contacts_with",
    "user_key",
    "users_changed",
    "users_with",
]

Keys = Callable[[Mapping[str, Any]], Iterable[Hashable]]


class ValueIndex:
    """The records of one table (``id -> record``) by the keys ``keys`` gives for each."""

    def __init__(self, keys: Keys) -> None:
        self._keys = keys
        self._table: Mapping[Any, Mapping[str, Any]] | None = None  # the table indexed
        self._by_key: dict[Hashable, dict[Any, None]] = {}  # key -> record ids, in order added
        self._of: dict[Any, tuple[Hashable, ...]] = {}  # record id -> its keys when indexed

    def changed(self, table: Mapping[Any, Mapping[str, Any]], record_id: Any) -> None:
        """The record ``record_id`` was added, changed or removed."""
        if table is not self._table:
            return  # not indexed yet (or another table): indexed whole at the next look-up
        self._drop(record_id)
        record = table.get(record_id)
        if record is not None:
            self._put(record_id, record)

    def find(self, table: Mapping[Any, Mapping[str, Any]], key: Hashable) -> list[Any]:
        """The ids of the records of ``table`` that have ``key`` now."""
        if table is not self._table or len(table) != len(self._of):
            self._build(table)
        found = []
        for record_id in list(self._by_key.get(key, ())):
            record = table.get(record_id)
            if record is not None and key in tuple(self._keys(record)):
                found.append(record_id)
            else:  # changed behind the index's back: indexed as it is now
                self.changed(table, record_id)
        return found

    def _build(self, table: Mapping[Any, Mapping[str, Any]]) -> None:
        self._table, self._by_key, self._of = table, {}, {}
        for record_id, record in table.items():
            self._put(record_id, record)

    def _put(self, record_id: Any, record: Mapping[str, Any]) -> None:
        keys = tuple(self._keys(record))
        self._of[record_id] = keys
        for key in keys:
            self._by_key.setdefault(key, {})[record_id] = None

    def _drop(self, record_id: Any) -> None:
        for key in self._of.pop(record_id, ()):
            ids = self._by_key.get(key)
            if ids is not None:
                ids.pop(record_id, None)
                if not ids:
                    del self._by_key[key]


def contact_key(location_id: str, field: str, value: Any) -> tuple[str, str, str]:
    """The key of a contact of ``location_id`` whose ``field`` (email or phone) is ``value``,
    case-insensitive as GoHighLevel compares them."""
    return (location_id, field, str(value).lower())


def _contact_keys(contact: Mapping[str, Any]) -> Iterable[Hashable]:
    location = str(contact.get("locationId"))
    for field in ("email", "phone"):
        value = contact.get(field)
        if value:
            yield contact_key(location, field, value)


def user_key(field: str, value: Any) -> tuple[str, str]:
    """The key of a user whose ``field`` (email or phone) is ``value``: an email
    case-insensitive, a phone number in E.164."""
    text = str(value)
    return (field, normalize_phone(text) if field == "phone" else text.lower())


def _user_keys(user: Mapping[str, Any]) -> Iterable[Hashable]:
    if user.get("email"):
        yield user_key("email", user["email"])
    if user.get("phoneNumber"):
        yield user_key("phone", user["phoneNumber"])


_CONTACTS: weakref.WeakKeyDictionary[SandboxState, ValueIndex] = weakref.WeakKeyDictionary()
_USERS: weakref.WeakKeyDictionary[SandboxState, ValueIndex] = weakref.WeakKeyDictionary()


def _index(
    kept: weakref.WeakKeyDictionary[SandboxState, ValueIndex], state: SandboxState, keys: Keys
) -> ValueIndex:
    index = kept.get(state)
    if index is None:
        index = kept[state] = ValueIndex(keys)
    return index


def contacts_with(state: SandboxState, key: tuple[str, str, str]) -> list[dict[str, Any]]:
    """The contacts that have ``key`` (:func:`contact_key`), in the order they were made."""
    contacts = state.ghl.contacts
    ids = _index(_CONTACTS, state, _contact_keys).find(contacts, key)
    return sorted((contacts[i] for i in ids), key=lambda c: c.get("_seq", 0))


def contacts_changed(state: SandboxState, contact_id: str) -> None:
    """Tell the index that the contact ``contact_id`` was added, changed or removed."""
    _index(_CONTACTS, state, _contact_keys).changed(state.ghl.contacts, contact_id)


def users_with(state: SandboxState, key: tuple[str, str]) -> list[dict[str, Any]]:
    """The users that have ``key`` (:func:`user_key`), in id order."""
    users = state.ct.users
    return [users[i] for i in sorted(_index(_USERS, state, _user_keys).find(users, key))]


def users_changed(state: SandboxState, user_id: int) -> None:
    """Tell the index that the user ``user_id`` was added, changed or removed."""
    _index(_USERS, state, _user_keys).changed(state.ct.users, user_id)
