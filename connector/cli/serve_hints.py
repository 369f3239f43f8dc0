"""What ``connector serve --sandbox`` suggests trying: for the recipes and syncs actually loaded,
the change to make in the sandbox that starts each (a ``curl`` with the sandbox's credentials),
and the command that shows just the record that should appear on the other side
(``connector sandbox show APP COLLECTION FIELD=VALUE``), instead of a dump of the whole sandbox.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Credentials", "sandbox_hints"]

# one record the hints make, and the field that finds it again
NEW_USER = {
    "firstName": "Ada",
    "lastName": "Lovelace",
    "email": "ada@example.com",
    "phoneNumber": "+15555550177",
    "userType": "user",
}
# a phone number too: Connecteam makes no user without one
NEW_CONTACT = {
    "firstName": "Grace",
    "lastName": "Hopper",
    "email": "grace@example.com",
    "phone": "+15555550178",
}
# the seed's sample user and contact (connector/sandbox/seed.yaml)
SEED_USER, SEED_CONTACT, SEED_BOARD = 9001, "ocQHyuzHvysMo5N5VsXc", "7001"
NEW_TASK = {
    "userIds": [SEED_USER],
    "status": "published",
    "title": "Bring samples",
    "dueDate": 1767312000,
}
TITLES = {"ghl": "GoHighLevel", "connecteam": "Connecteam"}


@dataclass(frozen=True)
class Credentials:
    """Where the sandbox and the server are, and the sandbox's own credentials (they work only
    there, so they may be shown)."""

    sandbox_url: str
    server_url: str
    ghl_token: str
    location_id: str
    api_key: str


@dataclass(frozen=True)
class _Cause:
    what: str  # "create a user in the sandbox's Connecteam"
    app: str  # where the change is made
    method: str
    path: str
    body: Any
    made: Mapping[str, Any]  # fields of the record made or changed, to find its counterpart


def _cause(app: str, event: str, location: str) -> _Cause | None:
    """The change in the sandbox that makes it send ``app`` ``event`` (None: none it sends)."""
    if (app, event) == ("connecteam", "user_created"):
        return _Cause(
            "create a user in the sandbox's Connecteam",
            "connecteam",
            "POST",
            "/users/v1/users",
            [NEW_USER],
            {"email": NEW_USER["email"], "lastName": NEW_USER["lastName"]},
        )
    if (app, event) == ("connecteam", "user_updated"):
        return _Cause(
            f"change user {SEED_USER}'s last name in the sandbox's Connecteam",
            "connecteam",
            "PUT",
            "/users/v1/users",
            [{"userId": SEED_USER, "lastName": "Avery-Lee"}],
            {"lastName": "Avery-Lee"},
        )
    if (app, event) in (("connecteam", "task_published"), ("connecteam", "task.created")):
        return _Cause(
            "publish a task in the sandbox's Connecteam",
            "connecteam",
            "POST",
            f"/tasks/v1/taskboards/{SEED_BOARD}/tasks",
            NEW_TASK,
            {"title": NEW_TASK["title"]},
        )
    if (app, event) == ("ghl", "ContactCreate"):
        return _Cause(
            "create a contact in the sandbox's GoHighLevel",
            "ghl",
            "POST",
            "/contacts/",
            {"locationId": location, **NEW_CONTACT},
            {"email": NEW_CONTACT["email"], "lastName": NEW_CONTACT["lastName"]},
        )
    if (app, event) == ("ghl", "ContactUpdate"):
        return _Cause(
            f"change contact {SEED_CONTACT}'s last name in the sandbox's GoHighLevel",
            "ghl",
            "PUT",
            f"/contacts/{SEED_CONTACT}",
            {"lastName": "Avery-Lee"},
            {"lastName": "Avery-Lee"},
        )
    if (app, event) == ("ghl", "ContactDelete"):
        return _Cause(
            f"delete contact {SEED_CONTACT} (user {SEED_USER}'s) in the sandbox's GoHighLevel",
            "ghl",
            "DELETE",
            f"/contacts/{SEED_CONTACT}",
            None,
            {"userId": SEED_USER},
        )
    return None


def _curl(creds: Credentials, cause: _Cause) -> str:
    if cause.app == "ghl":
        auth = f"-H 'Authorization: Bearer {creds.ghl_token}' -H 'Version: 2021-07-28'"
    else:
        auth = f"-H 'X-API-KEY: {creds.api_key}'"
    url = f"{creds.sandbox_url}/{cause.app}{cause.path}"
    if cause.body is None:
        return f"curl -s -X {cause.method} {url} {auth}"
    body = shlex.quote(json.dumps(cause.body))
    return (
        f"curl -s -X {cause.method} {url} {auth} \\\n"
        f"      -H 'content-type: application/json' -d {body}"
    )


def _collection(path: str) -> str | None:
    """The sandbox collection an operation's path writes to (``/contacts/{id}/tasks``: tasks)."""
    for name in ("tasks", "notes", "appointments", "contacts", "users"):
        if f"/{name}" in path or (name == "contacts" and path.startswith("/contacts")):
            return name
    return None


_SINGULAR = {"tasks": "task", "notes": "note", "appointments": "appointment"}
_SINGULAR.update({"contacts": "contact", "users": "user"})


def _see(creds: Credentials, app: str, collection: str, made: Mapping[str, Any]) -> str | None:
    """``connector sandbox show APP COLLECTION FIELD=VALUE`` for the counterpart of ``made``."""
    fields = ("title",) if collection == "tasks" else ("email", "lastName", "userId")
    field = next((f for f in fields if f in made), None)
    if field is None or (field == "userId" and (app, collection) != ("connecteam", "users")):
        return None
    value = shlex.quote(str(made[field]))
    thing = f"{TITLES[app]} {_SINGULAR[collection]}"
    return (
        f"see its {thing}: connector sandbox show {app} {collection} {field}={value}"
        f" --url {creds.sandbox_url}"
    )


def _writes(steps: Iterable[Any], not_app: str) -> tuple[str, str] | None:
    """The app and collection of the first write a recipe makes on the other app."""
    for step in steps:
        target = getattr(step, "target", None)
        app, method, path = (getattr(target, a, None) for a in ("app", "method", "path"))
        if app and app != not_app and method and method != "GET" and isinstance(path, str):
            found = _collection(path)
            if found is not None:
                return str(app), found
    return None


def sandbox_hints(
    creds: Credentials,
    recipes: Sequence[Any],
    syncs: Sequence[Any],
    hook_token_set: bool,
) -> list[str]:
    """The lines that tell what to try, for the recipes (plans) and syncs (specs) loaded."""
    lines: list[str] = []
    # (what, curl, see) -> the recipes and syncs it starts, and where its lines go
    tried: dict[tuple[str, str, str | None], list[str]] = {}
    where: dict[tuple[str, str, str | None], int] = {}

    def add(names: str, cause: _Cause, see: str | None) -> None:
        key = (cause.what, _curl(creds, cause), see)
        if key not in tried:
            where[key] = len(lines)
            lines.append("")
        tried.setdefault(key, []).append(names)

    for spec in syncs:
        for pair in spec.pairs:
            sides = ((pair.connecteam, pair.ghl), (pair.ghl, pair.connecteam))
            if pair.parent is not None:
                continue  # its records sync once their parents are paired: nothing to try alone
            for here, there in sides:
                event = _event_of(here.app, here.name)
                cause = _cause(here.app, event, creds.location_id) if event else None
                if cause is None:
                    continue
                see = _see(creds, there.app, there.name + "s", cause.made)
                add(f"sync {spec.name} ({pair.kind})", cause, see)
    for plan in recipes:
        cause = _cause(plan.trigger_app, plan.trigger_event, creds.location_id)
        label = f"recipe {plan.name}"
        if cause is not None:
            written = _writes(plan.steps, plan.trigger_app)
            see = _see(creds, *written, cause.made) if written else None
            add(label, cause, see or "see what it did: connector runs list")
        elif plan.trigger_app == "schedule":
            lines.append(f"{label} runs on its schedule ({plan.cron}): connector runs list")
        elif plan.poll is not None:
            lines.append(f"{label} polls every {plan.poll.get('every')} s: connector runs list")
        elif hook_token_set:
            sample = shlex.quote(json.dumps(plan.sample or {}))
            lines.append(
                f"try {label}: send it its sample event:\n"
                f"    curl -s {creds.server_url}/hooks/{plan.name}"
                ' -H "Authorization: Bearer $CONNECTOR_HOOK_TOKEN" \\\n'
                f"      -H 'content-type: application/json' -d {sample}"
                f"\n  then see the run: connector runs list --recipe {plan.name}"
            )
        else:
            lines.append(
                f"{label} runs on {plan.trigger_app} {plan.trigger_event}; to start it by hand,"
                f" set CONNECTOR_HOOK_TOKEN and POST an event to /hooks/{plan.name}, or run it"
                f" once: connector run {plan.path} --sandbox"
            )
    for (what, curl, see), names in tried.items():
        text = f"try {', '.join(names)}: {what}:\n    {curl}"
        lines[where[(what, curl, see)]] = text + (f"\n  then {see}" if see else "")
    return lines


def _event_of(app: str, record: str) -> str | None:
    """The event the sandbox sends when a record of this type is made on ``app``."""
    return {
        ("connecteam", "user"): "user_created",
        ("connecteam", "task"): "task_published",
        ("ghl", "contact"): "ContactCreate",
    }.get((app, record))
