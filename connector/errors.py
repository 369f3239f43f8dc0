"""Errors raised by connector.

Every error a user can see derives from :class:`ConnectorError`; the command line turns it into a
one-line message and an exit code, never a traceback. Errors carry objects (a recipe location, an
operation name, a response), not only text, and never carry a secret or a whole template context.

The hierarchy::

    ConnectorError
    ├── UsageError                 a command was called wrongly (exit 2)
    ├── CatalogError               a catalog could not be built or read
    │   └── UnknownOperation       an action name that no app or plugin provides (has `suggestions`)
    ├── RecipeError                a recipe cannot be used as it is (exit 2 for `run`)
    │   ├── RecipeLoadError        YAML syntax, encoding, size, nesting, alias bombs
    │   └── RecipeInvalid          validation found problems (has `problems: list[Problem]`)
    ├── TemplateError              a template failed to compile or render
    │   └── TemplateLimitError     a template exceeded its time, size or iteration budget
    ├── StepError                  a step failed at run time (has `step_id`)
    │   └── HTTPStepError          a non-2xx response (has `status_code`, `api_message`)
    ├── NotConnected               an app has no usable credentials: the request was not sent
    ├── PluginError                a plugin failed to load or misbehaved (has `plugin`)
    └── StoreError                 the run store or the id-link store failed
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "CatalogError",
    "ConnectorError",
    "HTTPStepError",
    "Location",
    "NotConnected",
    "PluginError",
    "Problem",
    "RecipeError",
    "RecipeInvalid",
    "RecipeLoadError",
    "StepError",
    "StoreError",
    "TemplateError",
    "TemplateLimitError",
    "UnknownOperation",
    "UsageError",
    "step_failure",
]


@dataclass(frozen=True)
class Location:
    """Where something is in a recipe file: 1-based line and column, and the JSON path."""

    file: str
    line: int = 1
    column: int = 1
    path: str = "$"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe, printed the way compilers do."""

    location: Location
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.location}: {self.severity}: {self.location.path}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "path": self.location.path,
            "severity": self.severity,
            "message": self.message,
        }


class ConnectorError(Exception):
    """The base of every error connector raises on purpose."""

    exit_code = 1


class UsageError(ConnectorError):
    exit_code = 2


class CatalogError(ConnectorError):
    pass


class UnknownOperation(CatalogError):
    def __init__(self, name: str, suggestions: list[str] | None = None) -> None:
        self.name = name
        self.suggestions = list(suggestions or [])
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown operation {name!r}{hint}")


class RecipeError(ConnectorError):
    exit_code = 2


class RecipeLoadError(RecipeError):
    def __init__(self, message: str, location: Location) -> None:
        self.location = location
        self.problem = Problem(location, message)
        super().__init__(str(self.problem))


class RecipeInvalid(RecipeError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class TemplateError(ConnectorError):
    """``at``: where inside the rendered value it failed, as keys and indexes (``("phone",)``
    for a step's ``with.phone``), so the message can name the parameter and its line."""

    at: tuple[str | int, ...] = ()


class TemplateLimitError(TemplateError):
    pass


class StepError(ConnectorError):
    def __init__(self, step_id: str, message: str) -> None:
        self.step_id = step_id
        super().__init__(f"step {step_id!r}: {message}")


class HTTPStepError(StepError):
    """``app``: the title of the vendor that answered, named in the message
    (``HTTP 503 from GoHighLevel: Service Unavailable``)."""

    def __init__(self, step_id: str, status_code: int, api_message: str, app: str = "") -> None:
        self.status_code = status_code
        self.api_message = api_message
        self.app = app
        super().__init__(step_id, self.said())

    def said(self) -> str:
        source = f" from {self.app}" if self.app else ""
        return f"HTTP {self.status_code}{source}: {self.api_message}"


def step_failure(step_id: str, exc: BaseException) -> str:
    """The error a step's record shows for ``exc``: an API's refusal as ``HTTP 422: ...``, one of
    ours without its ``step 'ID': `` prefix, anything else (a transport error, a plugin action's
    own bug) as its type and message."""
    if isinstance(exc, HTTPStepError):
        return exc.said()
    if isinstance(exc, ConnectorError):
        return str(exc).removeprefix(f"step {step_id!r}: ")
    return f"{type(exc).__name__}: {exc}"


class PluginError(ConnectorError):
    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r}: {message}")


class StoreError(ConnectorError):
    pass


class NotConnected(ConnectorError):
    """An app has no usable credentials for the account a request acts on (never logged in, or
    the connection needs a new login): the request was not sent, and the message says what to do."""
