"""The serving process's log: text for a person, or one JSON object a line for a log collector.

The standard library's :mod:`logging` is used, not structlog: DBOS, uvicorn and httpx already log
through it, so one handler on the root logger formats every line the process writes, and a JSON
line is a small formatter away (no dependency for ~40 lines).

Every line written while a run executes carries its id (:data:`connector.records.current_run`,
set by the engine for the length of a run; a line may also name one with ``extra={"run_id":
...}``). Messages are built by the code that logs them, which never puts a secret or a whole
payload in one: ids, statuses, what the vendor said (redacted) and why a step waits.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from connector.records import current_run

__all__ = ["FORMATS", "LEVELS", "JsonFormatter", "RunIdFilter", "configure"]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class RunIdFilter(logging.Filter):
    """Puts the id of the run being executed on every record (``run_id``; None outside runs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "run_id", None) is None:
            record.run_id = current_run.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    ``run_id`` when the line is about a run, and ``error`` (the exception's type and text)."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        run_id = getattr(record, "run_id", None)
        if run_id:
            line["run_id"] = run_id
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line["error"] = f"{type(exc).__name__}: {exc}"
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send every log line of the process to ``stream`` (stderr) at ``level`` in ``fmt``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RunIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # the libraries' own chatter stays out unless asked for
    quiet = logging.WARNING if level.upper() != "DEBUG" else logging.DEBUG
    logging.getLogger("httpx").setLevel(quiet)
    logging.getLogger("httpcore").setLevel(quiet)
