"""The phone filters, on their own and as recipes' templates see them through connector."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import connector_phone
import pytest
from click.testing import CliRunner

from connector.apps.registry import registry_from_plugins
from connector.cli import cli
from connector.errors import TemplateError
from connector.language.templates import compile_value, make_environment

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def render(template: str, **context: Any) -> Any:
    registry = registry_from_plugins({"phone": connector_phone})
    env = make_environment(registry.filters)
    return compile_value(env, template).render(context)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(415) 555-2671", None, "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("020 7183 8750", "GB", "+442071838750"),
        ("020 7183 8750", "gb", "+442071838750"),
        ("+44 20 7183 8750", "US", "+442071838750"),  # a + prefix wins over the region
        (4155552671, None, "+14155552671"),
    ],
)
def test_e164_normalises_numbers(raw: Any, region: str | None, expected: str) -> None:
    assert connector_phone.e164(raw, region) == expected


def test_phone_national_formats_for_the_numbers_own_country() -> None:
    assert connector_phone.phone_national("+14155552671") == "(415) 555-2671"
    assert connector_phone.phone_national("+442071838750", "US") == "020 7183 8750"


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_empty_values_pass_through_as_none(empty: Any) -> None:
    assert connector_phone.e164(empty) is None
    assert connector_phone.phone_national(empty) is None


@pytest.mark.parametrize("bad", ["12", "not a phone", "+1 555"])
def test_invalid_numbers_fail_with_the_value_and_a_way_out(bad: str) -> None:
    with pytest.raises(TemplateError) as info:
        connector_phone.e164(bad)
    assert repr(bad) in str(info.value)
    assert "invalid='keep'" in str(info.value)


def test_invalid_numbers_can_be_kept_or_dropped() -> None:
    assert connector_phone.e164("12", invalid="keep") == "12"
    assert connector_phone.e164("12", invalid="none") is None
    with pytest.raises(TemplateError, match="invalid= must be one of"):
        connector_phone.e164("12", invalid="ignore")


def test_unknown_region_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match="unknown region 'XX'"):
        connector_phone.e164("020 7183 8750", "XX")


def test_templates_use_the_filters_with_arguments() -> None:
    lead = {"phone": "020 7183 8750", "country": "GB"}
    assert render("{{ lead.phone | e164(lead.country) }}", lead=lead) == "+442071838750"
    assert render("{{ lead.phone | phone_national(lead.country) }}", lead=lead) == "020 7183 8750"
    assert render("{{ none | e164 }}") is None


def test_a_bad_number_in_a_template_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="'12' is not a valid phone number"):
        render("{{ p | e164 }}", p="12")


def test_default_region_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(connector_phone.REGION_ENV, "GB")
    assert render("{{ p | e164 }}", p="020 7183 8750") == "+442071838750"


def test_a_bad_default_region_fails_the_plugin_not_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(connector_phone.REGION_ENV, "Narnia")
    registry = registry_from_plugins({"phone": connector_phone})
    assert "e164" not in registry.filters
    assert "unknown region 'NARNIA'" in registry.failures["phone"]


@pytest.fixture
def as_drop_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This plugin as a drop-in file (it is one module), so the tests need no install."""
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GHL_LOCATION_ID", "loc-example")
    monkeypatch.delenv(connector_phone.REGION_ENV, raising=False)
    folder = tmp_path / "dropins"
    folder.mkdir()
    shutil.copy(connector_phone.__file__, folder / "phone_under_test.py")
    return folder


def test_the_example_recipe_validates_and_runs(as_drop_in: Path) -> None:
    recipe = str(EXAMPLES / "upsert-contact-e164.yaml")
    runner = CliRunner()
    valid = runner.invoke(cli, ["validate", recipe, "--plugins-dir", str(as_drop_in)])
    assert valid.exit_code == 0, valid.output
    result = runner.invoke(
        cli, ["run", recipe, "--dry-run", "--json", "--plugins-dir", str(as_drop_in)]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["output"] == {"phone": "+14155552671", "national": "(415) 555-2671"}
    assert record["steps"][0]["request"]["body"]["phone"] == "+14155552671"


def test_the_example_recipe_fails_clearly_on_a_bad_number(as_drop_in: Path, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps({"name": "X", "email": "x@example.com", "phone": "12", "country": "US"})
    )
    args = ["run", str(EXAMPLES / "upsert-contact-e164.yaml"), "--event", str(event)]
    result = CliRunner().invoke(
        cli, [*args, "--dry-run", "--json", "--plugins-dir", str(as_drop_in)]
    )
    assert result.exit_code == 1, result.output
    record = json.loads(result.stdout)
    assert record["status"] == "failed"
    assert "'12' is not a valid phone number" in json.dumps(record)
