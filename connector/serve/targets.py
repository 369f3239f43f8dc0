"""Where alerts go: the targets (Apprise URLs) of the deployment and of each recipe or sync.

:func:`alert_urls` reads ``CONNECTOR_ALERT_URLS`` (and a variable a recipe names);
:func:`alert_routes` a recipe's or sync's own ``alerts:``; :func:`shown_url` is a target as a log
line or a terminal may show it; :func:`send_apprise` sends one message through Apprise; and
:func:`hide_in_logs` keeps the secret parts of the targets out of the sending libraries' log
lines.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from connector.language.alert_targets import AlertTargets

__all__ = [
    "Route",
    "Sender",
    "alert_routes",
    "alert_urls",
    "hide_in_logs",
    "secret_parts",
    "send_apprise",
    "shown_url",
]

log = logging.getLogger("connector.alerts")

Route = tuple[tuple[str, ...], bool]  # a recipe's own URLs, and whether the deployment's get it
Sender = Callable[[str, str, str], bool]  # (url, title, body) -> sent?


def alert_urls(text: str | None) -> list[str]:
    """The Apprise URLs in ``CONNECTOR_ALERT_URLS``: separated by spaces or commas; a piece with
    no ``://`` belongs to the URL before it (``mailto://...?to=a@x.org,b@x.org``)."""
    urls: list[str] = []
    for piece in re.split(r"[\s,]+", text or ""):
        if not piece:
            continue
        if "://" in piece or not urls:
            urls.append(piece)
        else:
            urls[-1] += "," + piece
    return urls


def shown_url(url: str) -> str:
    """A target as a log line or a terminal may show it: its scheme and host, never its
    credentials or tokens (``json://127.0.0.1:8080/...``, ``slack://***/...``)."""
    match = re.match(r"^([A-Za-z0-9+.-]+)://(?:[^@/]*@)?([^/?#]*)", url)
    if match is None:
        return "(an alert URL)"
    host = match.group(2)
    if host and "." not in host and ":" not in host and host != "localhost":
        host = "***"  # slack://TOKEN/..., discord://ID/TOKEN: a token where the host would be
    return f"{match.group(1)}://{host}/..."


# the libraries that send alerts log the URLs they send to at DEBUG (a Slack webhook's path is
# its token; a webhook's path or query may be one): their lines are cleaned of every secret part
# of the configured URLs before any handler sees them
SENDING_LOGGERS = ("apprise", "urllib3.connectionpool", "requests")


def secret_parts(url: str) -> set[str]:
    """The parts of an Apprise URL that may be secrets: its user and password, its path
    segments and query values (6 characters or more), a host name without a dot (Slack's and
    Discord's URLs put a token there), and the URL itself."""
    found = {url}
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        names = [parts.username or "", parts.password or ""]
    except ValueError:
        return found
    pieces = [*names, *parts.path.split("/"), *(v for _, v in parse_qsl(parts.query))]
    if host and "." not in host and host != "localhost" and not host.startswith("["):
        pieces.append(host)
    for piece in pieces:
        if len(piece) >= 6 or (len(piece) >= 3 and piece in names[1:]):
            found.update({piece, unquote(piece)})
    return found


class _Secretless(logging.Filter):
    """Takes the secret parts of the alert URLs out of a log record's text."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[str] = []

    def add(self, urls: Iterable[str]) -> None:
        found = set(self.secrets)
        for url in urls:
            found.update(secret_parts(url))
        self.secrets = sorted(found, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:
            return True
        clean = text
        for secret in self.secrets:
            clean = clean.replace(secret, "***")
        if clean != text:
            record.msg, record.args = clean, ()
        return True


_SECRETLESS = _Secretless()


def hide_in_logs(urls: Iterable[str]) -> None:
    """Keep the secret parts of ``urls`` out of the sending libraries' log lines."""
    _SECRETLESS.add(urls)
    for name in SENDING_LOGGERS:
        logger = logging.getLogger(name)
        if _SECRETLESS not in logger.filters:
            logger.addFilter(_SECRETLESS)


def send_apprise(url: str, title: str, body: str) -> bool:
    """Send one message to one Apprise URL; True when the target took it."""
    import apprise

    target = apprise.Apprise()
    if not target.add(url):
        log.warning("alert target %s is not a URL Apprise understands", shown_url(url))
        return False
    return bool(target.notify(title=title, body=body))


def alert_routes(
    plans: Sequence[Any], syncs: Sequence[Any], env: Mapping[str, str]
) -> dict[str, Route]:
    """Each recipe's and sync's own targets (its ``alerts:``, names of environment variables
    read from ``env``), and whether the deployment's get its alerts too. A variable that is not
    set is a warning in the log, naming the recipe and the variable."""
    routes: dict[str, Route] = {}
    for item in [*plans, *syncs]:
        targets: AlertTargets | None = getattr(item, "alerts", None)
        if targets is None:
            continue
        urls: list[str] = []
        for entry in targets.to:
            if "://" in entry:
                urls.append(entry)
                continue
            found = alert_urls(env.get(entry))
            if not found:
                log.warning(
                    "%s: alerts: the environment variable %s is not set; its alerts go to the"
                    " other targets",
                    item.name,
                    entry,
                )
            urls.extend(found)
        routes[item.name] = (tuple(dict.fromkeys(urls)), targets.deployment)
        log.debug("%s alerts to %s", item.name, ", ".join(shown_url(u) for u in urls) or "-")
    return routes
