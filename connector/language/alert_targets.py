"""A recipe's or a sync declaration's own alert targets: its ``alerts:``.

Two forms::

    alerts: [OPS_SLACK_URL, "json://alerts.example.com/connector"]   # added to the deployment's

    alerts:
      to: [BILLING_TEAM_EMAIL]
      deployment: false          # only these: CONNECTOR_ALERT_URLS does not get this one's

Each entry is an Apprise URL, or the name of an environment variable that holds one (or several,
separated by spaces or commas, as ``CONNECTOR_ALERT_URLS``). A URL that carries a password
(``mailto://user:password@...``) is refused in the file: it belongs in a variable, named here.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connector.errors import Location, Problem

__all__ = ["ENV_NAME", "AlertTargets", "alert_problems", "alert_targets"]

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@?#]*:[^/@?#]*@")


@dataclass(frozen=True)
class AlertTargets:
    """``to``: the entries as written (URLs, names of variables); ``deployment``: whether the
    deployment's targets (CONNECTOR_ALERT_URLS) get these alerts too."""

    to: tuple[str, ...] = ()
    deployment: bool = True


def alert_targets(value: Any) -> AlertTargets | None:
    """The ``alerts:`` value (its shape checked by the schema) as targets; None when absent."""
    if isinstance(value, list):
        return AlertTargets(tuple(str(v) for v in value))
    if isinstance(value, Mapping):
        to = value.get("to") or []
        return AlertTargets(tuple(str(v) for v in to), bool(value.get("deployment", True)))
    return None


def alert_problems(
    value: Any,
    location: Callable[[str], Location],
    env: Mapping[str, str] | None = None,
    at: str = "$.alerts",
) -> list[Problem]:
    """What is wrong with an ``alerts:`` value (the schema has checked its shape): an entry
    that is neither a URL nor a variable's name, a URL Apprise does not understand, a password
    written in the file (errors); a variable not set in ``env`` (a warning: it may be set where
    the recipe is served)."""
    targets = alert_targets(value)
    if targets is None:
        return []
    env = os.environ if env is None else env
    base = at if isinstance(value, list) else f"{at}.to"
    problems: list[Problem] = []
    for index, entry in enumerate(targets.to):
        path = f"{base}[{index}]"
        if _URL.match(entry):
            if _PASSWORD.match(entry):
                scheme = entry.split("://", 1)[0]
                problems.append(
                    Problem(
                        location(path),
                        f"this {scheme}:// URL carries a password: keep it out of the file; put"
                        " the URL in an environment variable and write the variable's name here"
                        " (for example OPS_ALERT_URL)",
                    )
                )
            elif not _apprise_knows(entry):
                scheme = entry.split("://", 1)[0]
                problems.append(
                    Problem(
                        location(path),
                        f"Apprise does not understand this {scheme}:// URL: see"
                        " https://github.com/caronc/apprise/wiki for the URLs of each service",
                    )
                )
        elif ENV_NAME.match(entry):
            if not env.get(entry):
                problems.append(
                    Problem(
                        location(path),
                        f"the environment variable {entry} is not set here; where the recipe is"
                        " served it must hold an Apprise URL, or its alerts go only to the"
                        " other targets",
                        severity="warning",
                    )
                )
        else:
            problems.append(
                Problem(
                    location(path),
                    f"{entry!r} is neither an Apprise URL (scheme://...) nor the name of an"
                    " environment variable (capital letters, digits and _)",
                )
            )
    if not targets.to and not targets.deployment:
        problems.append(
            Problem(
                location(at),
                "no target: with deployment: false, name at least one in `to`, or this"
                " recipe's alerts go nowhere",
            )
        )
    return problems


def _apprise_knows(url: str) -> bool:
    """Whether Apprise has a service for ``url`` (nothing is sent)."""
    import apprise

    logger = logging.getLogger("apprise")  # it logs the URL it cannot parse: said here instead
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return bool(apprise.Apprise().add(url))
    finally:
        logger.setLevel(level)
