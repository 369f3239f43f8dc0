"""How the page shows things: the Jinja environment, and the filters its templates use.

Templates are files in ``connector/ui/templates`` (package data), rendered with autoescaping on,
so whatever a run recorded (an API's error text, a contact's name) is shown as text, never as
markup. What a run recorded is redacted by the engine already; :class:`Shown` applies the
runtime's :class:`~connector.sending.http.Redactor` once more on the way out (the secrets of this
process's environment, and any field named like a token or a password), so a value recorded
before a secret was known is still masked on the page.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from connector.sending.http import Redactor

__all__ = ["MAX_SHOWN_CHARS", "Shown", "environment"]

MAX_SHOWN_CHARS = 20_000  # of one JSON document on the page; the rest is cut, and says so


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.1f} s"
    return f"{value / 60_000:.1f} min"


def _utc_text(iso: str) -> str:
    """``2026-07-01 10:00:03`` (UTC) from a stored ISO time."""
    return iso.replace("T", " ").split(".")[0].removesuffix("Z").removesuffix("+00:00")


def _when(iso: str | None) -> Markup:
    """A stored ISO time (UTC) as ``<time datetime=ISO>2026-07-01 10:00:03 UTC</time>``: read as
    it is without script; ``static/times.js`` shows it in the viewer's time zone, the UTC time
    on hover."""
    if not iso:
        return Markup("")
    text = _utc_text(iso)
    return Markup('<time datetime="{}" title="{} UTC">{} UTC</time>').format(iso, text, text)


def _ago(iso: str | None, now: datetime | None = None) -> str:
    if not iso:
        return ""
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return ""
    seconds = ((now or datetime.now(UTC)) - then).total_seconds()
    if seconds < 60:
        return "just now" if seconds < 5 else f"{int(seconds)} s ago"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return ""


def _epoch(seconds: float | None) -> Markup:
    """Epoch seconds as :func:`_when` shows a time."""
    if seconds is None:
        return Markup("")
    moment = datetime.fromtimestamp(float(seconds), UTC)
    return _when(moment.isoformat(timespec="seconds").replace("+00:00", "Z"))


def _qs(params: dict[str, str]) -> str:
    return urlencode(params)


class Shown:
    """Redacts what a template shows: ``json`` (pretty, cut at :data:`MAX_SHOWN_CHARS`),
    ``headers`` and ``text``."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def json(self, value: Any) -> str:
        if value is None:
            return ""
        text = json.dumps(self.redactor.value(value), indent=2, ensure_ascii=False, default=str)
        if len(text) > MAX_SHOWN_CHARS:
            cut = len(text) - MAX_SHOWN_CHARS
            text = text[:MAX_SHOWN_CHARS] + f"\n… ({cut:,} more characters not shown)"
        return text

    def headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        return self.redactor.headers(headers or {})

    def text(self, value: Any) -> str:
        return "" if value is None else self.redactor.text(str(value))


def environment(shown: Shown) -> Environment:
    env = Environment(
        loader=PackageLoader("connector.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ms=_ms, when=_when, ago=_ago, epoch=_epoch, qs=_qs, pretty=shown.json, secretless=shown.text
    )
    env.globals["shown"] = shown
    return env
