"""Running one sync test: a fresh embedded sandbox, the real durable sync, then the checks.

Each test gets a sandbox of its own (its shipped seed) and a temporary ``CONNECTOR_HOME`` (no
pairs, no synced state). What a test does to the apps goes through their own APIs, as a person
would: records are read, made, changed and removed by the requests their record types name
(:mod:`connector.apps.records`). The events the apps send about those changes are caught where
the sandbox emits them (every webhook both vendors would send, whether or not one is registered)
and held until the test delivers them; a delivered event is read by its app's own webhook parser
and becomes a sync job exactly as ``connector serve`` makes it, run by the durable runtime.

After the last action the events still held are delivered, and those the sync's writes cause, in
the order sent, until none is left. Then the expectations are read back from the apps.
"""

from __future__ import annotations

import math
import tempfile
import threading
from collections.abc import Mapping
from typing import Any

from connector.apps.events import Event
from connector.apps.records import Address, RecordType
from connector.apps.registry import Registry
from connector.errors import ConnectorError
from connector.language.sync_spec import SIDES, SyncSpec, load_sync
from connector.language.template_env import template_env
from connector.persistence.sync import Conflict
from connector.records import RunRecord, new_run_id
from connector.sending.http import api_message, make_clients, parse_body
from connector.sync.engine import prepare, sync_job
from connector.testing.checks import Failure, diff_lines
from connector.testing.compare import differences, shown
from connector.testing.runner import Outcome, guarded
from connector.testing.sync_cases import Action, NewRecord, SyncCase, SyncTestFile

__all__ = ["run_sync_test"]

APP_TITLES = {"ghl": "GoHighLevel", "connecteam": "Connecteam"}
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_ROUNDS = 10  # deliveries after the last action: the sync's echoes must die out well before
MAX_PAGES = 200


class TestError(ConnectorError):
    """Something the test asked for could not be done (the message says where)."""

    __test__ = False

    def __init__(self, at: str, message: str) -> None:
        self.at = at
        super().__init__(message)


class _Named:
    __slots__ = ("address", "id", "parent", "side", "type")

    def __init__(
        self, side: str, record_type: RecordType, record_id: str, address: Address, parent: str
    ) -> None:
        self.side = side
        self.type = record_type
        self.id = record_id
        self.address = dict(address)
        self.parent = parent


class _World:
    """The sandboxed apps as a person uses them, the records a test named, and the events the
    apps sent that the test has not delivered yet."""

    def __init__(self, sandbox: Any, registry: Registry, env: Mapping[str, str]) -> None:
        self.sandbox = sandbox
        self.registry = registry
        self.env = env
        apps = [registry.apps[name] for name in SIDES if name in registry.apps]
        self.clients = make_clients(apps, env)
        self.named: dict[str, _Named] = {}
        self._lock = threading.Lock()
        self._held: list[tuple[str, dict[str, Any]]] = []
        state = sandbox.state
        state.listeners.append(self._ghl)
        state.connecteam_listeners.append(self._connecteam)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    # the events the apps send
    def _ghl(self, event: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._held.append(("ghl", self.sandbox.app.webhooks.payload(event, record)))

    def _connecteam(self, feature: str, event: str, items: list[dict[str, Any]]) -> None:
        body = self.sandbox.app.connecteam_webhooks.payload(feature, event, items)
        with self._lock:
            self._held.append(("connecteam", body))

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            held, self._held = self._held, []
        return held

    def events(self, app: str, body: dict[str, Any]) -> list[Event]:
        """The events one webhook body is, read by its app's own parser."""
        webhook = self.registry.apps[app].webhooks[0]
        settings = webhook.settings(self.env)
        return list(webhook.parse(settings, body, self.sandbox.state.now()).events)

    # requests
    def send(self, at: str, request: tuple[str, dict[str, Any]]) -> tuple[int, Any]:
        _, _, client, built, _ = prepare(self.registry, self.clients, self.env, at, request)
        answer = client.send(built)
        return answer.status_code, parse_body(answer)

    def _ok(self, at: str, request: tuple[str, dict[str, Any]], what: str) -> Any:
        status, body = self.send(at, request)
        if status >= 400:
            raise TestError(at, f"{what}: HTTP {status}: {api_message(body) or shown(body)}")
        return body

    def record_type(self, at: str, side: str, name: str) -> RecordType:
        app = self.registry.apps.get(side)
        found = app.records.get(name) if app is not None else None
        if found is None:
            known = ", ".join(sorted(app.records)) if app is not None else "none"
            raise TestError(at, f"{APP_TITLES[side]} has no record type {name!r} (known: {known})")
        return found

    def create(self, record: NewRecord) -> None:
        rt = self.record_type(record.at, record.side, record.type)
        if rt.create is None or rt.created is None:
            raise TestError(record.at, f"a {rt.title} cannot be made through the API")
        parent_id = None
        if record.parent:
            parent = self.named[record.parent]
            if parent.side != record.side:
                raise TestError(record.at, f"{record.parent!r} is not in {APP_TITLES[record.side]}")
            parent_id = parent.id
        request = rt.create(rt.encode(record.fields), self.env, parent_id)
        made = rt.created(self._ok(record.at, request, f"making {record.name!r} failed"))
        if made is None:
            raise TestError(record.at, f"the answer to making {record.name!r} holds no record")
        self.named[record.name] = _Named(
            record.side, rt, rt.id_of(made), rt.address_of(made), record.parent or ""
        )

    def read(self, at: str, name: str) -> Mapping[str, Any] | None:
        """The named record as its app reads it now (decoded), None when it is gone."""
        named = self.named[name]
        rt = named.type
        request = rt.read(named.id, named.address)
        if request is None:
            raise TestError(at, f"a {rt.title} cannot be read by its id alone")
        status, body = self.send(at, request)
        if status >= 400:
            if rt.missing(status, api_message(body)):
                return None
            raise TestError(at, f"reading {name!r} failed: HTTP {status}: {api_message(body)}")
        record = rt.record_of(body)
        return None if record is None else rt.decode(record)

    def edit(self, action: Action) -> None:
        named = self.named[action.name]
        rt = named.type
        status, body = self.send(action.at, rt.read(named.id, named.address) or ("", {}))
        current = rt.record_of(body) if status < 400 else None
        if current is None:
            raise TestError(action.at, f"{action.name!r} is gone; it cannot be edited")
        request = rt.update(named.id, rt.encode(action.value), current, named.address)
        self._ok(action.at, request, f"editing {action.name!r} failed")

    def remove(self, action: Action) -> None:
        named = self.named[action.name]
        rt = named.type
        how = rt.archive if action.verb == "archive" else rt.remove
        if how is None:
            raise TestError(action.at, f"a {rt.title} cannot be {action.verb}d through the API")
        self._ok(
            action.at, how(named.id, named.address), f"{action.verb} of {action.name!r} failed"
        )

    def every(self, at: str, side: str, type_name: str) -> list[Mapping[str, Any]]:
        rt = self.record_type(at, side, type_name)
        if rt.walk is None or rt.page is None:
            raise TestError(
                at, f"{rt.title}s cannot be listed: name them in `records` or `counterparts`"
            )
        out: list[Mapping[str, Any]] = []
        cursor: Any = None
        for _ in range(MAX_PAGES):
            answer = self._ok(at, rt.walk(cursor, self.env), f"listing {rt.title}s failed")
            records, cursor = rt.page(answer, cursor)
            out.extend(rt.decode(r) for r in records)
            if cursor is None:
                return out
        raise TestError(at, f"more than {MAX_PAGES} pages of {rt.title}s")


class _Sync:
    """The declaration's runs, one per delivered event, as ``connector serve`` makes them."""

    def __init__(self, runtime: Any, spec: SyncSpec, world: _World) -> None:
        self.runtime = runtime
        self.spec = spec
        self.world = world
        self.records: list[RunRecord] = []
        runtime.keep_sync(spec)

    def deliver(self, held: list[tuple[str, dict[str, Any]]]) -> None:
        env = template_env(self.runtime.env, self.runtime.registry.template_variables)
        for app, body in held:
            for event in self.world.events(app, body):
                for pair in self.spec.pairs_for(event.app, event.type):
                    rt = pair.record(event.app)
                    record = rt.event_record(event.payload)
                    record_id = rt.event_id(record)
                    if not record_id:
                        continue
                    job = sync_job(
                        self.spec,
                        pair,
                        event.app,
                        record_id,
                        event.type,
                        dict(record),
                        run_id=new_run_id(),
                        env=env,
                    )
                    self.records.append(self.runtime.run_job(job))

    def name_counterpart(self, at: str, name: str, as_name: str) -> bool:
        """Name ``as_name`` the record the sync paired with ``name`` (False: not paired)."""
        named = self.world.named[name]
        pairs = [p for p in self.spec.pairs if p.record(named.side) is named.type]
        if not pairs:
            raise TestError(at, f"the declaration pairs no {named.type.title}s")
        pair = pairs[0]
        state = self.runtime.sync.pair(pair.kind, named.side, named.id)
        if state is None:
            return False
        other = "connecteam" if named.side == "ghl" else "ghl"
        other_id = state.connecteam_id if other == "connecteam" else state.ghl_id
        address = (state.address or {}).get(other) or {}
        self.world.named[as_name] = _Named(other, pair.record(other), str(other_id), address, "")
        return True

    def counterpart(self, at: str, name: str) -> Mapping[str, Any] | None:
        """The record the sync paired with the named one, as its app reads it now (None: not
        paired, or gone)."""
        key = f"{name}@counterpart"
        if not self.name_counterpart(at, name, key):
            return None
        try:
            return self.world.read(at, key)
        finally:
            del self.world.named[key]

    def resolve(self, action: Action) -> None:
        from connector.sync.resolve import resolve_conflict

        waiting = [c for c in self.runtime.sync.conflicts(status="open") if c.field == action.name]
        if len(waiting) != 1:
            raise TestError(
                action.at,
                f"{len(waiting)} conflicts on {action.name!r} wait for a person; expected one",
            )
        assert waiting[0].id is not None
        record = resolve_conflict(
            self.runtime, waiting[0].id, str(action.value), lambda text, path: self.spec
        )
        self.records.append(record)


def _deliver(how: str, held: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    if how == "reversed":
        return list(reversed(held))
    if how == "twice":
        return [item for item in held for _ in (0, 1)]
    if how == "none":
        return []
    return held


def _do(case: SyncCase, world: _World, sync: _Sync) -> None:
    for record in case.given:
        world.create(record)
    world.take()  # what existed before the sync started: nothing to deliver
    for action in case.actions:
        if action.verb == "create":
            assert action.record is not None
            world.create(action.record)
        elif action.verb == "edit":
            world.edit(action)
        elif action.verb in ("delete", "archive"):
            world.remove(action)
        elif action.verb == "counterpart":
            if not sync.name_counterpart(action.at, action.name, str(action.value)):
                raise TestError(action.at, f"{action.name!r} is not paired (yet)")
        elif action.verb == "wait":
            world.sandbox.clock.advance(
                _to_whole_second(world.sandbox.clock(), float(action.value))
            )
        elif action.verb == "deliver":
            sync.deliver(_deliver(str(action.value), world.take()))
        elif action.verb == "resolve":
            sync.resolve(action)
    for _ in range(MAX_ROUNDS):
        held = world.take()
        if not held:
            return
        sync.deliver(held)
    raise TestError(case.at, f"the sync still caused events after {MAX_ROUNDS} rounds (a loop)")


def _compared(
    what: str, wanted: Any, got: Mapping[str, Any] | None, missing: str
) -> list[tuple[str, tuple[str, ...]]]:
    """How a record read back differs from what a test expects of it (``"gone"``, or fields)."""
    if wanted == "gone":
        return [] if got is None else [(f"{what} still exists", (shown(dict(got)),))]
    if got is None:
        return [(f"{what} {missing}", ())]
    found = differences(wanted, dict(got))
    if not found:
        return []
    detail = tuple(f"{d.where or '(the record)'}: {d.message}" for d in found)
    return [(f"{what} is not as expected", detail + diff_lines(wanted, _only(wanted, got)))]


def _only(wanted: Mapping[str, Any], got: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``got`` a test compared (the rest would only hide the difference)."""
    return {k: got[k] for k in wanted if k in got}


def _writes(registry: Registry, action: str, method: str | None) -> bool:
    """Whether a step that sent ``method`` for operation ``action`` changed something (a search
    sent as a POST did not)."""
    if (method or "").upper() not in WRITES:
        return False
    app = registry.apps.get(action.partition(".")[0])
    return app is None or action not in app.post_reads


def _conflict_view(conflict: Conflict) -> dict[str, Any]:
    return {
        "kind": conflict.kind,
        "field": conflict.field,
        "rule": conflict.rule,
        "winner": conflict.winner,
        "status": conflict.status,
    }


def _check(tests: SyncTestFile, case: SyncCase, world: _World, sync: _Sync) -> list[Failure]:
    failures: list[Failure] = []
    expect = case.expect

    def at(path: str) -> str:
        return tests.where(path)

    for record in sync.records:
        if record.status != "succeeded":
            failures.append(
                Failure(
                    at(f"{case.at}.name"), f"sync run {record.id} {record.status}: {record.error}"
                )
            )
    for name, wanted in expect.records.items():
        here = f"{expect.at}.records.{name}"
        found = _compared(f"{name!r}", wanted, world.read(here, name), "is gone")
        failures.extend(Failure(at(here), message, detail) for message, detail in found)
    for name, wanted in expect.counterparts.items():
        here = f"{expect.at}.counterparts.{name}"
        got = sync.counterpart(here, name)
        found = _compared(f"{name!r}'s counterpart", wanted, got, "does not exist")
        failures.extend(Failure(at(here), message, detail) for message, detail in found)
    for (side, type_name), items in expect.lists.items():
        here = f"{expect.at}.{side}.{type_name}"
        records = [dict(r) for r in world.every(here, side, type_name)]
        for index, item in enumerate(items):
            matching = [r for r in records if not differences(item, r)]
            if len(matching) != 1:
                title = world.record_type(here, side, type_name).title
                failures.append(
                    Failure(
                        at(f"{here}[{index}]"),
                        f"{len(matching)} {title}s match {shown(item)}; expected exactly one",
                        tuple(shown(r) for r in matching[:5]),
                    )
                )
    writes = [
        step.action
        for record in sync.records
        for step in record.steps
        if step.status == "succeeded" and _writes(world.registry, step.action, step.method)
    ]
    if isinstance(expect.writes, int) and len(writes) != expect.writes:
        failures.append(
            Failure(
                at(f"{expect.at}.writes"),
                f"{len(writes)} writes were sent; expected {expect.writes}",
                tuple(writes),
            )
        )
    elif isinstance(expect.writes, tuple) and list(expect.writes) != writes:
        failures.append(
            Failure(
                at(f"{expect.at}.writes"),
                "the writes sent differ",
                diff_lines(list(expect.writes), writes),
            )
        )
    if expect.conflicts is not None:
        met = [_conflict_view(c) for c in reversed(sync.runtime.sync.conflicts())]
        if len(met) != len(expect.conflicts) or any(
            differences(want, got) for want, got in zip(expect.conflicts, met, strict=False)
        ):
            failures.append(
                Failure(
                    at(f"{expect.at}.conflicts"),
                    f"{len(met)} conflicts were recorded; they differ from the {len(expect.conflicts)} expected",
                    diff_lines(list(expect.conflicts), met),
                )
            )
    return failures


def run_sync_test(tests: SyncTestFile, case: SyncCase, registry: Registry) -> Outcome:
    """Run ``case`` of ``tests`` on a fresh sandbox and database."""
    outcome = Outcome(tests.path, case.name, tests.where(f"{case.at}.name"))
    with guarded(outcome, "the sync run"):
        try:
            _run(tests, case, registry, outcome)
        except TestError as exc:
            outcome.failures = [Failure(tests.where(exc.at), str(exc))]
    return outcome


def _run(tests: SyncTestFile, case: SyncCase, registry: Registry, outcome: Outcome) -> None:
    from connector.persistence.database import close_all
    from connector.runtime.durable import Runtime, RuntimeOptions
    from connector.sandbox.server import start_in_thread

    spec, problems = load_sync(tests.sync, registry)
    if spec is None:
        outcome.failures = [
            Failure(str(p.location), f"the declaration is not valid: {p.message}")
            for p in problems
            if p.severity == "error"
        ]
        return
    with (
        tempfile.TemporaryDirectory(prefix="connector-sync-test-") as home,
        start_in_thread() as sandbox,
    ):
        env = {
            **sandbox.env,
            "CONNECTOR_VAR_TASK_BOARD_ID": sandbox.state.default_task_board_id,
            "CONNECTOR_HOME": home,
            "CONNECTOR_RETRY_BASE_DELAY": "0",
            "CONNECTOR_RETRY_MAX_DELAY": "0",
            **case.env,
        }
        world = _World(sandbox, registry, env)
        try:
            with Runtime(registry, env, RuntimeOptions(budgets=False)) as runtime:
                sync = _Sync(runtime, spec, world)
                _do(case, world, sync)
                outcome.failures = _check(tests, case, world, sync)
                outcome.actual = {
                    "runs": [r.id for r in sync.records],
                    "conflicts": [c.to_json() for c in runtime.sync.conflicts()],
                }
        finally:
            world.close()
            close_all()


def _to_whole_second(now: float, wait: float) -> float:
    """How far a ``wait`` moves the sandbox clock from ``now``: the seconds asked, and on to the
    start of the next whole second, so that the edits made right after a wait fall in one
    second whatever the machine's load (Connecteam keeps whole seconds: edits on both sides in
    one second are a tie under ``newest``, and a busy machine could otherwise make them straddle
    a second's end)."""
    return math.ceil(now + wait) - now
