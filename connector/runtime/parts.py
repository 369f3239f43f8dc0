"""The parts of one process's runtime, built once: the database and its stores, the HTTP clients,
the redactor, the retry policy and the rate limits.

:func:`build_parts` makes them from the registry and the environment; the worker
(:mod:`connector.runtime.worker`) and the client (:mod:`connector.runtime.client`) share them.
Nothing here starts DBOS.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from connector.apps.registry import Registry
from connector.errors import ConnectorError
from connector.language.sync_spec import SyncSpec
from connector.persistence.budgets import Budget, limit_overrides
from connector.persistence.database import Database, open_database
from connector.persistence.echoes import Echoes
from connector.persistence.effects import EffectJournal
from connector.persistence.links import LinkStore
from connector.persistence.recorder import RunRecorder
from connector.persistence.runs import RunStore
from connector.persistence.sealing import SecretBox, Vault, load_key
from connector.persistence.sync import SyncStore
from connector.runtime.engine import Engine
from connector.sending.caller import Caller, fingerprint
from connector.sending.checkpoints import Checkpoints
from connector.sending.http import Clients, Redactor, make_clients
from connector.sending.retry import RetryPolicy
from connector.sending.throttle import Throttle
from connector.sync.engine import SyncRun

__all__ = ["Parts", "RuntimeOptions", "build_parts", "policy_from_env"]


@dataclass
class RuntimeOptions:
    """What a process's runtime is made of; tests inject the transport and the clock."""

    transport: httpx.BaseTransport | None = None
    executor_id: str | None = None
    rng: random.Random = field(default_factory=random.Random)
    sandbox: bool = False
    budgets: bool = True
    # `connector serve`: take runs from the run queue, at most this many at once in this process
    # (0: this process only runs what it starts itself, as `connector run` does)
    workers: int = 0
    # how a run waits (retry back-off, Retry-After, busy polls, a lookup's delay): None is a durable
    # DBOS sleep; `connector test` moves its fixed clock instead (connector.clock.advance)
    sleep: Callable[[float], None] | None = None


@dataclass
class Parts:
    """Everything a run needs that outlives it, made once per process."""

    registry: Registry
    env: dict[str, str]
    options: RuntimeOptions
    db: Database
    store: RunStore
    recorder: RunRecorder  # how runs reach the store: a transaction per run, mostly
    links: LinkStore
    effects: EffectJournal
    budget: Budget
    echoes: Echoes
    sync: SyncStore
    redactor: Redactor
    credentials: dict[str, str]  # app -> fingerprint of the credentials it is configured with
    clients: Clients
    policy: RetryPolicy
    limits: Mapping[str, Mapping[str, tuple[int, float]]]
    vault: Vault | None = None  # how checkpoints and the journal of writes keep secrets sealed

    def caller(self, checkpoints: Checkpoints) -> Caller:
        """A caller whose requests go through ``checkpoints``, the journal of writes, the rate
        budget and the retry policy."""
        return Caller(
            checkpoints=checkpoints,
            policy=self.policy,
            effects=self.effects,
            # the budget is waited for inside the attempt's unit (a DBOS step, where no durable
            # sleep is allowed): a plain sleep, redone with the unit if the process dies
            throttle=(
                Throttle(self.budget, time.sleep, self.limits) if self.options.budgets else None
            ),
            rng=self.options.rng,
            credentials=self.credentials,
            redactor=self.redactor,
            echoes=self.echoes,
            vault=self.vault,
            defer=self.recorder.defer,
            flush=self.recorder.flush,
        )

    def engine(self, checkpoints: Checkpoints) -> Engine:
        """An engine for recipes, its requests through :meth:`caller`."""
        return Engine(
            registry=self.registry,
            clients=self.clients,
            env=self.env,
            caller=self.caller(checkpoints),
            recorder=self.recorder,
            redactor=self.redactor,
            links=self.links,
            services={"links": self.links},
        )

    def sync_run(
        self,
        spec: SyncSpec,
        job: Mapping[str, Any],
        checkpoints: Checkpoints,
        *,
        dry_run: bool = False,
    ) -> SyncRun:
        """A sync run of ``job`` (:func:`connector.sync.engine.sync_job`), its requests through
        :meth:`caller`; a dry run records nothing and writes nothing."""
        return SyncRun(
            spec=spec,
            job=job,
            registry=self.registry,
            clients=self.clients,
            caller=self.caller(checkpoints),
            store=self.sync,
            links=self.links,
            recorder=None if dry_run else self.recorder,
            redactor=self.redactor,
            dry_run=dry_run,
        )

    def close(self) -> None:
        self.recorder.close()
        self.clients.close()


def build_parts(
    registry: Registry, env: Mapping[str, str], options: RuntimeOptions | None = None
) -> Parts:
    """The parts for ``env``: its database (opened and migrated), the stores on it, one HTTP client
    per app, and a redactor that knows every configured secret."""
    env = dict(env)
    options = options or RuntimeOptions()
    policy = policy_from_env(env)
    try:
        limits = limit_overrides(env.get("CONNECTOR_RATE_LIMITS", ""))
    except ValueError as exc:
        raise ConnectorError(str(exc)) from None
    db = open_database(env, workers=options.workers)
    redactor = Redactor.for_apps(registry.apps.values(), env)
    clients = make_clients(registry.apps.values(), env, transport=options.transport)
    for client in clients.values():  # tokens of stored connections are masked too
        watch = getattr(client.auth, "watch", None)
        if callable(watch):
            watch(redactor.learn)
    return Parts(
        registry=registry,
        env=env,
        options=options,
        db=db,
        store=RunStore(db.engine),
        recorder=RunRecorder(db.engine),
        links=LinkStore(db.engine),
        effects=EffectJournal(db.engine),
        budget=Budget(db.engine),
        echoes=Echoes(db.engine),
        sync=SyncStore(db.engine),
        redactor=redactor,
        credentials={
            app.name: fingerprint(",".join(env.get(n, "") for n in app.secret_env))
            for app in registry.apps.values()
        },
        clients=clients,
        policy=policy,
        limits=limits,
        vault=Vault(redactor.value, lambda: SecretBox(*load_key(env, db.url))),
    )


def policy_from_env(env: Mapping[str, str]) -> RetryPolicy:
    """The default retry policy, adjusted by ``CONNECTOR_RETRY_ATTEMPTS``,
    ``CONNECTOR_RETRY_BASE_DELAY``, ``CONNECTOR_RETRY_MAX_DELAY`` and ``CONNECTOR_RETRY_MAX_WAIT``."""
    given: dict[str, Any] = {}
    for key in ("attempts", "base_delay", "max_delay", "max_wait"):
        text = env.get(f"CONNECTOR_RETRY_{key.upper()}")
        if text:
            try:
                given[key] = int(text) if key == "attempts" else float(text)
            except ValueError:
                raise ConnectorError(f"CONNECTOR_RETRY_{key.upper()} must be a number") from None
    try:
        return RetryPolicy.from_mapping(given)
    except ValueError as exc:
        raise ConnectorError(str(exc)) from None
