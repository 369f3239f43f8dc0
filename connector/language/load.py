"""Loading a recipe file: YAML to plain Python values, keeping where every value was written.

The loader drives libyaml's event parser (or PyYAML's pure-Python one) and builds the document
itself, iteratively, so it can refuse what a recipe never needs before it costs anything:

* files over :data:`MAX_BYTES`, binary files (NUL bytes, invalid UTF-8), empty files;
* nesting deeper than :data:`MAX_DEPTH` (checked while parsing, so a megabyte of ``[`` stops at
  once);
* aliases that expand to more than :data:`MAX_NODES` nodes (the "billion laughs"); node counts
  are added up as the document is built, so nothing is expanded to find out;
* duplicate mapping keys, keys that are not strings, tags other than YAML's core ones, more than
  one document, a top level that is not a mapping.

Every refusal is a :class:`~connector.errors.RecipeLoadError` with the file, line and column.
Values are plain: ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` and ``None`` (dates
stay the strings the user wrote). ``positions`` maps the JSON path of every node
(``$.steps[2].with.email``) to its 1-based line and column; ``key_positions`` maps the path of
every mapping value to where its key was written, for messages about the key itself.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.errors import Location, RecipeLoadError
from connector.language.compose import MAX_DEPTH, MAX_NODES, Builder, Constructor, an, load_error
from connector.language.paths import child_path, parent_path

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "RECIPE",
    "Document",
    "LoadedRecipe",
    "child_path",
    "load_recipe",
    "load_recipe_text",
    "parent_path",
]

MAX_BYTES = 1024 * 1024  # a recipe is a few kilobytes; a megabyte is already absurd
_error = load_error


@dataclass(frozen=True)
class Document:
    """What a file read by this loader holds, as its messages name it: recipes, and the files
    that take the recipe's limits (test files, cassettes, events)."""

    noun: str  # "recipe": "a recipe may be at most ..."
    file: str  # "recipe file": "this is a folder, not a recipe file"
    keys: str = ""  # "(name:, trigger:, steps:)": "a recipe is a mapping (name:, ...)"
    needs: str = ""  # "name, trigger and steps": "a recipe needs at least name, ..."

    def needing(self, problem: str) -> str:
        return f"{problem}; {an(self.noun)} needs at least {self.needs}" if self.needs else problem


RECIPE = Document("recipe", "recipe file", "(name:, trigger:, steps:)", "name, trigger and steps")


@dataclass(frozen=True)
class LoadedRecipe:
    """A recipe file as the user wrote it, with the position of every node."""

    path: str
    data: Any
    positions: Mapping[str, tuple[int, int]]
    key_positions: Mapping[str, tuple[int, int]]
    sha256: str
    #: for scalars written as literal blocks (``|``): path -> (line, column) of the first content
    #: line, so a problem on line N of a multi-line template points at the right file line.
    block_starts: Mapping[str, tuple[int, int]] = field(default_factory=dict, compare=False)

    def location(self, path: str, *, key: bool = False) -> Location:
        """Where ``path`` was written (its key's position with ``key=True``).

        A path that does not exist in the file (a missing property) gets the position of its
        nearest ancestor that does, so every problem has a line to jump to.
        """
        if key and path in self.key_positions:
            line, col = self.key_positions[path]
            return Location(self.path, line, col, path)
        probe: str | None = path
        while probe is not None:
            if probe in self.positions:
                line, col = self.positions[probe]
                return Location(self.path, line, col, path)
            probe = parent_path(probe)
        return Location(self.path, 1, 1, path)


def _binary(noun: str) -> str:
    return f"this is a binary file (it contains NUL bytes), not a YAML {noun}"


def _decode(raw: bytes, name: str, noun: str) -> str:
    if b"\x00" in raw:
        line = raw.count(b"\n", 0, raw.index(b"\x00")) + 1
        raise _error(name, _binary(noun), line)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _error(
            name, f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x})", line, col
        ) from None


def load_recipe_text(
    text: str | bytes, name: str = "<string>", what: Document = RECIPE
) -> LoadedRecipe:
    """Load a recipe (or ``what`` else takes its limits) from its text (``str``) or its file's
    bytes; ``name`` is used in messages."""
    if isinstance(text, str):
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            line = text.count("\n", 0, exc.start) + 1
            raise _error(
                name, "the text holds an invalid character (a lone surrogate)", line
            ) from None
    else:
        raw = bytes(text)
    digest = hashlib.sha256(raw).hexdigest()
    if len(raw) > MAX_BYTES:
        raise _error(name, _too_big(len(raw), what.noun))
    decoded = (
        _decode(raw, name, what.noun) if isinstance(text, bytes) else text.removeprefix("\ufeff")
    )
    if "\x00" in decoded:
        raise _error(name, _binary(what.noun))
    if not decoded.strip():
        raise _error(name, what.needing("the file is empty"))
    builder = Builder(name, decoded, what.file)
    try:
        root = builder.build()
    except RecursionError:
        raise _error(name, f"the document is nested more than {MAX_DEPTH} levels deep") from None
    if root is None or (root[0] == "scalar" and root[1] is None):
        raise _error(name, what.needing(f"the file holds no {what.noun}"))
    kind = root[1][0] if root[0] == "alias" else root[0]
    if kind != "map":
        held = {"seq": "a list", "scalar": "a single value"}.get(kind, kind)
        raise _error(
            name,
            f"{an(what.noun)} is a mapping {what.keys}".rstrip() + f", but this file holds {held}",
            *root[2],
        )
    cons = Constructor(builder)
    data = cons.value(root, "$")
    return LoadedRecipe(
        path=name,
        data=data,
        positions=cons.positions,
        key_positions=cons.key_positions,
        sha256=digest,
        block_starts=cons.block_starts,
    )


def _too_big(size: int, noun: str) -> str:
    return f"the file is {size} bytes; {an(noun)} may be at most {MAX_BYTES}"


def load_recipe(path: str | os.PathLike[str], what: Document = RECIPE) -> LoadedRecipe:
    """Load the recipe file (or ``what`` else) at ``path``, refusing oversized files before
    reading them."""
    name = os.fspath(path)
    try:
        size = os.stat(name).st_size
        if size > MAX_BYTES:
            raise _error(name, _too_big(size, what.noun))
        with open(name, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except RecipeLoadError:
        raise
    except IsADirectoryError:
        raise _error(name, f"this is a folder, not {an(what.file)}") from None
    except OSError as exc:
        raise _error(name, f"cannot read the file: {exc.strerror or exc}") from None
    return load_recipe_text(raw, name, what)
