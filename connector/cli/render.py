"""Human-readable printing of run records (``run``, ``runs show``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click
import yaml

from connector.records import RunRecord, StepRecord


def _echo(text: str = "", **options: Any) -> None:
    """``click.echo``, with what a terminal cannot show escaped: a lone surrogate (JSON's
    ``"\\ud800"`` in an API answer or an event) would stop the printing with an encoding error."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    click.echo(text, **options)


MARKS = {
    "succeeded": ("✓", "green"),
    "failed": ("✗", "red"),
    "skipped": ("-", "yellow"),
    "planned": ("·", "cyan"),
}


def _short_url(url: str | None) -> str:
    if not url:
        return ""
    for marker in ("/ghl/", "/connecteam/"):
        if marker in url:
            return "/" + url.split(marker, 1)[1]
    rest = url.split("://", 1)[-1]
    return "/" + rest.split("/", 1)[1] if "/" in rest else url


def _step_line(step: StepRecord, widths: tuple[int, int], indent: str = "  ") -> str:
    mark, colour = MARKS.get(step.status, ("?", "white"))
    label = f"[{step.index}]" if step.index is not None else step.id
    id_width, action_width = widths
    parts = [
        f"{indent}{click.style(mark, fg=colour)} {label:<{id_width}}  {step.action:<{action_width}}"
    ]
    if step.method:
        parts.append(f"  {step.method:<6} {_short_url(step.url)}")
    if step.status_code is not None:
        parts.append(f"  {step.status_code}")
    if step.duration_ms is not None and step.status != "skipped":
        parts.append(f"  {step.duration_ms:.0f} ms")
    line = "".join(parts).rstrip()
    if step.error:
        colour = "red" if step.status == "failed" else "yellow"
        line += "\n" + indent + "    " + click.style(step.error, fg=colour)
    elif step.note and step.status == "skipped":  # why: the if: that was false
        line += "\n" + indent + "    " + click.style(step.note, fg="yellow")
    elif step.note and step.status != "planned":  # pages walked, a write done before, ...
        line += "\n" + indent + "    " + click.style(step.note, dim=True)
    return line


def _widths(steps: list[StepRecord]) -> tuple[int, int]:
    return (
        max((len(s.id) for s in steps), default=4),
        max((len(s.action) for s in steps), default=6),
    )


class _Dumper(yaml.SafeDumper):
    """YAML of a run's values: what is not plain data (the Markup of ``| tojson``, a generator a
    template returned) is shown as its text, as ``--json`` shows it."""


_Dumper.add_multi_representer(str, lambda d, v: d.represent_str(str(v)))
_Dumper.add_multi_representer(object, lambda d, v: d.represent_str(str(v)))


def _yaml(value: Any) -> str:
    return yaml.dump(
        value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    ).rstrip()


SHOWN_BODY_CHARS = 4000  # of one body in `runs show`; the whole (bounded) body is in --json


def _body(label: str, value: Any, indent: str) -> None:
    """A request's or response's body under its step, as JSON, long ones cut with the cut said."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
    if len(text) > SHOWN_BODY_CHARS:
        text = text[:SHOWN_BODY_CHARS] + f"\n… [{len(text)} characters in all: runs show --json]"
    pad = indent + "    "
    _echo(pad + click.style(label, dim=True) + " " + text.replace("\n", "\n" + pad + "  "))


def _bodies(step: StepRecord, indent: str) -> None:
    if step.status in ("skipped", "planned"):
        return
    if step.request_body is not None:
        _body("request:", step.request_body, indent)
    answer = step.output if step.output is not None else step.response_body
    if answer is not None and step.items is None:
        _body("response:", answer, indent)


def print_run(
    record: RunRecord,
    *,
    bodies: bool = False,
    fixed_by: str | None = None,
    fixes: Sequence[str] = (),
) -> None:
    """A run, step by step; ``bodies``: each step's request and response bodies under it;
    ``fixed_by``: the later run that fixed this failed one; ``fixes``: the failed runs this one
    fixed."""
    _echo(f"{record.recipe}  ({record.trigger_app} {record.trigger_event})  run {record.id}")
    if record.parent:
        _echo(f"  made from run {record.parent} (connector runs show {record.parent})")
    if fixed_by:
        _echo(f"  fixed by run {fixed_by} (connector runs show {fixed_by})")
    for fixed in fixes:
        _echo(f"  fixes run {fixed}")
    widths = _widths(record.steps)
    for step in record.steps:
        _echo(_step_line(step, widths))
        if bodies:
            _bodies(step, "  ")
        for item in step.items or ():
            _echo(_step_line(item, (widths[0] - 4, widths[1]), indent="      "))
            if bodies:
                _bodies(item, "      ")
    if record.output is not None:
        _echo("output:")
        _echo("  " + _yaml(record.output).replace("\n", "\n  "))
    mark, colour = MARKS.get(record.status, ("?", "white"))
    took = f" in {record.duration_ms:.0f} ms" if record.duration_ms is not None else ""
    _echo(click.style(f"{mark} {record.status}{took}", fg=colour, bold=True), nl=False)
    if record.error and record.status == "failed":
        _echo(click.style(f": {record.error}", fg="red"), nl=False)
    _echo("" if bodies else f"   (details: connector runs show {record.id})")


def print_dry_run(record: RunRecord) -> None:
    _echo(f"{record.recipe}: dry run, nothing sent")
    for step in record.steps:
        entries = step.items if step.items is not None else [step]
        for entry in entries:
            label = step.id if entry.index is None else f"{step.id}[{entry.index}]"
            _echo("")
            head = f"# {label}: {step.action}"
            if entry.status in ("skipped", "failed"):
                why = entry.error or (entry.note if entry.status == "skipped" else None)
                head += f" ({entry.status}{': ' + why if why else ''})"
            elif entry.note:  # what it could not know: would run (condition unknown: ...)
                head += f": {entry.note}"
            _echo(click.style(head, bold=True))
            if entry.method:
                _echo(f"{entry.method} {entry.url}")
                for key, value in (entry.request_headers or {}).items():
                    _echo(f"{key}: {value}")
            if entry.request_body is not None:
                label = "" if entry.method else "with: "
                _echo(label + json.dumps(entry.request_body, indent=2, default=str))
    if record.error:
        _echo(click.style(f"\n{record.error}", fg="red"))
