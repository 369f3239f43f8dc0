"""Running one test: a fresh home, the real durable run, recorded answers, then the checks.

Each test runs the recipe the way ``connector run`` does (:class:`~connector.runtime.durable.
Runtime`: the journal, ``once:`` effects, id-link writes are the real ones) in a temporary
``CONNECTOR_HOME`` with its own SQLite database, so the id links and the effect journal start
empty unless the test seeds ``links``. What differs is only what ``connector test`` must control:

* every app's HTTP client gets a :class:`~connector.testing.cassette.ReplayTransport` (nothing is
  sent anywhere), or, with ``--record``, a recording transport in front of the embedded sandbox
  (or a live account);
* the environment is the test's own (fake credentials, the file's and the test's ``env``), not
  the process's; retry back-off is 0 s unless the test sets ``CONNECTOR_RETRY_*``, and the
  shared rate-limit budget is off (recorded answers are not paced);
* the wall clock is fixed (:func:`connector.clock.fixed`) at the test's ``now``, and a replayed
  run's waits (a recorded ``429`` with ``Retry-After: 30``) move it forward instead of sleeping
  (``RuntimeOptions.sleep``); the run's record keeps each wait and its reason. Recording waits
  for real: the server asked.

The result is an :class:`Outcome`: passed or not, and for each failure where in the test file
the expectation is and how the run differed (see :mod:`connector.testing.checks`).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from connector import clock
from connector.apps.registry import Registry
from connector.config import tls_context
from connector.errors import ConnectorError
from connector.language.template_env import template_env
from connector.runtime.prepare import Prepared
from connector.sending.http import Redactor
from connector.testing.cassette import RecordingTransport, ReplayTransport, Resolver, write_cassette
from connector.testing.checks import Failure, check
from connector.testing.spec import Response, SpecError, TestCase, TestFile, load_cassette

__all__ = ["FAKE_ENV", "Outcome", "Recording", "guarded", "run_test"]

# what a test's run has for credentials: fakes (redacted like real ones), never the user's
FAKE_ENV = {
    "GHL_TOKEN": "test-ghl-token",
    "CONNECTEAM_API_KEY": "test-connecteam-key",
    "CONNECTOR_RETRY_BASE_DELAY": "0",
    "CONNECTOR_RETRY_MAX_DELAY": "0",
}


@dataclass
class Outcome:
    """How one test went."""

    file: str
    name: str
    where: str
    failures: list[Failure] = field(default_factory=list)
    duration_ms: float = 0.0
    actual: dict[str, Any] | None = None
    recorded: int | None = None  # with --record: how many responses the cassette got

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "name": self.name,
            "location": self.where,
            "status": "passed" if self.passed else "failed",
            "duration_ms": round(self.duration_ms, 1),
            "failures": [f.to_json() for f in self.failures],
            "recorded": self.recorded,
            "actual": self.actual,
        }


@dataclass(frozen=True)
class Recording:
    """``--record``: where the answers come from. ``live`` uses the process's environment (its
    credentials and base URLs); otherwise a fresh embedded sandbox per test."""

    live: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)


def run_test(
    tests: TestFile,
    case: TestCase,
    prepared: Prepared,
    registry: Registry,
    record: Recording | None = None,
) -> Outcome:
    """Run ``case`` of ``tests`` (recording its cassette first with ``record``)."""
    outcome = Outcome(tests.path, case.name, tests.where(f"{case.at}.name"))
    with guarded(outcome, "the run"):
        if prepared.plan is None:
            outcome.failures = [
                Failure(str(p.location), f"the recipe is not valid: {p.location.path}: {p.message}")
                for p in prepared.problems
            ]
            return outcome
        if record is not None and case.cassette is not None:
            outcome.recorded = _record(tests, case, prepared, registry, record)
        outcome.failures, outcome.actual = _replay(tests, case, prepared, registry)
    return outcome


@contextmanager
def guarded(outcome: Outcome, what: str) -> Iterator[None]:
    """Time ``outcome``, and make what goes wrong inside its failures: a test file's problems at
    their lines, a run that could not be made, or a bug (ours or a plugin's), which fails this
    test and not the whole suite (``CONNECTOR_DEBUG=1`` lets it through, with its traceback)."""
    started = time.perf_counter()
    try:
        yield
    except SpecError as exc:
        outcome.failures = [Failure(str(p.location), p.message) for p in exc.problems]
    except ConnectorError as exc:
        outcome.failures = [Failure(outcome.where, f"{what} could not be made: {exc}")]
    except Exception as exc:
        if os.environ.get("CONNECTOR_DEBUG"):
            raise
        message = f"internal error: {type(exc).__name__}: {exc} (set CONNECTOR_DEBUG=1 for details)"
        outcome.failures = [Failure(outcome.where, message)]
    finally:
        outcome.duration_ms = (time.perf_counter() - started) * 1000.0


def _resolver(registry: Registry, env: Mapping[str, str]) -> Resolver:
    bases = {}
    for name, app in registry.apps.items():
        try:
            bases[name] = app.base_url(env)
        except ConnectorError:
            continue
    return Resolver(bases)


def _env(home: str, *layers: Mapping[str, str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for layer in layers:
        env.update(layer)
    env.pop("CONNECTOR_DATABASE_URL", None)
    env["CONNECTOR_HOME"] = home
    return env


def _runs(
    case: TestCase,
    prepared: Prepared,
    registry: Registry,
    env: dict[str, str],
    transport: httpx.BaseTransport,
) -> list[Any]:
    """Run the event ``case.runs`` times durably in ``env``'s fresh home; the run records."""
    from connector.persistence.database import close_all
    from connector.runtime.durable import Runtime, RuntimeOptions

    plan = prepared.plan
    assert plan is not None
    event = dict(case.event) if case.event is not None else dict(plan.sample or {})
    records = []
    replaying = isinstance(transport, ReplayTransport)
    options = RuntimeOptions(
        transport=transport,
        budgets=False,
        sleep=clock.advance if replaying else None,
        rng=random.Random(0),  # the same jitter each time: the same waits, the same run
    )
    try:
        with clock.fixed(case.now), Runtime(registry, env, options) as runtime:
            for link in case.links:
                runtime.links.put(link.kind, link.ghl_id, link.connecteam_id, link.meta or None)
            runtime.keep_recipe(plan, prepared.text)
            for _ in range(case.runs):
                if isinstance(transport, ReplayTransport):
                    transport.mark()
                records.append(runtime.run(plan, event))
    finally:
        close_all()
    return records


def _replay(
    tests: TestFile, case: TestCase, prepared: Prepared, registry: Registry
) -> tuple[list[Failure], dict[str, Any]]:
    responses: list[Response] = list(case.responses)
    recorded_env: Mapping[str, str] = {}
    if case.cassette is not None:
        if not case.cassette.is_file():
            where = tests.where(f"{case.at}.cassette")
            message = (
                f"no cassette {case.cassette}: record it with"
                f" `connector test --record {tests.path}`"
            )
            return [Failure(where, message)], {}
        cassette = load_cassette(case.cassette)
        responses.extend(cassette.responses)
        recorded_env = cassette.env
    with tempfile.TemporaryDirectory(prefix="connector-test-") as home:
        env = _env(home, FAKE_ENV, recorded_env, case.env)
        transport = ReplayTransport(responses, _resolver(registry, env))
        records = _runs(case, prepared, registry, env, transport)
    record = records[-1]
    assert prepared.plan is not None
    failures = check(tests, case, prepared.plan, record, transport.run_sent)
    failures[:0] = [Failure(tests.where(f"{case.at}.name"), miss) for miss in transport.misses]
    actual = {
        "status": record.status,
        "error": record.error,
        "output": record.output,
        "steps": {s.id: s.status for s in record.steps},
        "waits": {s.id: s.waits for s in record.steps if s.waits},
        "requests": [s.to_json() for s in transport.run_sent],
    }
    return failures, actual


def _record(
    tests: TestFile, case: TestCase, prepared: Prepared, registry: Registry, record: Recording
) -> int:
    """Run ``case`` against the sandbox (or live) and write its cassette; returns its size."""
    assert case.cassette is not None
    with tempfile.TemporaryDirectory(prefix="connector-record-") as home:
        if record.live:
            env = _env(home, record.environ, case.env)
            count = _record_in(case, prepared, registry, env, source="live")
        else:
            from connector.sandbox.server import start_in_thread

            with start_in_thread() as sandbox:
                env = _env(home, FAKE_ENV, sandbox.env, case.env)
                count = _record_in(case, prepared, registry, env, source="sandbox")
    return count


def _record_in(
    case: TestCase, prepared: Prepared, registry: Registry, env: dict[str, str], *, source: str
) -> int:
    assert case.cassette is not None
    transport = RecordingTransport(
        httpx.HTTPTransport(verify=tls_context()), _resolver(registry, env)
    )
    _runs(case, prepared, registry, env, transport)
    # the environment a replay needs to send the same requests (the location), less what the
    # test gives itself
    kept = {
        k: v for k, v in template_env(env, registry.template_variables).items() if k not in case.env
    }
    return write_cassette(
        case.cassette,
        transport.exchanges,
        Redactor.for_apps(registry.apps.values(), env),
        source=source,
        env=kept,
        test=case.name,
    )
