"""The sandbox's in-memory world: GoHighLevel locations, contacts and their children, Connecteam
users and quick tasks, and the credentials that reach them.

Everything lives in plain dicts (so ``GET /_sandbox/state`` can dump it as JSON) behind one
re-entrant lock: handlers run on the server's event loop, while tests and ``connector run
--sandbox`` may look at the state from other threads. The state is built from a seed document
(``seed.yaml`` beside this module by default) and :meth:`SandboxState.reset` rebuilds it.
"""

from __future__ import annotations

import copy
import json
import random
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from connector.errors import ConnectorError

__all__ = [
    "DEFAULT_SEED",
    "Clock",
    "ConnecteamToken",
    "SandboxState",
    "SeedError",
    "TokenInfo",
    "iso",
    "load_seed",
]

DEFAULT_SEED = Path(__file__).with_name("seed.yaml")
Clock = Callable[[], float]
_ALNUM = string.ascii_letters + string.digits


class SeedError(ConnectorError):
    """The seed file cannot be read or does not describe a usable world."""


def load_seed(path: Path | None = None) -> dict[str, Any]:
    """Read a seed YAML file (the shipped one when ``path`` is None)."""
    path = path or DEFAULT_SEED
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SeedError(f"cannot read seed file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SeedError(f"seed file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("ghl"), dict):
        raise SeedError(f"seed file {path} must be a mapping with a 'ghl' section")
    if not data["ghl"].get("locations"):
        raise SeedError(f"seed file {path} defines no GoHighLevel location")
    return data


def iso(ts: float) -> str:
    """GoHighLevel's timestamp format: ``2021-07-02T05:18:26.704Z``."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> float:
    """Epoch seconds of an ISO-8601 timestamp (``Z`` or an offset); 0.0 if unreadable."""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return 0.0


@dataclass
class TokenInfo:
    """What a GoHighLevel bearer token stands for.

    ``kind`` is ``"private"`` (a seeded Private Integration token of a location), ``"oauth"`` (a
    location access token from ``/oauth/token`` or ``/oauth/locationToken``) or ``"agency"`` (a
    Company access token: ``location_id`` is empty, ``company_id`` and ``approved_locations`` say
    what it may reach).
    """

    token: str
    location_id: str
    kind: str = "private"
    client_id: str | None = None
    scopes: frozenset[str] | None = None  # None: every scope
    expires_at: float | None = None
    user_id: str = ""
    company_id: str | None = None
    approved_locations: tuple[str, ...] = ()
    scope: str = ""  # the granted scopes as the grant answered them (OAuth tokens)

    @property
    def is_agency(self) -> bool:
        return self.kind == "agency"

    @property
    def user_type(self) -> str:
        """GoHighLevel's ``userType`` of the token: ``Company`` or ``Location``."""
        return "Company" if self.is_agency else "Location"

    @property
    def rate_key(self) -> str:
        """Rate limits are per app (OAuth client, or the token itself) and per location (per
        company for an agency token)."""
        return f"{self.client_id or self.token}|{self.location_id or self.company_id or ''}"


@dataclass
class ConnecteamToken:
    """A Connecteam OAuth access token (client credentials grant)."""

    account: str
    client_id: str
    scopes: frozenset[str]
    expires_at: float


@dataclass
class GhlWorld:
    locations: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, TokenInfo] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    calendars: dict[str, dict[str, Any]] = field(default_factory=dict)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    notes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    appointments: dict[str, dict[str, Any]] = field(default_factory=dict)
    oauth_clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    oauth_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class ConnecteamWorld:
    api_keys: dict[str, str] = field(default_factory=dict)  # key -> account id
    oauth_clients: dict[str, dict[str, Any]] = field(default_factory=dict)  # client_id -> client
    tokens: dict[str, ConnecteamToken] = field(default_factory=dict)  # OAuth access tokens
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    custom_fields: dict[int, dict[str, Any]] = field(default_factory=dict)
    categories: dict[int, dict[str, Any]] = field(default_factory=dict)
    task_boards: dict[int, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    webhooks: dict[int, dict[str, Any]] = field(default_factory=dict)  # /settings/v1/webhooks
    company_id: str = "sandbox-company"  # the ``company`` of Connecteam's webhook envelopes
    next_id: int = 100000


class SandboxState:
    """The world the fakes serve, built from a seed; thread-safe through :attr:`lock`."""

    def __init__(self, seed: Mapping[str, Any] | None = None, clock: Clock = time.time) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self._seed = copy.deepcopy(dict(seed if seed is not None else load_seed()))
        self.ghl = GhlWorld()
        self.ct = ConnecteamWorld()
        self._rng = random.Random()
        self._seq = 0
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.connecteam_listeners: list[Callable[[str, str, list[dict[str, Any]]], None]] = []
        self.connecteam_retry_limit = 3  # the retryLimit webhooks show; set by their emitter
        self.grants: list[dict[str, Any]] = []  # the token grants answered (GET /_sandbox/oauth)
        self.reset()

    # -- ids and time -------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock()

    def now_iso(self) -> str:
        return iso(self.clock())

    def ghl_id(self) -> str:
        """A fresh 20-character alphanumeric id, the shape GoHighLevel uses."""
        with self.lock:
            return "".join(self._rng.choice(_ALNUM) for _ in range(20))

    def hex_id(self, n: int = 24) -> str:
        with self.lock:
            return "".join(self._rng.choice("0123456789abcdef") for _ in range(n))

    def ct_id(self) -> int:
        with self.lock:
            self.ct.next_id += 1
            return self.ct.next_id

    def seq(self) -> int:
        """A monotonically increasing number: the stable order of records created at one instant."""
        with self.lock:
            self._seq += 1
            return self._seq

    @property
    def seq_value(self) -> int:
        """The last number :meth:`seq` gave (it changes whenever a record is made)."""
        return self._seq

    def record_grant(
        self,
        app: str,
        grant_type: str | None,
        status: int,
        error: str | None = None,
        *,
        client_id: str | None = None,
        user_type: str | None = None,
        location_id: str | None = None,
        company_id: str | None = None,
    ) -> None:
        """Note one answered token grant for ``GET /_sandbox/oauth``: what was asked and how it
        ended, never a token, code or secret."""
        entry = {
            "app": app,
            "grant_type": grant_type,
            "time": self.now(),
            "ok": 200 <= status < 300,
            "status": status,
            "error": error,
            "client_id": client_id,
            "user_type": user_type,
            "location_id": location_id,
            "company_id": company_id,
        }
        with self.lock:
            self.grants.append(entry)

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        """Tell listeners (the GoHighLevel webhook emitter) that something changed."""
        for listener in list(self.listeners):
            listener(event, copy.deepcopy(payload))

    def emit_connecteam(self, feature: str, event: str, items: list[dict[str, Any]]) -> None:
        """Tell Connecteam listeners that ``items`` changed: ``feature`` is a webhook featureType
        (``users``, ``tasks``), ``event`` its eventType; nothing is said when ``items`` is empty."""
        if not items:
            return
        for listener in list(self.connecteam_listeners):
            listener(feature, event, copy.deepcopy(items))

    # -- seed ---------------------------------------------------------------------------------

    @property
    def default_location_id(self) -> str:
        return str(self._seed["ghl"]["locations"][0]["id"])

    @property
    def default_task_board_id(self) -> str:
        """The first task board of the seed that is not archived ("" when there is none)."""
        boards = self._seed.get("connecteam", {}).get("task_boards") or []
        return next((str(b["id"]) for b in boards if not b.get("isArchived")), "")

    @property
    def default_token(self) -> str:
        loc = self._seed["ghl"]["locations"][0]
        return str(loc["token"])

    @property
    def default_api_key(self) -> str:
        return str(self._seed.get("connecteam", {}).get("api_key", ""))

    def reset(self) -> None:
        """Forget every change and rebuild the world from the seed."""
        from connector.sandbox.seeding import apply_seed  # circular: seeding builds on this class

        with self.lock:
            self.ghl = GhlWorld()
            self.ct = ConnecteamWorld()
            self._rng = random.Random(self._seed.get("random_seed", 20210728))
            self._seq = 0
            self.grants = []
            apply_seed(self, self._seed)

    def dump(self) -> dict[str, Any]:
        """Everything, as JSON-ready data (tokens are sandbox credentials; shown on purpose)."""
        with self.lock:
            return copy.deepcopy(self._world())

    def dump_json(self) -> bytes:
        """:meth:`dump` as compact UTF-8 JSON (what ``GET /_sandbox/state`` answers), encoded
        under the lock straight from the records: no copy first."""
        with self.lock:
            text = json.dumps(
                self._world(), ensure_ascii=False, allow_nan=False, separators=(",", ":")
            )
        return text.encode()

    def _world(self) -> dict[str, Any]:
        """Everything, sharing the live records (read under the lock)."""
        g, c = self.ghl, self.ct
        return {
            "ghl": {
                "locations": list(g.locations.values()),
                "tokens": [
                    {"token": t.token, "locationId": t.location_id, "kind": t.kind}
                    | ({"companyId": t.company_id} if t.company_id else {})
                    for t in g.tokens.values()
                ],
                "users": list(g.users.values()),
                "calendars": list(g.calendars.values()),
                "contacts": list(g.contacts.values()),
                "tasks": {k: list(v.values()) for k, v in g.tasks.items()},
                "notes": {k: list(v.values()) for k, v in g.notes.items()},
                "appointments": list(g.appointments.values()),
            },
            "connecteam": {
                "users": list(c.users.values()),
                "notes": {str(k): v for k, v in c.notes.items()},
                "customFields": list(c.custom_fields.values()),
                "customFieldCategories": list(c.categories.values()),
                "taskBoards": list(c.task_boards.values()),
                "tasks": {str(k): list(v.values()) for k, v in c.tasks.items()},
                "companyId": c.company_id,
                "webhooks": [
                    {k: v for k, v in w.items() if k != "secretKey"} for w in c.webhooks.values()
                ],
            },
        }
