"""Phone number filters for connector recipes, backed by Google's libphonenumber (``phonenumbers``).

``{{ trigger.phone | e164 }}`` turns ``(415) 555-2671`` into ``+14155552671``;
``{{ trigger.phone | phone_national }}`` gives ``(415) 555-2671``. Numbers written without a ``+``
country code are read in a default region: the filter's ``region`` argument, else the environment
variable ``CONNECTOR_PHONE_REGION``, else ``US``.

An empty value (``None`` or ``""``) passes through as ``None``, so optional phone fields stay optional.
A value that is not a valid number fails the step with a message naming it, unless the template asks
otherwise with ``invalid="keep"`` (pass the input through unchanged) or ``invalid="none"`` (give
``None``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import phonenumbers

from connector import hookimpl
from connector.errors import TemplateError

__all__ = ["DEFAULT_REGION", "REGION_ENV", "e164", "phone_national", "register_filters"]
__version__ = "0.1.0"

REGION_ENV = "CONNECTOR_PHONE_REGION"
DEFAULT_REGION = "US"
_INVALID_CHOICES = ("error", "keep", "none")


def _region(region: str | None, default_region: str) -> str:
    code = (region or default_region).strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise TemplateError(
            f"phone filter: unknown region {code!r} (use a two-letter code like 'US')"
        )
    return code


def _format(
    value: Any, region: str | None, invalid: str, default_region: str, fmt: int, filter_name: str
) -> Any:
    if invalid not in _INVALID_CHOICES:
        raise TemplateError(f"{filter_name}: invalid= must be one of {', '.join(_INVALID_CHOICES)}")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TemplateError(f"{filter_name}: expected a phone number, got {type(value).__name__}")
    code = _region(region, default_region)
    text = str(value)
    try:
        number = phonenumbers.parse(text, code)
        valid = phonenumbers.is_valid_number(number)
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        if invalid == "keep":
            return value
        if invalid == "none":
            return None
        raise TemplateError(
            f"{filter_name}: {text!r} is not a valid phone number (default region {code}); "
            f"pass invalid='keep' or invalid='none' to let such values through"
        )
    return phonenumbers.format_number(number, fmt)


def e164(
    value: Any,
    region: str | None = None,
    invalid: str = "error",
    *,
    default_region: str = DEFAULT_REGION,
) -> Any:
    """``value`` in E.164 form (``+14155552671``), read in ``region`` when it has no ``+`` prefix."""
    return _format(
        value, region, invalid, default_region, phonenumbers.PhoneNumberFormat.E164, "e164"
    )


def phone_national(
    value: Any,
    region: str | None = None,
    invalid: str = "error",
    *,
    default_region: str = DEFAULT_REGION,
) -> Any:
    """``value`` as written in its own country (``(415) 555-2671``, ``020 7183 8750``)."""
    fmt = phonenumbers.PhoneNumberFormat.NATIONAL
    return _format(value, region, invalid, default_region, fmt, "phone_national")


def _bind(func: Callable[..., Any], default_region: str) -> Callable[..., Any]:
    def bound(value: Any, region: str | None = None, invalid: str = "error") -> Any:
        return func(value, region, invalid, default_region=default_region)

    bound.__name__ = func.__name__
    bound.__doc__ = func.__doc__
    return bound


def filters(env: Mapping[str, str] | None = None) -> dict[str, Callable[..., Any]]:
    """The filters, with the default region taken from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    default_region = env.get(REGION_ENV) or DEFAULT_REGION
    _region(default_region, DEFAULT_REGION)  # a bad CONNECTOR_PHONE_REGION fails the plugin early
    return {
        "e164": _bind(e164, default_region),
        "phone_national": _bind(phone_national, default_region),
    }


@hookimpl
def register_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register ``e164`` and ``phone_national``."""
    for name, func in filters().items():
        register(name, func)
