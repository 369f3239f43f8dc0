"""The built-in filters (connector.builtins.filters), alone and as recipes use them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pluggy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector import hookspecs
from connector.apps.registry import build_registry
from connector.builtins import filters as builtin_filters
from connector.builtins.filters import (
    compact,
    default_if_none,
    email,
    first_name,
    full_name,
    ghl_datetime,
    index_by,
    iso8601,
    last_name,
    phone,
    plain_text,
    split_name,
    unix_ms,
    unix_seconds,
    ymd,
)
from connector.errors import TemplateError
from connector.language.templates import compile_value, make_environment

# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("full", "first", "last"),
    [
        ("Ada Lovelace", "Ada", "Lovelace"),
        ("Ada", "Ada", ""),
        ("Mary Ann van der Berg", "Mary Ann", "van der Berg"),
        ("  Ada \t  Lovelace\n", "Ada", "Lovelace"),
        ("", "", ""),
        ("   ", "", ""),
        (None, "", ""),
        ("Ludwig van Beethoven", "Ludwig", "van Beethoven"),
        ("Juan de la Cruz", "Juan", "de la Cruz"),
        ("Van Morrison", "Van", "Morrison"),  # a particle as the first word is a first name
        ("Martin Luther King Jr.", "Martin Luther", "King Jr."),
        ("José María García-López", "José María", "García-López"),
    ],
)
def test_split_name(full: Any, first: str, last: str) -> None:
    assert split_name(full) == {"first": first, "last": last}
    assert first_name(full) == first
    assert last_name(full) == last


def test_full_name_skips_missing_parts() -> None:
    assert full_name("Ada", "Lovelace") == "Ada Lovelace"
    assert full_name("Ada", None) == "Ada"
    assert full_name(None, "Lovelace") == "Lovelace"
    assert full_name(" Mary  Ann ", "van der Berg") == "Mary Ann van der Berg"


_word = st.text(
    alphabet=st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")),
    min_size=1,
    max_size=20,
).filter(lambda w: w.split() == [w])


@given(_word, _word)
def test_two_words_round_trip(first: str, last: str) -> None:
    assert split_name(f"{first} {last}") == {"first": first, "last": last}
    assert full_name(**split_name(f" {first}  {last} ")) == f"{first} {last}"


@given(st.text(max_size=3000))
def test_split_name_never_raises_and_keeps_every_word(text: str) -> None:
    parts = split_name(text)
    assert set(parts) == {"first", "last"}
    assert f"{parts['first']} {parts['last']}".split() == text[:1000].split()


def test_split_name_is_bounded() -> None:
    parts = split_name("a " * 1_000_000)
    assert len(parts["first"]) + len(parts["last"]) < 1_001


# --- phone and email -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("(415) 555-2671", None, "4155552671"),
        ("(415) 555-2671", "1", "+14155552671"),
        ("(415) 555-2671", "+1", "+14155552671"),
        ("1-415-555-2671", 1, "+14155552671"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("+44 (0)20 7946 0958", None, "+4402079460958"),  # shape only, not validation
        ("0044 20 7946 0958", None, "+442079460958"),
        ("020 7946 0958", 44, "+442079460958"),
        ("415.555.2671 ext. 12", "1", "+14155552671"),
        (4155552671, "1", "+14155552671"),
        ("n/a", "1", None),
        ("", None, None),
        (None, "1", None),
        ("1234567890123456", None, None),  # longer than E.164 allows
    ],
)
def test_phone(raw: Any, country: Any, expected: str | None) -> None:
    assert phone(raw, country) == expected


def test_phone_rejects_a_bad_country_code() -> None:
    with pytest.raises(TemplateError, match="country_code"):
        phone("4155552671", "GB")


@given(st.text(max_size=200), st.one_of(st.none(), st.sampled_from(["1", "44", "+49"])))
def test_phone_output_shape(text: str, country: str | None) -> None:
    out = phone(text, country)
    if out is not None:
        digits = out.removeprefix("+")
        assert digits.isdigit() and len(digits) <= 15 and digits.isascii()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Ada@Example.COM ", "Ada@example.com"),
        ("ada.lovelace+crm@mail.example.co.uk", "ada.lovelace+crm@mail.example.co.uk"),
        ("Ada Lovelace <ada@Example.com>", "ada@example.com"),
        ("mailto:ada@example.com?subject=hi", "ada@example.com"),
        ("ada@example.com.", "ada@example.com"),
        ("", None),
        (None, None),
        ("ada", None),
        ("ada@localhost", None),
        ("ada@@example.com", None),
        ("ada lovelace@example.com", None),
        ("ada..l@example.com", None),
        (".ada@example.com", None),
        ("ada@-example.com", None),
        ("a" * 65 + "@example.com", None),
    ],
)
def test_email(raw: Any, expected: str | None) -> None:
    assert email(raw) == expected


@given(st.text(max_size=600))
def test_email_never_raises_and_is_idempotent(text: str) -> None:
    out = email(text)
    if out is not None:
        assert email(out) == out
        assert out.count("@") == 1 and len(out) <= 254


# --- dates ---------------------------------------------------------------------------------------

MOMENT = 1603623600  # 2020-10-25T11:00:00Z


@pytest.mark.parametrize(
    "raw",
    [
        "2020-10-25T11:00:00Z",
        "2020-10-25T11:00:00.000Z",
        "2020-10-25T13:00:00+02:00",
        "2020-10-25 11:00:00",  # naive means UTC
        MOMENT,
        MOMENT * 1000,  # milliseconds
        str(MOMENT),
        float(MOMENT),
        datetime(2020, 10, 25, 11, tzinfo=UTC),
    ],
)
def test_dates_agree_on_one_moment(raw: Any) -> None:
    assert ghl_datetime(raw) == "2020-10-25T11:00:00Z"
    assert unix_seconds(raw) == MOMENT
    assert unix_ms(raw) == MOMENT * 1000
    assert ymd(raw) == "2020-10-25"


def test_iso8601_keeps_the_offset() -> None:
    assert iso8601("2020-10-25T13:00:00.5+02:00") == "2020-10-25T13:00:00+02:00"
    assert iso8601(MOMENT) == "2020-10-25T11:00:00Z"
    assert iso8601(date(2020, 10, 25)) == "2020-10-25T00:00:00Z"


def test_missing_dates_stay_missing() -> None:
    for f in (iso8601, ghl_datetime, unix_seconds, unix_ms, ymd):
        assert f(None) is None
        assert f("  ") is None


def test_early_years_keep_four_digits() -> None:
    assert ghl_datetime("0099-01-01T00:00:00Z") == "0099-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "raw", ["tomorrow", "2020-13-45", [1], True, 10**30, "0001-01-01T00:00:00+05:00"]
)
def test_a_wrong_date_fails_the_step(raw: Any) -> None:
    with pytest.raises(TemplateError):
        ghl_datetime(raw)


@given(st.integers(min_value=0, max_value=4_102_444_800))
def test_unix_seconds_and_ghl_datetime_round_trip(seconds: int) -> None:
    assert unix_seconds(ghl_datetime(seconds)) == seconds


@given(st.text(max_size=100))
def test_date_filters_fail_only_with_template_errors(text: str) -> None:
    try:
        out = ghl_datetime(text)
    except TemplateError as exc:
        assert str(exc).startswith("ghl_datetime: ")
        return
    assert out is None or (len(out) == 20 and out.endswith("Z"))


# --- generic -------------------------------------------------------------------------------------


def test_default_if_none_keeps_falsy_values() -> None:
    assert default_if_none(None, "x") == "x"
    assert default_if_none("", "x") == ""
    assert default_if_none(0, 5) == 0


def test_compact() -> None:
    assert compact({"email": None, "phone": "+1", "tags": []}) == {"phone": "+1", "tags": []}
    assert compact([None, 1, None]) == [1]
    assert compact("text") == "text"


def test_plain_text() -> None:
    body = "<p>Called&nbsp;<b>Ada</b> &amp; Charles</p><p>Follow up<br>Friday</p>"
    assert plain_text(body) == "Called Ada & Charles\nFollow up\nFriday"
    assert plain_text("x" * 5000, 1000) == "x" * 1000
    assert plain_text(None) == ""


def test_index_by() -> None:
    tasks = [{"id": "t1", "title": "Call"}, {"id": 2, "title": "Visit"}, {"title": "no id"}]
    assert index_by(tasks) == {"t1": tasks[0], "2": tasks[1]}
    assert index_by(None) == {}
    with pytest.raises(TemplateError):
        index_by("t1")


# --- as recipes use them ---------------------------------------------------------------------------


def _registry_filters() -> dict[str, Any]:
    pm = pluggy.PluginManager("connector")
    pm.add_hookspecs(hookspecs)
    pm.register(builtin_filters, name="builtin:filters")
    return build_registry(pm).filters


def test_every_filter_is_registered_through_the_hook() -> None:
    assert set(builtin_filters.FILTERS) <= set(_registry_filters())


def test_filters_in_recipe_templates() -> None:
    env = make_environment(_registry_filters())
    value = {
        "firstName": "{{ trigger.name | first_name }}",
        "lastName": "{{ trigger.name | last_name }}",
        "email": "{{ trigger.email | email }}",
        "phone": "{{ trigger.phone | phone('1') }}",
        "dueDate": "{{ trigger.due | ghl_datetime }}",
        "ctDue": "{{ trigger.due | unix_seconds }}",
        "name": "{{ trigger.name | split_name }}",
    }
    trigger = {
        "name": "Mary Ann van der Berg",
        "email": None,
        "phone": "(415) 555-2671",
        "due": "2020-10-25T11:00:00Z",
    }
    out = compile_value(env, value).render({"trigger": trigger})
    assert out == {
        "firstName": "Mary Ann",
        "lastName": "van der Berg",
        "email": None,  # native None: a recipe can leave the field out
        "phone": "+14155552671",
        "dueDate": "2020-10-25T11:00:00Z",
        "ctDue": MOMENT,  # a number, as Connecteam wants
        "name": {"first": "Mary Ann", "last": "van der Berg"},
    }


class Placeholder:
    """Stands in for the engine's dry-run placeholder (a value not known before the run)."""

    def __str__(self) -> str:
        return "<steps.contact.output.contact.dateAdded>"


@pytest.mark.parametrize("name", sorted(builtin_filters.FILTERS))
def test_a_dry_run_placeholder_passes_through(name: str) -> None:
    unknown = Placeholder()
    assert _registry_filters()[name](unknown) is unknown
