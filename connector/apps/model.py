"""Apps (a vendor API: operations, base URL, auth, and how it behaves) and actions (steps that
are not HTTP calls).

Both reach the engine through the plugin hooks ``register_apps`` and ``register_actions``.
Everything the runtime knows of a vendor is on its :class:`App`, as data and small typed
callables: the generic layers (the retry policy, the rate budget, ``connector serve``'s routes,
polls and intake, the validator) read it from the registry's apps and never branch on a name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.apps.events import Event, Poll, Webhook
from connector.apps.limits import RateLimitHeaders

# RFC 9110: sending one of these twice has the effect of sending it once
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

if TYPE_CHECKING:
    import httpx

    from connector.apps.records import RecordType
    from connector.catalog.model import Operation

__all__ = ["Action", "App", "RunContext"]


@dataclass(frozen=True)
class App:
    """A vendor API that recipes call through catalogued operations.

    ``operations`` maps full action names (``ghl.get-contact``) to operations. ``base_url_env`` names
    the environment variable that overrides ``default_base_url``; ``sandbox_prefix`` is where the
    embedded sandbox serves this app (``/ghl``). ``auth(env)`` returns an ``httpx.Auth`` built from the
    environment (or ``None`` when nothing is configured); ``secret_env`` lists the variables whose
    values must never be printed or stored. ``headers(operation)`` gives the extra headers an
    operation needs (GoHighLevel's ``Version``).

    What the durable runtime knows of the vendor: ``location_param`` is the parameter naming the
    tenant that the engine fills from the environment variable ``location_env`` when a step leaves
    it out (GoHighLevel's ``locationId`` from ``GHL_LOCATION_ID``); ``rate_limits`` the default
    request budgets (``CONNECTOR_RATE_LIMITS`` overrides them); ``rate_limit_headers`` how its
    responses say "slow down"; ``safe_writes``, ``post_reads``, ``existing_record`` and
    ``refuses_duplicate`` which requests may be sent again; ``echoes`` which records a write will
    be reported back as.

    What ``connector serve`` takes from it: ``webhooks``, the routes it mounts under
    ``/webhooks/`` (how each request is verified and read into events); ``polls``, per trigger
    event, how a recipe's ``trigger.poll`` asks the API for changes; ``run_env``, what a run for
    one of its events adds to the environment (the tenant the event is about).
    """

    name: str
    title: str
    operations: Mapping[str, Operation]
    default_base_url: str
    base_url_env: str | None = None
    sandbox_prefix: str | None = None
    auth: Callable[[Mapping[str, str]], httpx.Auth | None] | None = None
    headers: Callable[[Operation], Mapping[str, str]] | None = None
    secret_env: tuple[str, ...] = ()
    description: str = ""
    # What the durable runtime knows of the vendor:
    location_param: str | None = None  # the parameter naming the tenant (GHL's locationId)
    location_env: str | None = None  # where a step that omits it takes it from
    rate_limits: tuple[tuple[int, float, str], ...] = ()  # (requests, per seconds, name)
    safe_writes: frozenset[str] = frozenset()  # writes whose repeat changes nothing (upserts)
    post_reads: frozenset[str] = frozenset()  # POST operations that only read (searches)
    # the output of a write the API refused as a duplicate of a record it names, else None
    existing_record: Callable[[Operation, int, Any], Any] | None = None
    # whether the API refuses a repeat of this write (given its JSON body) and names the record,
    # so that after a lost answer the write may be sent again: the refusal tells what happened
    refuses_duplicate: Callable[[Operation, Any], bool] | None = None
    # what the vendor will report back about a write, as (subject, fields written) pairs, given
    # the operation, the request's URL path and its JSON body: `connector serve` takes the
    # event that shows them for the write's echo, not a change to sync (connector.persistence.echoes)
    echoes: Callable[[Operation, str, Any], Sequence[tuple[str, Mapping[str, Any]]]] | None = None
    # the record types a two-way sync may pair (connector.apps.records), by name
    records: Mapping[str, RecordType] = field(default_factory=dict)
    # how its responses say "slow down" (connector.sending.retry, connector.persistence.budgets)
    rate_limit_headers: RateLimitHeaders = field(default_factory=RateLimitHeaders)
    # What `connector serve` takes from it:
    webhooks: tuple[Webhook, ...] = ()  # each mounted at POST /webhooks/<path>
    polls: Mapping[str, Poll] = field(default_factory=dict)  # trigger event -> how it is polled
    # the payload fields that differ between deliveries of the same news (delivery ids and
    # times): left out when an event is compared with the last one about its record (bursts)
    delivery_fields: frozenset[str] = frozenset()
    # given the process environment once, when serving starts: per event of this app, the
    # variables its runs add to it (GoHighLevel: the event's location as GHL_LOCATION_ID)
    run_env: Callable[[Mapping[str, str]], Callable[[Event], Mapping[str, str]]] | None = None

    def claims(self, op: Operation) -> bool:
        """Whether ``op`` is a write that must not happen twice (claimed in the effect journal):
        not idempotent by its method (RFC 9110), and not a search sent as a POST."""
        idempotent = op.method.upper() in IDEMPOTENT_METHODS
        return not idempotent and op.name not in self.post_reads

    def repeatable(self, op: Operation) -> bool:
        """Whether sending ``op`` again can do no harm, so it is retried after any failure."""
        return not self.claims(op) or op.name in self.safe_writes

    def location(self, params: Mapping[str, Any], env: Mapping[str, str]) -> str:
        """The tenant a request acts on (a GHL location), for budgets and effect keys."""
        if self.location_param and params.get(self.location_param):
            return str(params[self.location_param])
        if self.location_env and env.get(self.location_env):
            return str(env[self.location_env])
        return ""

    def base_url(self, env: Mapping[str, str]) -> str:
        """Where this app's API is: ``base_url_env`` when set, else the default. A URL without
        ``http://`` or ``https://`` is refused here, naming the variable, before any run."""
        if self.base_url_env and env.get(self.base_url_env):
            url = env[self.base_url_env].strip().rstrip("/")
            if not url.lower().startswith(("http://", "https://")):
                from connector.errors import UsageError

                raise UsageError(
                    f"{self.base_url_env}={url!r} is not a URL: it needs http:// or https://"
                    f" (for {self.title}, for example {self.default_base_url})"
                )
            return url
        return self.default_base_url.rstrip("/")


@dataclass
class RunContext:
    """What an action sees of the run it is part of."""

    run_id: str
    recipe: str
    home: Path
    env: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    services: dict[str, Any] = field(
        default_factory=dict
    )  # shared per-run objects (stores, clients)


ActionFunc = Callable[[Mapping[str, Any], RunContext], Any | Awaitable[Any]]


@dataclass(frozen=True)
class Action:
    """A step action that is not an HTTP operation.

    ``run(params, context)`` gets the rendered ``with:`` values and returns the step's output; it may
    be a coroutine function. ``params_schema`` is the JSON Schema (an object) of ``with:``, checked by
    ``connector validate``; ``writes`` says whether it changes anything (``--dry-run`` skips those).
    """

    name: str
    run: ActionFunc
    description: str = ""
    params_schema: Mapping[str, Any] | None = None
    writes: bool = True
