"""Record types: what a two-way sync needs to know of one kind of record of one app.

An app declares its record types on :attr:`connector.apps.App.records` (the built-in ones in
:mod:`connector.builtins.records`): the fields a sync declaration may map, how to read, find,
create, change and remove one record through the app's catalogued operations, when a record last
changed by the vendor's own clock, and what its webhook events say about it. The sync
(:mod:`connector.sync`) knows nothing of any vendor beyond this.

A record is seen through :attr:`RecordType.decode` (the vendor's shape made comparable: a
Connecteam task's epoch ``dueDate`` as an ISO time, its ``status`` as ``completed``) and written
through :attr:`RecordType.encode`. Some records are reached through another (a GoHighLevel task
through its contact, a Connecteam task through its board): their *address* is kept with the pair.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Address", "EventMeaning", "RecordType", "Request"]

# an operation of the catalog and its parameters (`with:` of a recipe step)
Request = tuple[str, dict[str, Any]]
# what an event says about a record: it exists as the payload shows (upsert), or it is gone
EventMeaning = Literal["upsert", "delete", "archive"]
# where a record is reached besides its id (``{"contactId": ...}``, ``{"taskBoardId": ...}``)
Address = Mapping[str, Any]


def _same(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return value


@dataclass(frozen=True)
class RecordType:
    """One kind of record of one app, as a sync reads and writes it."""

    app: str
    name: str  # "contact", "user": what a sync declaration names it
    title: str  # "GoHighLevel contact": how messages name it
    fields: tuple[str, ...]  # the fields a mapping may name (of the decoded record)
    # the request that reads one record by its id and address (None: the address is not
    # enough), and the record in its answer (None: gone)
    read: Callable[[str, Address], Request | None]
    record_of: Callable[[Any], Mapping[str, Any] | None]
    # the record's id, and when it last changed (epoch seconds, the vendor's clock; None: unknown)
    id_of: Callable[[Mapping[str, Any]], str]
    changed_at: Callable[[Mapping[str, Any]], float | None]
    # the request that writes ``fields`` (encoded) to the record with this id, given the record
    # as it is now (some APIs replace the whole record) and its address
    update: Callable[[str, Mapping[str, Any], Mapping[str, Any], Address], Request]
    # the request that makes a new record with ``fields`` (encoded), given the run's environment
    # (GHL_LOCATION_ID, CONNECTOR_VAR_*) and the id of its parent on this side (a task's contact);
    # and the new record in its answer
    create: Callable[[Mapping[str, Any], Mapping[str, str], str | None], Request] | None = None
    created: Callable[[Any], Mapping[str, Any] | None] | None = None
    create_needs: tuple[str, ...] = ()  # fields a new record must have (the API refuses it else)
    # after a create whose answer was lost: the request that lists the records it may have made
    # (given the fields it sent, encoded, the run's environment and the parent's id on this
    # side), the records in that answer, and the answer the create would have given for one of
    # them (None: a lost create cannot be looked for, and waits for a person)
    made: Callable[[Mapping[str, Any], Mapping[str, str], str | None], Request | None] | None = None
    made_found: Callable[[Any], list[Mapping[str, Any]]] | None = None
    as_created: Callable[[Mapping[str, Any]], Any] | None = None
    # finding a record whose address neither its event nor the pair gives (GoHighLevel #332: a
    # TaskCreate names no contact): the request for page ``page`` (0, 1, ...) of a search that
    # holds it, given its id, what its event showed of it and the run's environment (None: no
    # such page), and the records of an answer
    locate: Callable[[str, Mapping[str, Any], Mapping[str, str], int], Request | None] | None = None
    located: Callable[[Any], list[Mapping[str, Any]]] | None = None
    # the requests that find records whose field equals a value (match keys), and the records
    find: Callable[[str, Any, Mapping[str, str]], Request | None] | None = None
    found: Callable[[Any], list[Mapping[str, Any]]] | None = None
    # what a delete on the other side may do to this record: remove it, or archive it
    remove: Callable[[str, Address], Request] | None = None
    archive: Callable[[str, Address], Request] | None = None
    # how `connector serve` polls this record type for a sync that pairs it (changes no webhook
    # reports): the poller, given a setup whose plan names the poll (``name``, ``poll.every``),
    # or None when the environment does not say what to poll; its events are of type
    # ``poll_event`` (one of ``events``)
    poll: Callable[[Any], Any] | None = None
    poll_event: str = ""
    # the webhook events about this record type: event type -> what it says
    events: Mapping[str, EventMeaning] = field(default_factory=dict)
    # the record an event's payload carries (a Connecteam item is under ``data``), and its id
    event_record: Callable[[Mapping[str, Any]], Mapping[str, Any]] = _same
    event_id: Callable[[Mapping[str, Any]], str | None] = lambda record: None
    # walking every record page by page (a reconcile): the request for the page after
    # ``cursor`` (None: the first), and the records of an answer with the next page's cursor
    # (None: it was the last)
    walk: Callable[[Any, Mapping[str, str]], Request] | None = None
    page: Callable[[Any, Any], tuple[list[Mapping[str, Any]], Any]] | None = None
    # how many records the walk has in all, by a page's answer (None: the app does not say)
    total: Callable[[Any], int | None] = lambda answer: None
    # whether a read refused with this status and message says the record is not there
    missing: Callable[[int, str], bool] = lambda status, message: status in (404, 410)
    # whether a record is there but out of use (an archived Connecteam user): a sync leaves it
    # and its pair alone until it is back in use
    inactive: Callable[[Mapping[str, Any]], bool] = lambda record: False
    # the vendor's record made comparable, and the comparable fields made the vendor's
    decode: Callable[[Mapping[str, Any]], Mapping[str, Any]] = _same
    encode: Callable[[Mapping[str, Any]], Mapping[str, Any]] = _same
    # where the record is reached besides its id, and its parent's id on this side
    address_of: Callable[[Mapping[str, Any]], dict[str, Any]] = lambda record: {}
    parent_of: Callable[[Mapping[str, Any]], str | None] = lambda record: None
