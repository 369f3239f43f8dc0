"""Where connector keeps its files, and the environment it reads."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["connector_home"]


def connector_home(env: Mapping[str, str] | None = None) -> Path:
    """``CONNECTOR_HOME``, or the user's data dir (``$XDG_DATA_HOME/connector``)."""
    env = os.environ if env is None else env
    if env.get("CONNECTOR_HOME"):
        return Path(env["CONNECTOR_HOME"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "connector"
