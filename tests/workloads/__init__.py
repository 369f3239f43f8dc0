"""The one-way recipes the runtime's tests run as workloads.

Until the two-way sync (recipes/people-and-tasks.sync.yaml) took their place, these flows shipped
in recipes/: each one an automation with reads, writes, ``once:`` effects, id links, polls and
``foreach`` steps, which is what the durable runtime, serve, the page and ``connector test`` are
tested under. They stay here, with their tests and cassettes, as that workload; users get the
declaration. The set is the eight recipes as they shipped then: ``pull-contact-on-select`` still
copies tasks here, and ``tag-contact-on-activity`` (an action, still shipped) is here as it was.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ALL", "HERE", "recipe"]

HERE = Path(__file__).resolve().parent


def recipe(name: str) -> Path:
    """The workload recipe ``name``."""
    return HERE / f"{name}.yaml"


# the whole set, sorted by name, as the runtime's tests serve it
ALL: list[Path] = sorted(HERE.glob("*.yaml"))
