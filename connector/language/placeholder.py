"""The values a dry run cannot know (an earlier step's output), and what templates may do with them.

A :class:`Placeholder` renders as its own path (``<steps.contact.output.contact.email>``). Templates
compute with it as with the value it stands for: fields, items, ``.get(k)``, ``.items()``, string
methods, comparisons, arithmetic and filters give placeholders again, never an error. A condition
cannot be decided on one: :func:`watching` tells which placeholders a render looked at, so a dry
run can show a step whose ``if:`` depends on one as "would run (condition unknown)".
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "DERIVED",
    "Placeholder",
    "Unset",
    "derived",
    "is_placeholder",
    "touches",
    "unset_note",
    "watching",
]

MAX_PATH = 300  # characters of a placeholder's text: repeated operations do not grow it further

# attributes that Python and Jinja probe on any object (callability, the sandbox's checks): a
# placeholder does not have them, rather than answer with another placeholder
_PROBED = frozenset({"jinja_pass_arg", "unsafe_callable", "alters_data", "jinja_async_variant"})
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_seen: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "connector_placeholders_seen", default=None
)


@contextmanager
def watching() -> Iterator[list[str]]:
    """Collect the paths of the placeholders that code inside the block looks at."""
    seen: list[str] = []
    token = _seen.set(seen)
    try:
        yield seen
    finally:
        _seen.reset(token)


def _short(value: Any) -> str:
    text = str(value) if isinstance(value, Placeholder) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _key(key: Any) -> str:
    """How a key is shown after a path: ``.email`` or ``['first name']``."""
    if isinstance(key, str) and _NAME_RE.match(key):
        return f".{key}"
    return f"[{_short(key)}]"


class Placeholder:
    """A value not known in a dry run (an earlier step's output): it renders as its own path."""

    __slots__ = ("_attr", "_pairs", "_parent", "_path", "_root")

    def __init__(
        self,
        path: str,
        *,
        parent: Placeholder | None = None,
        attr: str | None = None,
        pairs: bool = False,
        root: str | None = None,
    ) -> None:
        self._path = path if len(path) <= MAX_PATH else path[: MAX_PATH - 3] + "..."
        # the output field it comes from (``<... | lower>`` comes from ``...``)
        self._root = self._path if root is None else root
        self._parent = parent  # the placeholder this is an attribute of (a method: .get, .items)
        self._attr = attr
        self._pairs = pairs  # iterates as (key, value) pairs: .items(), | dictsort

    def _touch(self) -> None:
        seen = _seen.get()
        if seen is not None and len(seen) < 16:
            seen.append(self._root)

    def _derive(self, text: str) -> Placeholder:
        self._touch()
        return Placeholder(text, root=self._root)

    # fields and items --------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Placeholder:
        if name.startswith("_") or name in _PROBED:
            raise AttributeError(name)
        self._touch()
        return Placeholder(f"{self._path}.{name}", parent=self, attr=name)

    def __getitem__(self, key: Any) -> Placeholder:
        if isinstance(key, Placeholder):
            key._touch()
        self._touch()
        return Placeholder(self._path + _key(key))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A method of the unknown value: ``.get(k[, default])``, ``.items()``, ``.keys()``,
        ``.values()``, ``.lower()``, ... give placeholders."""
        self._touch()
        parent, attr = self._parent, self._attr
        if parent is not None:
            base = parent._path
            if attr == "get" and args and len(args) <= 2 and not kwargs:
                return Placeholder(base + _key(args[0]))
            if attr == "items" and not args and not kwargs:
                return Placeholder(f"{base}.items()", pairs=True, root=parent._root)
        shown = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
        root = self._root if parent is None else parent._root
        return Placeholder(f"{self._path}({', '.join(shown)})", root=root)

    def __iter__(self) -> Iterator[Any]:
        self._touch()
        if self._pairs:
            yield (Placeholder(f"{self._path}[0][0]"), Placeholder(f"{self._path}[0][1]"))
        else:
            yield Placeholder(f"{self._path}[0]")

    def __len__(self) -> int:
        self._touch()
        return 1

    def __contains__(self, item: Any) -> bool:
        self._touch()
        return True

    def __bool__(self) -> bool:
        self._touch()
        return True

    def __str__(self) -> str:
        self._touch()
        return "<" + self._path + ">"

    __repr__ = __str__

    def __hash__(self) -> int:
        return hash(self._path)

    # comparisons and arithmetic: unknown too ----------------------------------------------------

    def _op(self, symbol: str, other: Any, reflected: bool = False) -> Placeholder:
        if isinstance(other, Placeholder):
            other._touch()
        left, right = (_short(other), self._path) if reflected else (self._path, _short(other))
        return self._derive(f"{left} {symbol} {right}")

    def __eq__(self, other: object) -> Any:
        return self._op("==", other)

    def __ne__(self, other: object) -> Any:
        return self._op("!=", other)

    def __lt__(self, other: Any) -> Placeholder:
        return self._op("<", other)

    def __le__(self, other: Any) -> Placeholder:
        return self._op("<=", other)

    def __gt__(self, other: Any) -> Placeholder:
        return self._op(">", other)

    def __ge__(self, other: Any) -> Placeholder:
        return self._op(">=", other)

    def __add__(self, other: Any) -> Placeholder:
        return self._op("+", other)

    def __radd__(self, other: Any) -> Placeholder:
        return self._op("+", other, reflected=True)

    def __sub__(self, other: Any) -> Placeholder:
        return self._op("-", other)

    def __rsub__(self, other: Any) -> Placeholder:
        return self._op("-", other, reflected=True)

    def __mul__(self, other: Any) -> Placeholder:
        return self._op("*", other)

    def __rmul__(self, other: Any) -> Placeholder:
        return self._op("*", other, reflected=True)

    def __truediv__(self, other: Any) -> Placeholder:
        return self._op("/", other)

    def __rtruediv__(self, other: Any) -> Placeholder:
        return self._op("/", other, reflected=True)

    def __floordiv__(self, other: Any) -> Placeholder:
        return self._op("//", other)

    def __rfloordiv__(self, other: Any) -> Placeholder:
        return self._op("//", other, reflected=True)

    def __mod__(self, other: Any) -> Placeholder:
        return self._op("%", other)

    def __rmod__(self, other: Any) -> Placeholder:
        return self._op("%", other, reflected=True)

    def __pow__(self, other: Any) -> Placeholder:
        return self._op("**", other)

    def __rpow__(self, other: Any) -> Placeholder:
        return self._op("**", other, reflected=True)

    def __neg__(self) -> Placeholder:
        return self._derive(f"-{self._path}")

    def __pos__(self) -> Placeholder:
        return self._derive(f"+{self._path}")


class Unset(Placeholder):
    """An environment variable a dry run found not set (``env.GHL_LOCATION_ID``): shown as
    ``<env.GHL_LOCATION_ID: not set>`` where it is sent, the way the location a step would add
    is, while ``default`` and ``is defined`` treat it as missing, as a real run does (so
    ``{{ env.CONNECTOR_VAR_BOARD | default('7001') }}`` shows ``7001``)."""

    __slots__ = ("variable",)

    def __init__(self, name: str) -> None:
        super().__init__(f"env.{name}: not set")
        self.variable = name


def _unset_in(value: Any, depth: int = 0) -> list[str]:
    """The variables of the :class:`Unset` values inside ``value`` (dicts and lists), in order."""
    if isinstance(value, Unset):
        return [value.variable]
    if depth > 32 or not isinstance(value, dict | list | tuple):
        return []
    found: list[str] = []
    for item in value.values() if isinstance(value, dict) else value:
        found.extend(n for n in _unset_in(item, depth + 1) if n not in found)
    return found


def unset_note(params: Any) -> str | None:
    """A dry-run step's note when ``params`` send variables that are not set (:class:`Unset`):
    "GHL_LOCATION_ID is not set: a real run needs it (or a default in the template)"."""
    names = _unset_in(params)
    if not names:
        return None
    one = len(names) == 1
    return (
        f"{', '.join(names)} {'is' if one else 'are'} not set: a real run needs "
        f"{'it' if one else 'them'} (or a default in the template)"
    )


def is_placeholder(value: Any) -> bool:
    return isinstance(value, Placeholder)


def touches(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Placeholder | None:
    """The first placeholder among a call's arguments (marked as looked at), or None."""
    found = None
    for value in (*args, *kwargs.values()):
        if isinstance(value, Placeholder):
            value._touch()
            found = found or value
    return found


# filters that, given a placeholder, would compute with its text or give a made-up number: their
# result is a placeholder that shows them. Other filters work on it as on a one-item list (map,
# select, list, length) or pass it through (default); one that fails on it gives a placeholder.
DERIVED = frozenset(
    {
        "abs", "capitalize", "center", "filesizeformat", "float", "format", "indent", "int",
        "lower", "replace", "round", "striptags", "title", "tojson", "trim", "truncate", "upper",
        "urlencode", "urlize", "wordcount", "wordwrap",
    }
)  # fmt: skip
# filters whose result on a placeholder iterates as (key, value) pairs
PAIRS = frozenset({"dictsort", "items"})


def derived(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Placeholder:
    """What filter ``name`` gives for arguments that hold a placeholder: a placeholder that shows
    the filter (``<steps.contact.output.contact.email | lower>``)."""
    shown = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    call = f"{name}({', '.join(shown)})" if shown else name
    source = value if isinstance(value, Placeholder) else touches(args, kwargs)
    base = value._path if isinstance(value, Placeholder) else _short(value)
    root = source._root if source is not None else None
    return Placeholder(f"{base} | {call}", pairs=name in PAIRS, root=root)
