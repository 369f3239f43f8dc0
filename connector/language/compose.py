"""YAML text to plain Python values and the position of every node, within fixed bounds.

:class:`Builder` drives libyaml's event parser (or PyYAML's pure-Python one) and builds the node
tree itself, iteratively, so the limits are enforced while parsing: nesting deeper than
:data:`MAX_DEPTH` stops at once, and node counts (with aliases counted as the size of what they
repeat) are added up as the tree is built, so an alias bomb is caught without expanding anything.
:class:`Constructor` then turns the tree into values, recording positions by JSON path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from connector.errors import Location, RecipeLoadError
from connector.language.paths import child_path


def an(noun: str) -> str:
    """``noun`` with its indefinite article: "a recipe", "an event"."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


__all__ = ["MAX_DEPTH", "MAX_NODES", "Builder", "Constructor", "load_error"]

MAX_DEPTH = 64
MAX_NODES = 50_000  # values after alias expansion; a large recipe has a few hundred

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null")}


def load_error(name: str, message: str, line: int = 1, col: int = 1) -> RecipeLoadError:
    return RecipeLoadError(message, Location(name, line, col, "$"))


def _pos(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


# A node while the document is being built: [kind, value, position, size]. ``kind`` is "scalar",
# "seq", "map" or "alias"; ``value`` is the Python scalar, a list of nodes, a list of
# (key, key position, node) or the aliased node; ``size`` is the node count after expansion.
_Node = list[Any]


class Builder:
    """Turns parser events into a node tree, enforcing the limits as it goes."""

    def __init__(self, name: str, text: str, file: str = "recipe file") -> None:
        self.name = name
        self.text = text
        self.file = file  # what the messages call the file: "a recipe file holds one document"
        self.loader = _BaseLoader(text)
        self.constructor = yaml.constructor.SafeConstructor()
        self.anchors: dict[str, _Node] = {}
        self.block_starts: dict[int, tuple[int, int]] = {}  # id(node) -> first content line
        self._lines: list[str] | None = None
        self._memo: dict[tuple[str, str], Any] = {}  # (tag, text) -> value, for repeated scalars

    def fail(self, message: str, mark: Any = None) -> RecipeLoadError:
        line, col = _pos(mark)
        return load_error(self.name, message, line, col)

    def events(self) -> Iterator[Any]:
        loader = self.loader
        try:
            while loader.check_event():
                yield loader.get_event()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "invalid YAML"
            if exc.context and exc.problem:
                problem = f"{problem} ({exc.context})"
            hint = yaml_hint(exc)
            raise self.fail(f"YAML syntax error: {problem}; {hint}", mark) from None
        except yaml.reader.ReaderError as exc:
            pos = max(0, min(int(exc.position), len(self.text)))
            line = self.text.count("\n", 0, pos)
            col = pos - (self.text.rfind("\n", 0, pos) + 1)
            raise self.fail(
                f"the file holds a character YAML does not allow (#x{exc.character:04x})",
                _Mark(line + 1, col + 1),
            ) from None
        except yaml.YAMLError as exc:
            raise self.fail(f"YAML error: {exc}") from None
        finally:
            loader.dispose()

    def scalar(self, ev: Any) -> Any:
        tag = ev.tag
        if tag in (None, "!"):
            if ev.implicit[0] and not ev.style:
                tag = self.loader.resolve(yaml.ScalarNode, ev.value, (True, False))
            else:
                return ev.value
        if tag == _CORE + "timestamp":
            return ev.value
        if tag == _CORE + "merge":
            return _MERGE
        if tag not in _SCALAR_TAGS:
            raise self.fail(f"unsupported YAML tag {tag!r}", ev.start_mark)
        if tag == _CORE + "str":
            return ev.value
        memo_key = (tag, ev.value)
        if memo_key in self._memo:
            return self._memo[memo_key]
        node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, ev.style)
        try:
            value = self.constructor.yaml_constructors[tag](self.constructor, node)
            if len(self._memo) < 4096:
                self._memo[memo_key] = value
            return value
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            raise self.fail(
                f"{ev.value!r} is not a valid {tag[len(_CORE) :]}: {exc}", ev.start_mark
            ) from None

    def block_start(self, ev: Any) -> tuple[int, int] | None:
        """Line and column of a literal block scalar's first content line."""
        if ev.style != "|" or ev.end_mark is None:
            return None
        if self._lines is None:
            self._lines = self.text.split("\n")
        for i in range(ev.start_mark.line + 1, min(ev.end_mark.line + 1, len(self._lines))):
            stripped = self._lines[i].lstrip(" ")
            if stripped:
                return (i + 1, len(self._lines[i]) - len(stripped) + 1)
        return None

    def build(self) -> _Node | None:
        """The document's root node (``None`` for an empty document)."""
        stack: list[_Node] = []
        root: _Node | None = None
        total = 0
        documents = 0
        open_anchors: set[str] = set()
        pending_key: list[tuple[Any, tuple[int, int]] | None] = []

        def add(node: _Node, ev: Any) -> None:
            nonlocal root, total
            total += node[3] if node[0] == "alias" else 1
            if total > MAX_NODES:
                raise self.fail(
                    f"the document expands to more than {MAX_NODES} values"
                    + (" through aliases (an alias bomb?)" if node[0] == "alias" else ""),
                    ev.start_mark,
                )
            if not stack:
                root = node
                return
            parent = stack[-1]
            parent[3] += node[3]
            if parent[0] == "seq":
                parent[1].append(node)
                return
            if pending_key[-1] is None:
                if node[0] != "scalar":
                    raise self.fail("a mapping key must be a plain string", ev.start_mark)
                key = node[1]
                if key is not _MERGE and not isinstance(key, str):
                    raise self.fail(f"mapping key {key!r} is not a string; quote it", ev.start_mark)
                pending_key[-1] = (key, node[2])
            else:
                key, key_pos = pending_key[-1]
                pending_key[-1] = None
                parent[1].append((key, key_pos, node))

        for ev in self.events():
            if isinstance(ev, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self.fail(
                        f"{an(self.file)} holds one YAML document; found a second '---'",
                        ev.start_mark,
                    )
            elif isinstance(ev, yaml.ScalarEvent):
                node: _Node = ["scalar", self.scalar(ev), _pos(ev.start_mark), 1]
                start = self.block_start(ev)
                if start is not None:
                    self.block_starts[id(node)] = start
                if ev.anchor:
                    self.anchors[ev.anchor] = node
                add(node, ev)
            elif isinstance(ev, yaml.AliasEvent):
                target = self.anchors.get(ev.anchor or "")
                if target is None:
                    what = "refers to itself" if ev.anchor in open_anchors else "is not defined"
                    raise self.fail(f"alias *{ev.anchor} {what}", ev.start_mark)
                add(["alias", target, _pos(ev.start_mark), target[3]], ev)
            elif isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                if len(stack) >= MAX_DEPTH:
                    raise self.fail(
                        f"the document is nested more than {MAX_DEPTH} levels deep", ev.start_mark
                    )
                if ev.tag not in (None, "!", _CORE + "seq", _CORE + "map"):
                    raise self.fail(f"unsupported YAML tag {ev.tag!r}", ev.start_mark)
                kind = "seq" if isinstance(ev, yaml.SequenceStartEvent) else "map"
                coll: _Node = [kind, [], _pos(ev.start_mark), 1, ev.anchor]
                if ev.anchor:
                    open_anchors.add(ev.anchor)
                stack.append(coll)
                pending_key.append(None)
            elif isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                coll = stack.pop()
                pending_key.pop()
                anchor = coll.pop()
                if anchor:
                    open_anchors.discard(anchor)
                    self.anchors[anchor] = coll
                add(coll, ev)
        return root


class _Merge:
    def __repr__(self) -> str:
        return "<<"


_MERGE = _Merge()


class Constructor:
    """Node tree to Python values, recording the position of every path."""

    def __init__(self, builder: Builder) -> None:
        self.fail = builder.fail
        self.block_src = builder.block_starts
        self.positions: dict[str, tuple[int, int]] = {}
        self.key_positions: dict[str, tuple[int, int]] = {}
        self.block_starts: dict[str, tuple[int, int]] = {}

    def value(
        self, node: _Node, path: str, pos: tuple[int, int] | None = None, depth: int = 0
    ) -> Any:
        """Build ``node`` at ``path``; ``pos`` overrides the position (for aliased copies)."""
        if node[0] == "alias":
            if depth > MAX_DEPTH:
                raise self.fail(
                    f"aliases nest the document more than {MAX_DEPTH} levels deep", _Mark(*node[2])
                )
            return self.value(node[1], path, pos or node[2], depth)
        self.positions[path] = pos or node[2]
        kind = node[0]
        if kind == "scalar":
            if id(node) in self.block_src and pos is None:
                self.block_starts[path] = self.block_src[id(node)]
            return node[1]
        if kind == "seq":
            return [
                self.value(child, child_path(path, i), pos, depth + 1)
                for i, child in enumerate(node[1])
            ]
        result: dict[str, Any] = {}
        merged: list[tuple[str, tuple[int, int], _Node]] = []
        for key, key_pos, child in node[1]:
            if key is _MERGE:
                merged.extend(self.merge_sources(child))
                continue
            if key in result:
                first = self.key_positions[child_path(path, key)]
                raise self.fail(
                    f"duplicate key {key!r} (first written at line {first[0]})",
                    _Mark(*(pos or key_pos)),
                )
            sub = child_path(path, key)
            self.key_positions[sub] = pos or key_pos
            result[key] = self.value(child, sub, pos, depth + 1)
        for key, key_pos, child in merged:
            if key not in result:
                sub = child_path(path, key)
                self.key_positions[sub] = pos or key_pos
                result[key] = self.value(child, sub, pos, depth + 1)
        return result

    def merge_sources(self, node: _Node) -> list[tuple[str, tuple[int, int], _Node]]:
        """The entries a ``<<:`` merge key brings in (a mapping or a list of mappings)."""
        target = node[1] if node[0] == "alias" else node
        sources = [target] if target[0] == "map" else []
        if target[0] == "seq":
            sources = [c[1] if c[0] == "alias" else c for c in target[1]]
        if not sources or any(s[0] != "map" for s in sources):
            raise self.fail("'<<' must merge a mapping or a list of mappings", _Mark(*node[2]))
        entries: list[tuple[str, tuple[int, int], _Node]] = []
        for source in sources:
            entries.extend((k, kp, c) for k, kp, c in source[1] if k is not _MERGE)
        return entries


@dataclass
class _Mark:
    """A stand-in for a YAML mark, built from a 1-based position."""

    line1: int
    col1: int

    @property
    def line(self) -> int:
        return self.line1 - 1

    @property
    def column(self) -> int:
        return self.col1 - 1


def yaml_hint(exc: yaml.MarkedYAMLError) -> str:
    """What to do about a YAML syntax error, in the words of the file's lines."""
    problem = f"{exc.problem or ''} {exc.context or ''}".lower()
    at = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
    opened = exc.context_mark.line + 1 if exc.context_mark is not None else None
    line = f"line {at}" if at else "that line"
    if "'\\t'" in problem or "tab" in problem:
        return f"YAML does not allow tabs for indentation: indent {line} with spaces"
    if "flow mapping" in problem or "flow sequence" in problem:
        kind, close = ("{...} mapping", "}") if "mapping" in problem else ("[...] list", "]")
        where = f" on line {opened}" if opened else ""
        return (
            f"the {kind} opened{where} is not closed where expected: close it with '{close}',"
            " and separate its entries with ','"
        )
    if "flow node" in problem:  # a value missing inside [...] or {...}, or the end came first
        return (
            f"a [...] list or {{...}} mapping before {line} is not closed or misses an entry:"
            " close it with ']' or '}', and separate its entries with ','"
        )
    if "quoted scalar" in problem:
        where = f" on line {opened}" if opened else ""
        return f"the quoted text that starts{where} is not closed: end it with the same quote"
    if "alias" in problem or "anchor" in problem:
        return f"check the '*' or '&' on {line}: an alias must name an anchor defined above it"
    if "mapping values are not allowed" in problem:
        return (
            f"{line} has a ': ' inside a plain value: put the value in quotes, or check its"
            " indentation"
        )
    return (
        f"check the indentation of {line} against the lines above it (keys of one mapping line up;"
        " a value with ': ' or starting with '{' or '[' needs quotes)"
    )
