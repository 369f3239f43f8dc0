"""What templates see as ``env``: the ``CONNECTOR_VAR_*`` variables and the variables the apps
name their location by (``App.location_env``: GoHighLevel's ``GHL_LOCATION_ID``, given as
``names`` from :attr:`connector.apps.registry.Registry.template_variables`), and never a secret
(credentials stay with the connections).

:func:`template_env` picks them out of a process environment; :class:`TemplateEnv` is the mapping
templates read, whose missing variables errors name as unset (:func:`unset_message`); in a dry
run, :class:`DryRunEnv` gives a variable that is not set as a
:class:`~connector.language.placeholder.Unset`, shown where it is sent.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from connector.language.placeholder import Unset

__all__ = ["DryRunEnv", "TemplateEnv", "template_env", "unset_message", "visible"]


def visible(name: str, names: Collection[str] = ()) -> bool:
    """Whether templates see the environment variable ``name`` (``names``: the apps' location
    variables)."""
    return name in names or name.startswith("CONNECTOR_VAR_")


class TemplateEnv(dict[str, str]):
    """The environment variables templates see as ``env``: a plain mapping, whose missing
    variables errors name as unset."""


def template_env(env: Mapping[str, str], names: Collection[str] = ()) -> TemplateEnv:
    """The environment visible to templates as ``env`` (``names``: the apps' location
    variables): never a secret."""
    return TemplateEnv((k, v) for k, v in env.items() if visible(k, names))


class DryRunEnv(TemplateEnv):
    """``env`` in a dry run: a variable templates may read that is not set is an
    :class:`~connector.language.placeholder.Unset`, shown where it is sent instead of failing the step."""

    def __init__(self, env: Mapping[str, str], names: Collection[str] = ()) -> None:
        super().__init__(env)
        self.names = tuple(names)

    def __missing__(self, key: str) -> Any:
        if isinstance(key, str) and visible(key, self.names):
            return Unset(key)
        raise KeyError(key)


# Jinja's words for a missing key of either mapping (``'connector.language.template_env.TemplateEnv
# object' has no attribute 'GHL_LOCATION_ID'``)
_UNSET = re.compile(
    rf"^'{re.escape(__name__)}\.(?:TemplateEnv|DryRunEnv) object' has no (?:attribute|element) "
    r"'(.+)'$"
)


def unset_message(message: str) -> str | None:
    """A recipe author's words for Jinja's ``message`` when it is about a variable of ``env``
    that is not set; ``None`` when it is about something else."""
    found = _UNSET.match(message)
    if not found:
        return None
    name = found.group(1)
    return (
        f"the environment variable {name} is not set (templates see CONNECTOR_VAR_* and the"
        f" apps' location variables): set it, or give a default,"
        f" {{{{ env.{name} | default('...') }}}}"
    )
