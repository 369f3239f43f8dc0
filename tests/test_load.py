"""Loading recipe files: positions of every node, and clear errors for anything that is not a recipe."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.errors import ConnectorError, RecipeLoadError
from connector.language import LoadedRecipe, load_recipe, load_recipe_text
from connector.language.load import MAX_BYTES, child_path, parent_path

RECIPES = Path(__file__).parent / "recipes"
VALID = RECIPES / "valid"
INVALID = RECIPES / "invalid"


def load_error(path: Path) -> RecipeLoadError:
    with pytest.raises(RecipeLoadError) as info:
        load_recipe(path)
    return info.value


def test_positions_of_values_and_keys() -> None:
    recipe = load_recipe(VALID / "pull-contact.yaml")
    assert recipe.path == str(VALID / "pull-contact.yaml")
    assert recipe.data["steps"][0]["with"]["contactId"] == "{{ trigger.contactId }}"
    assert recipe.positions["$"] == (2, 1)
    assert recipe.positions["$.steps[0].with.contactId"] == (15, 18)
    assert recipe.key_positions["$.steps[0].with.contactId"] == (15, 7)
    assert recipe.positions["$.trigger.sample.userId"] == (7, 53)
    loc = recipe.location("$.steps[1].with.contactId")
    assert (loc.line, loc.column, loc.path) == (18, 23, "$.steps[1].with.contactId")


def test_location_of_a_missing_path_is_its_nearest_ancestor() -> None:
    recipe = load_recipe(VALID / "pull-contact.yaml")
    loc = recipe.location("$.steps[0].with.title")
    assert (loc.line, loc.column, loc.path) == (15, 7, "$.steps[0].with.title")
    assert recipe.location("$.nothing[3].here").line == 2


def test_values_are_plain_python_and_dates_stay_strings() -> None:
    recipe = load_recipe_text(
        "a: 1\nb: 2.5\nc: true\nd: ~\ne: '7'\nf: 2026-01-01\ng: [x, {h: no}]\n", "t.yaml"
    )
    assert recipe.data == {
        "a": 1,
        "b": 2.5,
        "c": True,
        "d": None,
        "e": "7",
        "f": "2026-01-01",
        "g": ["x", {"h": False}],
    }
    assert recipe.positions["$.g[1].h"] == (7, 12)


def test_sha256_is_of_the_file_bytes() -> None:
    import hashlib

    path = VALID / "bom.yaml"
    assert load_recipe(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_utf8_bom_loads_with_true_columns() -> None:
    recipe = load_recipe(VALID / "bom.yaml")
    assert recipe.data["name"] == "bom-recipe"
    assert recipe.positions["$.name"] == (1, 7)


def test_literal_block_records_its_first_content_line() -> None:
    recipe = load_recipe(VALID / "pull-contact.yaml")
    assert recipe.block_starts["$.output.summary"] == (37, 5)


def test_merge_keys_and_aliases_copy_values() -> None:
    recipe = load_recipe(VALID / "nightly-users.yaml")
    with_ = recipe.data["steps"][1]["with"]
    assert with_["contactId"] == "{{ trigger.cron | default('none') }}"
    assert "<<" not in with_


def test_json_paths_quote_odd_keys() -> None:
    assert child_path("$", "steps") == "$.steps"
    assert child_path("$.steps", 2) == "$.steps[2]"
    assert child_path("$.with", "first name") == "$.with['first name']"
    assert parent_path("$.with['a.b'][3]") == "$.with['a.b']"
    assert parent_path("$.with['a.b']") == "$.with"
    assert parent_path("$") is None
    recipe = load_recipe_text("with:\n  first name: x\n")
    assert recipe.positions["$.with['first name']"] == (2, 15)


@pytest.mark.parametrize(
    ("name", "line", "column", "message"),
    [
        ("yaml-syntax.yaml", 2, 4, "YAML syntax error: mapping values are not allowed"),
        ("duplicate-key.yaml", 3, 1, "duplicate key 'name' (first written at line 1)"),
        ("non-string-key.yaml", 2, 1, "mapping key 1 is not a string; quote it"),
        ("list.yaml", 1, 1, "this file holds a list"),
        ("scalar.yaml", 1, 1, "this file holds a single value"),
        ("empty.yaml", 1, 1, "the file is empty"),
        ("binary.yaml", 1, 1, "this is a binary file"),
        ("alias-bomb.yaml", 5, 23, "through aliases (an alias bomb?)"),
        ("deep-nesting.yaml", 2, 71, "nested more than 64 levels deep"),
    ],
)
def test_files_that_are_not_recipes(name: str, line: int, column: int, message: str) -> None:
    error = load_error(INVALID / name)
    assert (error.location.line, error.location.column) == (line, column)
    assert error.location.file == str(INVALID / name)
    assert message in str(error)


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("name: x\n" + "# padding\n" * (MAX_BYTES // 10 + 1))
    error = load_error(path)
    assert "a recipe may be at most" in str(error)
    with pytest.raises(RecipeLoadError, match="at most"):
        load_recipe_text(path.read_bytes())


def test_deep_flow_nesting_of_a_megabyte_stops_at_once() -> None:
    with pytest.raises(RecipeLoadError, match="nest"):
        load_recipe_text("a: " + "[" * (MAX_BYTES - 10))


def test_deep_nesting_through_aliases() -> None:
    level = "a0: &a0 [x]\n" + "".join(
        f"a{i}: &a{i} [[[[[[[[*a{i - 1}]]]]]]]]\n" for i in range(1, 12)
    )
    with pytest.raises(RecipeLoadError, match="64 levels"):
        load_recipe_text(level)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &a [*a]\n", "alias *a refers to itself"),
        ("a: *nope\n", "alias *nope is not defined"),
        ("a: !!python/object:os.system x\n", "unsupported YAML tag"),
        ("a: !!int abc\n", "is not a valid int"),
        ("a: 1\n---\nb: 2\n", "one YAML document"),
        ("? [a, b]\n: 1\n", "mapping key must be a plain string"),
        ("on: push\n", "mapping key True is not a string"),
        ("# only a comment\n", "holds no recipe"),
        ("a: \x07\n", "character YAML does not allow"),
        ("a: 1\n<<: 3\n", "'<<' must merge a mapping"),
    ],
)
def test_yaml_features_a_recipe_never_needs(text: str, message: str) -> None:
    with pytest.raises(RecipeLoadError, match=message.replace("*", r"\*").replace("?", r"\?")):
        load_recipe_text(text, "t.yaml")


def test_undecodable_bytes_point_at_the_bad_byte() -> None:
    with pytest.raises(RecipeLoadError) as info:
        load_recipe_text(b"name: ok\nbad: \xff\n", "t.yaml")
    assert (info.value.location.line, info.value.location.column) == (2, 6)
    assert "not UTF-8" in str(info.value)


def test_missing_file_and_folder_are_load_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeLoadError, match="cannot read"):
        load_recipe(tmp_path / "missing.yaml")
    with pytest.raises(RecipeLoadError, match="folder"):
        load_recipe(tmp_path)


def test_loaded_recipe_is_frozen() -> None:
    recipe = load_recipe_text("a: 1\n")
    assert isinstance(recipe, LoadedRecipe)
    with pytest.raises(AttributeError):
        recipe.path = "x"  # type: ignore[misc]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400)))
def test_any_input_loads_or_fails_cleanly(data: bytes | str) -> None:
    with contextlib.suppress(ConnectorError):
        load_recipe_text(data, "fuzz.yaml")


YAMLISH = st.lists(
    st.sampled_from([*list("ab:-[]{}&*!|>'\"\n #,?%@`\t1.~"), "  ", "{{", "}}", "<<"]), max_size=80
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH)
def test_yaml_like_noise_loads_or_fails_cleanly(text: str) -> None:
    with contextlib.suppress(ConnectorError):
        load_recipe_text(text, "fuzz.yaml")


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        (
            "name: x\ntrigger: {app: manual, event: go\nsteps: []\n",
            "the {...} mapping opened on line 2 is not closed",
        ),
        ("name: x\ntrigger:\n  app: manual\n event: go\n", "check the indentation of line 4"),
        (
            "name: x\ndescription: a: b\n",
            "line 2 has a ': ' inside a plain value: put the value in quotes",
        ),
        ('name: "x\nsteps: []\n', "the quoted text that starts on line 1 is not closed"),
        ("name: x\n\tsteps: []\n", "indent line 2 with spaces"),
        ("steps: [1, 2\n", "the [...] list opened on line 1 is not closed"),
    ],
)
def test_a_yaml_syntax_error_says_what_to_do(text: str, hint: str) -> None:
    with pytest.raises(RecipeLoadError) as err:
        load_recipe_text(text, "r.yaml")
    assert "YAML syntax error: " in err.value.problem.message
    assert hint in err.value.problem.message
