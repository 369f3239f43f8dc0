"""What a run leaves behind: the run record and one record per step (and per ``foreach`` item).

``RunRecord.to_json()`` is the document ``connector run --json`` prints and the run store keeps;
its shape is part of the user-facing contract. Everything in a record is already redacted.
"""

from __future__ import annotations

import json
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from connector import clock

__all__ = [
    "BODY_LIMIT",
    "Recorder",
    "RunRecord",
    "StepRecord",
    "bounded",
    "current_run",
    "ms_since",
    "new_run_id",
    "now_iso",
]

BODY_LIMIT = 16384  # characters of a response body a step's record keeps (as JSON text)

# the run this thread (or task) executes: log lines carry its id (``connector serve --log-format
# json``); set by the engine for the length of a run
current_run: ContextVar[str | None] = ContextVar("connector_current_run", default=None)

StepStatus = Literal["succeeded", "failed", "skipped", "planned"]


def new_run_id() -> str:
    return "run_" + uuid.uuid4().hex[:20]


def now_iso() -> str:
    return clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bounded(value: Any, limit: int = BODY_LIMIT) -> Any:
    """``value`` (already redacted) as a record keeps it: as it is when its JSON text is at most
    ``limit`` characters, else the first ``limit`` characters of that text with the cut marked
    (``… [cut: 18234 characters in all]``)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if len(text) <= limit:
        return value
    return text[:limit] + f"… [cut: {len(text)} characters in all]"


def ms_since(start: float) -> float:
    """Milliseconds since ``start`` (a :func:`time.perf_counter` reading): a step's duration."""
    return (time.perf_counter() - start) * 1000.0


@dataclass
class StepRecord:
    id: str
    action: str
    status: StepStatus = "skipped"
    method: str | None = None
    url: str | None = None
    status_code: int | None = None
    output: Any = None
    error: str | None = None
    request_headers: dict[str, str] | None = None
    request_body: Any = None
    started_at: str | None = None
    duration_ms: float | None = None
    index: int | None = None  # position inside a foreach
    items: list[StepRecord] | None = None  # a foreach step's one record per item
    attempts: int = 0  # requests sent (or tried) for this step
    waits: list[dict[str, Any]] = field(default_factory=list)  # {"seconds", "reason"} per wait
    note: str | None = None  # why it was skipped, or that an earlier run did it
    response_body: Any = None  # a refusal's body (redacted, bounded): the vendor's own words
    done_before: bool = False  # a once: write an earlier run performed: its recorded result
    raw: Any = field(default=None, repr=False, compare=False)  # unredacted output (never stored)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "action": self.action,
            "status": self.status,
            "method": self.method,
            "url": self.url,
            "status_code": self.status_code,
            "output": self.output,
        }
        if self.error is not None:
            data["error"] = self.error
        if self.response_body is not None:
            data["response"] = {"body": self.response_body}
        if self.request_headers is not None or self.request_body is not None:
            data["request"] = {"headers": self.request_headers, "body": self.request_body}
        if self.started_at is not None:
            data["started_at"] = self.started_at
        if self.duration_ms is not None:
            data["duration_ms"] = round(self.duration_ms, 3)
        if self.index is not None:
            data["index"] = self.index
        if self.items is not None:
            data["items"] = [item.to_json() for item in self.items]
        if self.attempts:
            data["attempts"] = self.attempts
        if self.waits:
            data["waits"] = list(self.waits)
        if self.note:
            data["note"] = self.note
        if self.done_before:
            data["done_before"] = True
        return data


@dataclass
class RunRecord:
    id: str
    recipe: str
    recipe_hash: str
    recipe_path: str
    trigger_app: str
    trigger_event: str
    trigger: Any
    status: Literal["running", "succeeded", "failed", "waiting"] = "running"
    output: Any = None
    error: str | None = None
    dry_run: bool = False
    started_at: str = field(default_factory=now_iso)
    finished_at: str | None = None
    duration_ms: float | None = None
    steps: list[StepRecord] = field(default_factory=list)
    sandbox: bool = False
    parent: str | None = None  # the run this one retries or replays
    env: dict[str, str] = field(default_factory=dict)  # what templates saw as `env` (no secret)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "recipe": self.recipe,
            "recipe_hash": self.recipe_hash,
            "recipe_path": self.recipe_path,
            "status": self.status,
            "dry_run": self.dry_run,
            "trigger": {
                "app": self.trigger_app,
                "event": self.trigger_event,
                "payload": self.trigger,
            },
            "output": self.output,
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 3),
            "steps": [s.to_json() for s in self.steps],
            "sandbox": self.sandbox,
            "parent": self.parent,
        }


class Recorder(Protocol):
    """Receives a run as it happens: the run store implements this, and so will the journal."""

    def run_started(self, run: RunRecord) -> None: ...

    def step_finished(self, run: RunRecord, step: StepRecord) -> None: ...

    def run_finished(self, run: RunRecord) -> None: ...
