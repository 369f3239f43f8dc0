"""The ``csv.append-row`` action: append one row (or several) to a CSV file from a recipe.

.. code-block:: yaml

    - id: log
      action: csv.append-row
      with:
        path: exports/leads.csv
        columns: [name, email, phone]       # optional: the header of a new file
        row: {name: "{{ trigger.name }}", email: "{{ trigger.email }}"}

A new (or empty) file gets a header first: ``columns`` if given, else the row's keys in order. An
existing file keeps its header; a row key the header does not have fails the step (a typo would
otherwise lose data), and a column the row does not fill is left empty. The step's output is
``{path, rows_written, columns}``. Relative paths are relative to the directory ``connector`` runs in.
Appends hold an exclusive lock on the file (where the OS offers ``fcntl``), so runs in parallel do
not interleave rows or write the header twice.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from connector import hookimpl
from connector.apps import Action, RunContext
from connector.errors import ConnectorError

__all__ = ["PARAMS_SCHEMA", "CSVError", "append_rows", "register_actions", "run"]
__version__ = "0.1.0"

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Append rows to a CSV file.",
    "properties": {
        "path": {
            "type": "string",
            "minLength": 1,
            "description": "The CSV file; created with a header row when missing. Relative paths "
            "are relative to the directory connector runs in.",
        },
        "row": {
            "type": "object",
            "description": "One row: column name -> value.",
        },
        "rows": {
            "type": "array",
            "items": {"type": "object"},
            "description": "Several rows, each column name -> value.",
        },
        "columns": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": 1,
            "uniqueItems": True,
            "description": "The header of a new file (default: the first row's keys). For an "
            "existing file it must equal the file's header.",
        },
    },
    "required": ["path"],
    "oneOf": [{"required": ["row"]}, {"required": ["rows"]}],
    "additionalProperties": False,
}


class CSVError(ConnectorError):
    """The rows cannot be appended as asked; the message says why and to which file."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _lock(fh: IO[bytes]) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, appends are still whole rows
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)


def _header_of(fh: IO[bytes]) -> list[str] | None:
    """The first record of the file (read from its first 1 MiB), or None if it has none."""
    fh.seek(0)
    text = fh.read(1 << 20).decode("utf-8-sig", errors="replace")
    if not text.strip():
        return None
    first = next(csv.reader(io.StringIO(text)), None)
    return [c.strip() for c in first] if first else None


def _ends_with_newline(fh: IO[bytes]) -> bool:
    end = fh.seek(0, io.SEEK_END)
    if end == 0:
        return True
    fh.seek(end - 1)
    return fh.read(1) in (b"\n", b"\r")


def append_rows(
    path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None
) -> list[str]:
    """Append ``rows`` to ``path`` (a header first if the file is new); returns the header used."""
    if not path.parent.is_dir():
        raise CSVError(f"{path}: the folder {str(path.parent)!r} does not exist")
    try:
        with open(path, "a+b") as fh:
            _lock(fh)
            header = _header_of(fh)
            new_file = header is None
            if header is None:
                header = list(columns) if columns else []
                if not columns:
                    for row in rows:
                        header.extend(k for k in row if k not in header)
            elif columns is not None and list(columns) != header:
                raise CSVError(
                    f"{path} has the columns {header}, but with: columns says {list(columns)}"
                )
            for n, row in enumerate(rows):
                unknown = [k for k in row if k not in header]
                if unknown:
                    where = f"row {n + 1}" if len(rows) > 1 else "the row"
                    raise CSVError(
                        f"{path}: {where} has column(s) {unknown} that the file does not have "
                        f"(its columns are {header})"
                    )
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            if new_file:
                fh.truncate(0)  # a file of blank lines only: start it over
                writer.writerow(header)
            elif not _ends_with_newline(fh):
                out.write("\n")
            for row in rows:
                writer.writerow([_cell(row.get(col)) for col in header])
            fh.write(out.getvalue().encode("utf-8"))
    except OSError as exc:
        raise CSVError(f"{path}: {exc.strerror or exc}") from None
    return header


def run(params: Mapping[str, Any], context: RunContext) -> dict[str, Any]:
    """The action: check what templates rendered, then append (nothing is written on a dry run)."""
    path = Path(str(params.get("path") or "")).expanduser()
    if not str(params.get("path") or "").strip():
        raise CSVError("with: path is required")
    raw_rows = [params["row"]] if "row" in params else params.get("rows")
    if not isinstance(raw_rows, list) or not raw_rows:
        raise CSVError("with: give row (an object) or rows (a non-empty list of objects)")
    if not all(isinstance(r, Mapping) for r in raw_rows):
        raise CSVError("with: every row must be an object of column name -> value")
    columns = params.get("columns")
    if columns is not None and (
        not isinstance(columns, list) or not all(isinstance(c, str) and c for c in columns)
    ):
        raise CSVError("with: columns must be a list of column names")
    rows = [{str(k): v for k, v in r.items()} for r in raw_rows]
    if context.dry_run:
        return {
            "path": str(path.absolute()),
            "rows_written": 0,
            "columns": columns,
            "dry_run": True,
        }
    header = append_rows(path, rows, columns)
    return {"path": str(path.absolute()), "rows_written": len(rows), "columns": header}


@hookimpl
def register_actions(register: Callable[[Action], None]) -> None:
    """Register ``csv.append-row``."""
    register(
        Action(
            name="csv.append-row",
            run=run,
            description="Append a row (or rows) to a CSV file, with a header when the file is new.",
            params_schema=PARAMS_SCHEMA,
            writes=True,
        )
    )
