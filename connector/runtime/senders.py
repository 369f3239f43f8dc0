"""How a run's steps reach the outside world: for real, or as a dry run.

The engine renders a step, builds its request, and hands it to its run's :class:`StepSender`.
:class:`LiveSender` sends it (through the caller: checkpoints, retries, the rate budget, the
journal of writes) and runs actions durably. :class:`DryRunSender` sends nothing: it shows each
request as it would go, with the headers auth adds (redacted), runs read-only actions, and lets
what it cannot know be placeholders (an earlier step's output, an unset environment variable, a
location), so a step that depends on them is shown as it would run instead of failing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from connector.apps import Action, App
from connector.catalog.model import Operation
from connector.errors import StepError
from connector.language.placeholder import Placeholder, Unset, unset_note, watching
from connector.language.plan import StepPlan
from connector.language.template_env import DryRunEnv, TemplateEnv
from connector.records import StepRecord
from connector.sending.auth import StoredAuth
from connector.sending.http import Redactor, shown_headers

if TYPE_CHECKING:
    from connector.language.templates import CompiledValue

__all__ = ["DryRunSender", "LiveSender", "SendingRun", "StepSender", "json_value"]


def json_value(value: Any) -> Any:
    """An action's output as plain JSON (what a checkpoint records and replays)."""
    return json.loads(json.dumps(value, default=str))


class SendingRun(Protocol):
    """What a sender needs of the run it sends for (the engine's run implements it)."""

    def call(
        self,
        step: StepPlan,
        op: Operation,
        app: App,
        client: httpx.Client,
        request: httpx.Request,
        result: StepRecord,
        context: Mapping[str, Any],
        unit: str,
        location: str,
    ) -> None:
        """Make the request for real: claim, send, retry, record."""

    def checkpoint(self, unit: str, func: Callable[[], Any]) -> Any:
        """``func()`` as a checkpointed unit of the run."""

    def run_action(self, action: Action, params: dict[str, Any]) -> Any:
        """Call a (non-HTTP) action now."""


class StepSender(Protocol):
    """The decisions where a real run and a dry run differ."""

    dry_run: bool

    def template_env(self, env: Mapping[str, str]) -> TemplateEnv:
        """What templates see as ``env``."""

    def no_location(
        self,
        step: StepPlan,
        app: App,
        op: Operation,
        params: dict[str, Any],
        result: StepRecord,
    ) -> None:
        """The step names no location and the environment gives none."""

    def note_unset(self, params: Mapping[str, Any], result: StepRecord) -> None:
        """Note on ``result`` what of ``params`` could not be known (environment variables)."""

    def send(
        self,
        run: SendingRun,
        step: StepPlan,
        op: Operation,
        app: App,
        client: httpx.Client,
        request: httpx.Request,
        result: StepRecord,
        context: Mapping[str, Any],
        unit: str,
        location: str,
    ) -> None:
        """Deliver a built request (or show it)."""

    def act(
        self,
        run: SendingRun,
        action: Action,
        params: dict[str, Any],
        result: StepRecord,
        unit: str,
    ) -> None:
        """Run a non-HTTP action (or show it)."""

    def condition(
        self, condition: CompiledValue, context: Mapping[str, Any]
    ) -> tuple[bool, str | None]:
        """An ``if:``'s truth, and what it depends on that is not known yet (None: nothing)."""

    def shown_output(self, step_id: str, result: StepRecord, output: Any) -> Any:
        """What later steps see as ``steps.ID.output``."""

    def finish_foreach(self, result: StepRecord) -> None:
        """Settle the status of a ``foreach`` whose items have run."""


class LiveSender:
    """A real run: every request is sent, every action run, each a checkpointed unit."""

    dry_run = False

    def template_env(self, env: Mapping[str, str]) -> TemplateEnv:
        return TemplateEnv(env)

    def no_location(
        self,
        step: StepPlan,
        app: App,
        op: Operation,
        params: dict[str, Any],
        result: StepRecord,
    ) -> None:
        lp = app.location_param
        param = op.param(lp) if lp else None
        if param is not None and param.required:
            raise StepError(
                step.id, f"{lp} is required: set {app.location_env} or give it in with:"
            )

    def note_unset(self, params: Mapping[str, Any], result: StepRecord) -> None:
        return None

    def send(
        self,
        run: SendingRun,
        step: StepPlan,
        op: Operation,
        app: App,
        client: httpx.Client,
        request: httpx.Request,
        result: StepRecord,
        context: Mapping[str, Any],
        unit: str,
        location: str,
    ) -> None:
        run.call(step, op, app, client, request, result, context, unit, location)

    def act(
        self,
        run: SendingRun,
        action: Action,
        params: dict[str, Any],
        result: StepRecord,
        unit: str,
    ) -> None:
        # reads too: a resumed run must see what the first pass saw
        result.raw = run.checkpoint(unit, lambda: json_value(run.run_action(action, params)))
        result.status = "succeeded"

    def condition(
        self, condition: CompiledValue, context: Mapping[str, Any]
    ) -> tuple[bool, str | None]:
        return bool(condition.render(context)), None

    def shown_output(self, step_id: str, result: StepRecord, output: Any) -> Any:
        return output

    def finish_foreach(self, result: StepRecord) -> None:
        return None


class DryRunSender:
    """A dry run: requests are shown as they would go and nothing is sent; read-only actions
    run, writing ones are shown; what is not known yet is a placeholder."""

    dry_run = True

    def __init__(self, redactor: Redactor, names: tuple[str, ...] = ()) -> None:
        self.redactor = redactor
        self.names = names  # the apps' location variables, which templates may read

    def template_env(self, env: Mapping[str, str]) -> TemplateEnv:
        return DryRunEnv(env, self.names)

    def no_location(
        self,
        step: StepPlan,
        app: App,
        op: Operation,
        params: dict[str, Any],
        result: StepRecord,
    ) -> None:
        # what a dry run could not know, it shows; it does not fail
        lp = app.location_param
        assert lp is not None
        params[lp] = Unset(app.location_env or lp)
        result.note = f"{lp} unknown: set {app.location_env} or give it in with:"

    def note_unset(self, params: Mapping[str, Any], result: StepRecord) -> None:
        if not result.note:  # a real run fails on these (or sends them empty)
            result.note = unset_note(params)

    def send(
        self,
        run: SendingRun,
        step: StepPlan,
        op: Operation,
        app: App,
        client: httpx.Client,
        request: httpx.Request,
        result: StepRecord,
        context: Mapping[str, Any],
        unit: str,
        location: str,
    ) -> None:
        auth = client.auth
        # show the headers auth adds, redacted; a stored connection's are not looked up (a dry
        # run sends nothing, not even a token refresh)
        if auth is not None and not isinstance(auth, StoredAuth):
            request = next(auth.sync_auth_flow(request))
        result.request_headers = self.redactor.headers(shown_headers(request))
        result.status = "planned"

    def act(
        self,
        run: SendingRun,
        action: Action,
        params: dict[str, Any],
        result: StepRecord,
        unit: str,
    ) -> None:
        if action.writes:
            result.status = "planned"
            return
        result.raw = run.run_action(action, params)
        result.status = "succeeded"

    def condition(
        self, condition: CompiledValue, context: Mapping[str, Any]
    ) -> tuple[bool, str | None]:
        with watching() as seen:
            value = condition.render(context)
            truth = bool(value)
        if isinstance(value, Placeholder):
            return truth, f"<{value._root}>"
        return truth, f"<{seen[-1]}>" if seen else None

    def shown_output(self, step_id: str, result: StepRecord, output: Any) -> Any:
        if result.status == "planned":
            return Placeholder(f"steps.{step_id}.output")
        return output

    def finish_foreach(self, result: StepRecord) -> None:
        if result.status not in ("failed", "skipped"):
            result.status = "planned"
