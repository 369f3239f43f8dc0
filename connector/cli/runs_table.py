"""The table ``connector runs list`` prints, fitted to the terminal.

Ids and start times are never wrapped or cut: they are what a user copies into ``runs show``.
The recipe and the error (the failing step and the first line of its error) give way first, cut
with an ellipsis; below 110 columns the trigger and the duration are left out, the time is
shown without its year and one space parts the columns. A run made against the embedded sandbox is marked ``*`` after its status,
with a line under the table saying so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from connector.records import RunRecord

__all__ = ["WIDE", "print_runs", "short_error", "started_text"]

#: from this many columns on, the trigger and the duration are shown too
WIDE = 110
HEADERS = ("id", "started (UTC)", "status", "recipe", "trigger", "ms", "error")
_COLOURS = {"succeeded": "green", "failed": "red", "running": "yellow", "waiting": "cyan"}


def started_text(iso: str, wide: bool) -> str:
    """``2026-12-02T14:23:58.190Z`` as ``2026-12-02 14:23:58`` (``12-02 14:23:58`` if not wide)."""
    text = iso.replace("T", " ").removesuffix("Z").split(".", 1)[0]
    return text if wide or len(text) < 19 else text[5:]


def short_error(record: RunRecord, step: str | None) -> str:
    """The failing step and the first line of the run's error; empty for a run that has none."""
    first = (record.error or "").strip().splitlines()
    message = first[0] if first else ""
    if step and message:
        return f"{step}: {message}"
    return step or message


def _share(room: int, wants: dict[int, int]) -> dict[int, int]:
    """Widths for the columns that may be cut (``wants``: their natural widths): those if all fit
    in ``room``, else shares of it (at least 5 each), the error's (column 6) twice the others'."""
    if sum(wants.values()) <= room:
        return dict(wants)
    weights = {i: 2 if i == 6 else 1 for i in wants}
    left = max(room, 5 * len(wants))
    out = {
        i: min(want, max(5, left * weights[i] // sum(weights.values())))
        for i, want in wants.items()
    }
    spare = left - sum(out.values())
    for i, want in wants.items():  # what one column does not need, another gets
        more = min(spare, want - out[i])
        out[i] += more
        spare -= more
    return out


def print_runs(
    records: Sequence[RunRecord],
    failed: Mapping[str, str],
    console: Console | None = None,
) -> None:
    """The runs as a table on ``console`` (default: standard output, its width; as wide as the
    rows when it is not a terminal)."""
    if console is None:
        from connector.cli.common import stdout_console

        console = stdout_console()
    wide = console.width >= WIDE
    rows = []
    for r in records:
        status = Text(r.status, style=_COLOURS.get(r.status, "white"))
        if r.sandbox:
            status.append("*")
        ms = f"{r.duration_ms:.0f}" if r.duration_ms is not None else ""
        trigger = f"{r.trigger_app} {r.trigger_event}"
        error = Text(short_error(r, failed.get(r.id)), style="red")
        rows.append((r.id, started_text(r.started_at, wide), status, r.recipe, trigger, ms, error))
    gap = 2 if wide else 1
    table = Table(box=None, pad_edge=False, padding=(0, gap, 0, 0))
    fit = [0, 1, 2, 5] if wide else [0, 1, 2]  # never cut
    flex = [3, 4, 6] if wide else [3, 6]  # recipe, trigger, error: cut with an ellipsis
    shown = sorted(fit + flex)
    natural = {i: max([len(HEADERS[i]), *(len(str(row[i])) for row in rows)]) for i in shown}
    room = console.width - sum(natural[i] for i in fit) - gap * (len(shown) - 1)
    widths = natural | _share(room, {i: natural[i] for i in flex})
    for i in shown:
        table.add_column(
            HEADERS[i],
            no_wrap=True,
            overflow="ellipsis",
            width=widths[i],
            justify="right" if i == 5 else "left",
        )
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    console.print(table)
    if any(r.sandbox for r in records):
        console.print("* against the embedded sandbox (--sandbox)", highlight=False)
