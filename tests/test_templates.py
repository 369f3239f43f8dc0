"""Templates: native types, strict undefined names, the sandbox, and the resource bounds."""

from __future__ import annotations

from typing import Any

import pytest

from connector.errors import TemplateError, TemplateLimitError
from connector.language.templates import compile_value, is_template, make_environment

ENV = make_environment({"shout": lambda v: str(v).upper() + "!"})
CTX: dict[str, Any] = {
    "trigger": {
        "n": 7,
        "s": "42",
        "flag": False,
        "none": None,
        "tags": ["a", "b"],
        "obj": {"k": 1},
    },
    "steps": {},
    "vars": {},
}


def render(value: Any) -> Any:
    return compile_value(ENV, value).render(CTX)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ trigger.n }}", 7),
        ("{{ trigger.s }}", "42"),  # a string stays a string, never a number
        ("{{ trigger.flag }}", False),
        ("{{ trigger.none }}", None),
        ("{{ trigger.tags }}", ["a", "b"]),
        ("{{ trigger.obj }}", {"k": 1}),
        ("  {{ trigger.n }}  ", 7),
        ("n={{ trigger.n }}", "n=7"),
        ("{{ trigger.n }}{{ trigger.n }}", "77"),
        ("{{ trigger.s | shout }}", "42!"),
        ("{% if trigger.flag %}yes{% else %}no{% endif %}", "no"),
        ("plain text", "plain text"),
        (12, 12),
    ],
)
def test_native_types(source: Any, expected: Any) -> None:
    assert render(source) == expected
    assert type(render(source)) is type(expected)


def test_objects_and_lists_render_recursively() -> None:
    assert render(
        {"a": ["{{ trigger.n }}", "x{{ trigger.n }}"], "b": {"c": "{{ trigger.tags }}"}}
    ) == {
        "a": [7, "x7"],
        "b": {"c": ["a", "b"]},
    }


@pytest.mark.parametrize(
    "source",
    ["{{ nope }}", "{{ trigger.missing }}", "{{ [trigger.missing] }}", "x {{ trigger.obj.zz }}"],
)
def test_undefined_names_are_errors_not_empty_strings(source: str) -> None:
    with pytest.raises(TemplateError):
        render(source)


def test_syntax_errors_say_so() -> None:
    with pytest.raises(TemplateError, match="syntax"):
        compile_value(ENV, "{{ trigger.n ")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ trigger.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ '{0.__class__}'.format(trigger) }}",
        "{{ trigger | attr('__class__') }}",
        "{{ trigger.obj.items.__self__ }}",
        "{{ trigger.tags.append('x') }}",
    ],
)
def test_known_escapes_are_blocked(source: str) -> None:
    with pytest.raises(TemplateError):
        render(source)
    assert CTX["trigger"]["tags"] == ["a", "b"]


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% set l = range(99999)|list %}{% for a in l %}{% for b in l %}{% endfor %}{% endfor %}",
        "{{ 'a' * 100000000 }}",
        "{{ ['a'] * 100000000 }}",
        "{{ 'a'.ljust(100000000) }}",
        "{{ 'a' | center(100000000) }}",
        "{{ '%0100000000d' % 1 }}",
        "{{ 2 ** 100000000 }}",
        "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
        "{% set x %}{% for i in range(100000) %}{{ 'y' * 999999 }}{% endfor %}{% endset %}{{ x|length }}",
        # issue 14: each of these passed validation and ran for minutes or took gigabytes
        "{{ (((10**256)**256)**256)**256 }}",
        "{% set ns=namespace(x=3) %}{% for i in range(40) %}{% set ns.x=ns.x*ns.x %}{% endfor %}",
        "{{ ('a'*1000)|replace('a','a'*999999) }}",
        "{{ '%999999999d'|format(1) }}",
        "{{ ([('a'*999999)]*1500)|join }}",
    ],
)
def test_resource_bounds(source: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(source)
    assert "template stopped" in str(info.value) or isinstance(info.value, TemplateLimitError)


def test_is_template() -> None:
    assert is_template("{{ x }}")
    assert is_template("{% if x %}{% endif %}")
    assert not is_template("plain { text }")


def test_the_bounds_hold_before_the_value_is_built() -> None:
    """A size check after the fact let `replace` and `join` build a gigabyte first."""
    import tracemalloc

    tracemalloc.start()
    try:
        for source in (
            "{{ ('a'*1000)|replace('a','a'*999999) }}",
            "{{ ([('a'*999999)]*1500)|join }}",
        ):
            with pytest.raises(TemplateLimitError):
                render(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024  # the inputs are a few megabytes; the results would be 1.5 GB


def test_lipsum_is_not_offered_and_a_bad_truncate_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="'lipsum' is undefined"):
        render("{{ lipsum(999999) }}")
    with pytest.raises(TemplateError, match="truncate: the length"):
        render("{{ 'x' | truncate(-1) }}")
    assert render("{{ 'abcdefghij' | truncate(5, end='..', leeway=0) }}") == "abc.."


@pytest.mark.parametrize(
    "source",
    [
        "{{ '{0:>999999999}'.format(1) }}",
        "{{ '{:.999999999f}'.format(1.5) }}",
        "{{ '{0:{1}}'.format(1, 999999999) }}",
        "{{ '{0:{1}}'.format(1, '>999999999') }}",
        "{{ '{x:>999999999}'.format_map({'x': 1}) }}",
    ],
)
def test_str_format_fields_are_bounded_before_they_are_built(source: str) -> None:
    """`'{0:>999999999}'.format(1)` built a gigabyte of spaces before any size check."""
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(TemplateLimitError, match="format width too large"):
            render(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024


def test_str_format_still_formats() -> None:
    assert render("{{ '{a:>5}|{0:03d}'.format(7, a='x') }}") == "    x|007"
    assert render("{{ '{k}'.format_map({'k': 'v'}) }}") == "v"
    with pytest.raises(TemplateError, match="unsafe"):
        render("{{ '{0.__class__}'.format(1) }}")


@pytest.mark.parametrize(
    "source",
    [
        "{{ " + " + ".join(["1"] * 3000) + " }}",
        "{% if " + " and ".join(["true"] * 3000) + " %}x{% endif %}",
    ],
)
def test_a_template_too_deep_to_compile_is_a_template_error(source: str) -> None:
    """Jinja's compiler recursed without end on 3,000 chained operators (RecursionError)."""
    with pytest.raises(TemplateError, match="nested too deeply"):
        compile_value(make_environment(), source)


def test_plans_of_one_registry_share_their_compiled_templates() -> None:
    from connector.language.templates import shared_environment

    filters = {"shout": lambda v: str(v).upper()}
    env = shared_environment(filters)
    assert shared_environment(dict(filters)) is env
    assert shared_environment({**filters, "other": str}) is not env
    first = compile_value(env, "{{ trigger.n | shout }}!")
    assert compile_value(env, "{{ trigger.n | shout }}!") is first
    assert first.render(CTX) == "7!"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ('x' * 999999) | map(attribute='a', default=[]) | sum(start=[]) }}",
        "{{ ('x' * 999999) | selectattr('a', 'defined') | list }}",
        "{{ ('x' * 999999) | map('lower') | list | length }}",
    ],
)
def test_a_filters_own_loop_keeps_to_the_time_budget(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`map(attribute=...)` and `selectattr` over a million items ran for seconds: their loops
    look up and test each item without a loop tick. With no time left, they stop at once."""
    import connector.language.template_bounds as templates

    monkeypatch.setattr(templates, "TIME_BUDGET", 0.0)
    with pytest.raises(TemplateLimitError, match="ran longer than"):
        render(source)
