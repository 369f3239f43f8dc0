"""The standard filters recipes can use beyond Jinja's own.

Every filter is pure (no I/O, no clock, no environment) and bounded: text inputs are cut to a
sensible length before any work, so no filter builds a huge string. ``None`` passes through as
``None`` (or an empty name) so optional fields stay optional; input that cannot mean what the filter
expects either becomes ``None`` (emails, phone numbers: "no usable value", which a recipe tests with
``if:``) or fails the step with a :class:`~connector.errors.TemplateError` (dates: a wrong due date
must not be sent silently).

Names      ``split_name`` -> ``{first, last}``, ``first_name``, ``last_name``, ``full_name``
Contacts   ``phone`` (digits, optional ``+`` and country code), ``email``
Dates      ``ghl_datetime`` (GoHighLevel: ``2020-10-25T11:00:00Z``), ``iso8601``, ``unix_seconds``
           (Connecteam), ``unix_ms``, ``ymd``
Generic    ``default_if_none``, ``compact``, ``plain_text``, ``index_by``
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from connector.errors import TemplateError
from connector.hookspecs import hookimpl

__all__ = [
    "FILTERS",
    "compact",
    "default_if_none",
    "email",
    "first_name",
    "full_name",
    "ghl_datetime",
    "index_by",
    "iso8601",
    "last_name",
    "phone",
    "plain_text",
    "split_name",
    "unix_ms",
    "unix_seconds",
    "ymd",
]

MAX_NAME = 1_000  # characters of a name considered
MAX_PHONE = 100
MAX_EMAIL = 254  # RFC 5321's limit on a forward path
MAX_TEXT = 100_000  # characters plain_text keeps

# Words that begin a family name: "Mary Ann van der Berg" -> "Mary Ann" / "van der Berg".
# fmt: off
PARTICLES = frozenset({
    "van", "von", "der", "den", "de", "del", "della", "dela", "di", "da", "das", "dos", "do", "du",
    "la", "le", "ten", "ter", "op", "bin", "ibn", "al", "el", "st", "st.",
})
SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "phd", "phd.", "md", "md."})
# fmt: on


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    return (value if isinstance(value, str) else str(value))[:limit]


# --- names ---------------------------------------------------------------------------------------


def split_name(value: Any) -> dict[str, str]:
    """Split a full name into ``{first, last}``.

    The last word is the family name, together with the particles right before it
    (``van der Berg``, ``de la Cruz``) and a generational suffix after it (``King Jr.``); every
    word before is the first name (``Mary Ann``). One word is a first name with an empty last
    name; nothing is two empty strings. Runs of spaces, tabs and newlines count as one space.
    """
    words = _text(value, MAX_NAME).split()
    if not words:
        return {"first": "", "last": ""}
    end = len(words)
    while end > 2 and words[end - 1].lower().rstrip(",") in SUFFIXES:
        end -= 1
    if end == 1:
        return {"first": words[0], "last": " ".join(words[1:])}
    start = end - 1
    while start > 1 and words[start - 1].lower() in PARTICLES:
        start -= 1
    return {"first": " ".join(words[:start]), "last": " ".join(words[start:])}


def first_name(value: Any) -> str:
    """The first name of a full name (see ``split_name``)."""
    return split_name(value)["first"]


def last_name(value: Any) -> str:
    """The last name of a full name (see ``split_name``)."""
    return split_name(value)["last"]


def full_name(first: Any, last: Any = None) -> str:
    """``{{ c.firstName | full_name(c.lastName) }}``: the parts joined by one space, None skipped."""
    parts = (_text(first, MAX_NAME), _text(last, MAX_NAME))
    return " ".join(" ".join(parts).split())


# --- phone and email -----------------------------------------------------------------------------


class _lazy_re:
    """A regular expression compiled on first use: these filters are loaded by every command,
    and compiling their Unicode classes up front would slow start-up."""

    __slots__ = ("_compiled", "_pattern")

    def __init__(self, pattern: str) -> None:
        self._pattern = pattern
        self._compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> Any:
        if self._compiled is None:
            self._compiled = re.compile(self._pattern)
        return getattr(self._compiled, name)


_EXTENSION = _lazy_re(r"(?i)\s*(?:ext\.?|extension|x|#)\s*\d+\s*$")


def phone(value: Any, country_code: Any = None) -> str | None:
    """A phone number as digits with a leading ``+`` when it has a country code.

    ``"(415) 555-2671"`` -> ``"4155552671"``; with ``country_code="1"`` -> ``"+14155552671"``;
    ``"+44 20 7946 0958"`` -> ``"+442079460958"``; ``"0044 ..."`` is read as ``"+44 ..."``; with a
    country code, a national trunk ``0`` is dropped (``"020 7946 0958" | phone(44)`` ->
    ``"+442079460958"``). Spaces, dashes, dots, brackets, letters and a trailing extension are
    dropped. No digits, or more than 15 (E.164's maximum), gives ``None``. This is a shape, not a
    validation: install the ``connector-phone`` plugin (``e164``) to check numbers for real.
    """
    text = _EXTENSION.sub("", _text(value, MAX_PHONE)).strip()
    digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
    international = text.startswith("+")
    if not international and digits.startswith("00"):
        digits, international = digits[2:], True
    if not digits or len(digits) > 15:
        return None
    if international:
        return "+" + digits
    if country_code is None or str(country_code).strip() in ("", "+"):
        return digits
    cc = "".join(ch for ch in str(country_code) if ch.isascii() and ch.isdigit())
    if not cc or len(cc) > 3:
        raise TemplateError(f"phone: country_code must be 1 to 3 digits, not {country_code!r}")
    if cc == "1" and len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]  # North American numbers are often written with their leading 1
    national = digits.lstrip("0") or digits
    if len(cc) + len(national) > 15:
        return None
    return "+" + cc + national


_ANGLE = _lazy_re(r"<([^<>]*)>")
_LOCAL_OK = _lazy_re(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-\u0080-\uffff]+$")
_DOMAIN_OK = _lazy_re(
    r"^(?:[A-Za-z0-9\u0080-\uffff](?:[A-Za-z0-9\-\u0080-\uffff]*[A-Za-z0-9\u0080-\uffff])?\.)+[A-Za-z\u0080-\uffff]{2,}$"
)


def email(value: Any) -> str | None:
    """An email address, trimmed, with its domain in lower case; ``None`` if it is not one.

    ``" Ada@Example.COM "`` -> ``"Ada@example.com"`` (the local part keeps its case: some servers
    care). ``"Ada <ada@example.com>"`` and ``"mailto:ada@..."`` give
    the address. Anything without exactly one ``@``, with spaces, or without a dotted domain gives
    ``None``, so a recipe can skip a missing or broken email with ``if:``.
    """
    text = _text(value, MAX_EMAIL * 2).strip()
    angle = _ANGLE.search(text)
    if angle:
        text = angle.group(1).strip()
    if text.lower().startswith("mailto:"):
        text = text[7:].split("?", 1)[0]
    if not text or len(text) > MAX_EMAIL or text.count("@") != 1:
        return None
    local, domain = text.split("@")
    domain = domain.rstrip(".").lower()
    if not local or len(local) > 64 or ".." in local or local[0] == "." or local[-1] == ".":
        return None
    if not _LOCAL_OK.match(local) or not _DOMAIN_OK.match(domain):
        return None
    return f"{local}@{domain}"


# --- dates ---------------------------------------------------------------------------------------

_MS_THRESHOLD = 100_000_000_000  # a bigger epoch number is in milliseconds (after 1973 in ms)


def _to_datetime(value: Any, filter_name: str) -> datetime | None:
    """Read a date: datetime, date, epoch seconds or milliseconds, or an ISO 8601 string."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        result = datetime.combine(value, time(0), tzinfo=UTC)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) >= _MS_THRESHOLD else value
        try:
            result = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise TemplateError(f"{filter_name}: {value!r} is out of range") from None
    elif isinstance(value, str):
        text = value.strip()[:64]
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return _to_datetime(float(text) if "." in text else int(text), filter_name)
        try:
            result = datetime.fromisoformat(text)
        except ValueError:
            raise TemplateError(
                f"{filter_name}: {text!r} is not a date (use ISO 8601, such as"
                " 2020-10-25T11:00:00Z, or Unix seconds)"
            ) from None
    else:
        raise TemplateError(f"{filter_name}: expected a date, got {type(value).__name__}")
    return result if result.tzinfo else result.replace(tzinfo=UTC)  # naive means UTC


def iso8601(value: Any) -> str | None:
    """ISO 8601 with seconds, keeping the input's UTC offset (``Z`` for UTC and naive input)."""
    moment = _to_datetime(value, "iso8601")
    if moment is None:
        return None
    text = moment.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def ghl_datetime(value: Any) -> str | None:
    """As GoHighLevel wants dates (``dueDate``): UTC, ISO 8601, ``2020-10-25T11:00:00Z``."""
    moment = _to_datetime(value, "ghl_datetime")
    if moment is None:
        return None
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise TemplateError(f"ghl_datetime: {value!r} is out of range") from None
    return utc.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def unix_seconds(value: Any) -> int | None:
    """As Connecteam wants dates (``dueDate``, ``startTime``): whole Unix seconds."""
    moment = _to_datetime(value, "unix_seconds")
    return None if moment is None else int(moment.timestamp() // 1)


def unix_ms(value: Any) -> int | None:
    """Unix milliseconds (some GoHighLevel fields)."""
    moment = _to_datetime(value, "unix_ms")
    return None if moment is None else int(moment.timestamp() * 1000 // 1)


def ymd(value: Any) -> str | None:
    """The calendar date, ``2020-10-25``, in the input's own time zone (UTC for epochs)."""
    moment = _to_datetime(value, "ymd")
    return None if moment is None else moment.date().isoformat()


# --- generic -------------------------------------------------------------------------------------


def default_if_none(value: Any, default: Any = "") -> Any:
    """``default`` when the value is ``None``; unlike Jinja's ``default``, ``""``/``0`` are kept."""
    return default if value is None else value


def compact(value: Any) -> Any:
    """An object without its ``None`` members, or a list without its ``None`` items.

    ``{"email": None, "phone": "+1..."}`` -> ``{"phone": "+1..."}``: build a body that leaves out
    what is unknown instead of sending ``null`` (which would erase the field).
    """
    if isinstance(value, Mapping):
        return {k: v for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [v for v in value if v is not None]
    return value


_TAG = _lazy_re(r"<[^<>]{0,2000}>")
_BLOCK = _lazy_re(r"(?i)<\s*(?:br|/p|/div|/li|/h\d)\b[^<>]{0,2000}>")


def plain_text(value: Any, limit: int = MAX_TEXT) -> str:
    """Text without HTML tags and entities, lines kept, cut to ``limit`` characters.

    GoHighLevel note bodies may be HTML; Connecteam user notes are plain text (1,000 at most, so
    ``plain_text(1000)``).
    """
    if limit < 0:
        raise TemplateError("plain_text: limit must not be negative")
    text = _BLOCK.sub("\n", _text(value, MAX_TEXT * 2))
    text = html.unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    out = "\n".join(line for line in lines if line).strip()
    return out[:limit]


def index_by(value: Any, key: str = "id") -> dict[str, Any]:
    """A list of objects as an object keyed by ``str(item[key])`` (items without it are left out).

    ``{{ (steps.tasks.output.tasks | index_by)[trigger.taskId].title }}``.
    """
    if value is None:
        return {}
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise TemplateError(f"index_by: expected a list, got {type(value).__name__}")
    return {
        str(item[key]): item
        for item in value  # any iterable: a dry run's placeholder lists nothing
        if isinstance(item, Mapping) and item.get(key) is not None
    }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return bool(a == b)


def changed_from(wanted: Any, current: Any, keep: Any = ()) -> dict[str, Any]:
    """The fields of ``wanted`` that ``current`` does not have already: those with a value (not
    none, not empty) that differs (strings without case or surrounding space), and the fields
    named in ``keep`` (an id) whatever they are. What a sync writes, so that a record already
    current is not written at all.

    ``{{ {'userId': 9001, 'email': trigger.email} | changed_from(user, keep=['userId']) }}``.
    """
    if not isinstance(wanted, Mapping):
        raise TemplateError(f"changed_from: expected an object, got {type(wanted).__name__}")
    have = current if isinstance(current, Mapping) else {}
    kept = {str(k) for k in keep} if isinstance(keep, list | tuple) else set()
    return {
        k: v
        for k, v in wanted.items()
        if k in kept or (v is not None and v != "" and not (k in have and _same(v, have[k])))
    }


FILTERS: dict[str, Callable[..., Any]] = {
    "split_name": split_name,
    "first_name": first_name,
    "last_name": last_name,
    "full_name": full_name,
    "phone": phone,
    "email": email,
    "iso8601": iso8601,
    "ghl_datetime": ghl_datetime,
    "unix_seconds": unix_seconds,
    "unix_ms": unix_ms,
    "ymd": ymd,
    "default_if_none": default_if_none,
    "compact": compact,
    "plain_text": plain_text,
    "index_by": index_by,
    "changed_from": changed_from,
}


def _is_placeholder(value: Any) -> bool:
    """A dry run's stand-in for a value not known yet (``connector.runtime.engine.Placeholder``)."""
    return type(value).__name__ == "Placeholder"


def _unknown_in_unknown_out(func: Callable[..., Any]) -> Callable[..., Any]:
    """In a dry run, a filter of a placeholder is that placeholder, not an error."""

    @functools.wraps(func)
    def wrapper(value: Any, *args: Any, **kwargs: Any) -> Any:
        if _is_placeholder(value):
            return value
        return func(value, *args, **kwargs)

    return wrapper


@hookimpl
def register_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    for name, func in FILTERS.items():
        register(name, _unknown_in_unknown_out(func))
