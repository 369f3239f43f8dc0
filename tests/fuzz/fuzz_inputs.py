"""Hypothesis strategies for the fuzz tests: the shipped recipes and their events, mutated.

Mutations work on the parsed documents (delete, duplicate, retype and swap values, rename keys,
inject hostile templates, nest deeply, long and odd unicode text) and on the YAML text (alias bombs,
duplicate keys, tabs, cut-off documents, control characters, a BOM)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "tests" / "workloads").glob("*.yaml"))  # the one-way flows


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


BASE_RECIPES: list[dict[str, Any]] = [_load(p) for p in RECIPES]


def _events() -> list[dict[str, Any]]:
    """Every shipped event: the recipes' samples, the CLI's event file, the recipe tests'."""
    found: list[dict[str, Any]] = []
    for recipe in BASE_RECIPES:
        sample = (recipe.get("trigger") or {}).get("sample")
        if isinstance(sample, dict):
            found.append(sample)
    found.append(json.loads((ROOT / "tests" / "cli" / "event.json").read_text()))
    for path in sorted((ROOT / "tests" / "workloads" / "tests").glob("*.test.yaml")):
        for test in (_load(path) or {}).get("tests") or []:
            event = test.get("event") if isinstance(test, dict) else None
            if isinstance(event, dict):
                found.append(event)
    return found


BASE_EVENTS = _events()

# -- hostile values ---------------------------------------------------------------------------------

HOSTILE_TEMPLATES = [
    "{{ 10**10**10 }}",
    "{{ 9**9**9 }}",
    "{{ (10**256)**256 }}",
    "{{ '%999999999d'|format(1) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%.999999999f' % 1.5 }}",
    "{{ '{0:>999999999}'.format(1) }}",
    "{{ lipsum(999999) }}",
    "{{ lipsum }}",
    "{{ range(10**9) | list }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ 'a' * 10**9 }}",
    "{{ [1] * 10**9 }}",
    "{{ 'ab' | replace('', 'xxxxxxxxxx') | replace('', 'yyyyyyyyyy') }}",
    "{{ 'a' | center(10**9) }}",
    "{{ 'x' | indent(10**8) }}",
    "{{ 'x' | truncate(1, end='......') }}",
    "{{ ('a' * 999999) ~ ('b' * 999999) }}",
    "{% set ns = namespace(x='ab') %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}",
    "{% set ns = namespace(x=2) %}{% for i in range(64) %}{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}",
    "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self.__init__ }}",
    "{{ trigger.__class__ }}",
    "{{ trigger['__class__'] }}",
    "{{ namespace }}",
    "{{ joiner()() }}",
    "{{ dict(a=1).clear() }}",
    "{{ [].append(1) }}",
    "{{ 'abc'.format_map({}) }}",
    "{{ '{0.__class__}'.format(1) }}",
    "{{ 1/0 }}",
    "{{ 1 // 0 }}",
    "{{ 1 % 0 }}",
    "{{ [1][5] }}",
    "{{ none.x }}",
    "{{ undefined_name }}",
    "{{ 1e308 * 10 }}",
    "{{ (1e308 * 10) | int }}",
    "{{ 'nan' | float | int }}",
    "{{ -1 | abs ** 300 }}",
    "{{ trigger | tojson }}",
    "{{ trigger.items() | list }}",
    "{{ trigger.get('contactId', 'x') }}",
    "{{ trigger | dictsort | first }}",
    "{{ trigger.contactId | int ** 1000 }}",
    "{{ trigger.contactId * 999999 }}",
    "{{ trigger | map(attribute='x') | list }}",
    "{{ '\x00\x01\ud7ff' }}",
    "{{ 'x' | plain_text(10**9) }}",
    "{{ 'x' | ghl_datetime }}",
    "{{ 'x' | unix_seconds }}",
    "{{ [1, 2] | index_by(1) }}",
    "{{ 5 | changed_from(5) }}",
    "{{ {'a': 1} | changed_from([1], keep=3) }}",
    "{{ none | full_name(none) }}",
    "{{ 12 | phone(10**9) }}",
    "{{ [none, {}, []] | compact }}",
    "{{ 'a' | email }}",
    "{{ 99999999999999999999 | ymd }}",
    "{{ -99999999999999999999 | unix_ms }}",
    "{{ steps }}",
    "{{ steps | list }}",
    "{{ vars }}",
    "{{ env }}",
    "{{ " + "(" * 300 + "1" + ")" * 300 + " }}",
    "{{ " + "[" * 200 + "]" * 200 + " }}",
    "{{ " + " + ".join(["1"] * 3000) + " }}",
    "{{",
    "{% if %}",
    "{% for %}",
    "{% raw %}",
    "{# unclosed",
    "{{ x }",
    "}}{{",
    "{% include 'x' %}",
    "{% import 'x' as y %}",
    "{% extends 'x' %}",
    "{% block b %}{% endblock %}",
    "{% set x = 1 %}{{ x }}",
    "{% filter upper %}x{% endfilter %}",
    "{{ 'x' | nosuchfilter }}",
    "{{ 1 is nosuchtest }}",
]

ODD_TEXT = [
    "",
    " ",
    "\t",
    "\n" * 50,
    "\x00",
    "\x1b[31mred\x1b[0m",
    "\ufeff",
    "\u202e\u202d",
    "🙂" * 1000,
    "é" * 10000,
    "a" * 200_000,
    "\ud800",
    "null",
    "~",
    "yes",
    "0x1F",
    "1e309",
    "- a\n- b",
    "&anchor",
    "*alias",
    "!!python/object:os.system",
    "{a: 1}",
]

# a small alphabet of what parsers and templates find awkward (and no unicode tables to build)
CHARS = st.sampled_from(list("ab Z0-_.:#&*!|>'\"{}%[],\n\t\\\x00\x85\u2028é漢🙂\ufeff\u202e"))
TEXT = st.text(alphabet=CHARS, max_size=30)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 2**63, 10**100, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.sampled_from(ODD_TEXT),
    st.sampled_from(HOSTILE_TEMPLATES),
)

VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(alphabet=CHARS, max_size=12), inner, max_size=4),
    ),
    max_leaves=12,
)

# keys recipes and their parts use: renaming to one of these retypes a part's meaning
KNOWN_KEYS = [
    "name", "description", "trigger", "app", "event", "sample", "if", "cron", "poll", "vars",
    "steps", "id", "action", "with", "foreach", "on_error", "once", "key", "link", "lookup",
    "found", "wait", "retry", "attempts", "base_delay", "max_delay", "max_wait", "output",
    "contactId", "userId", "locationId", "body", "tags", "$ref", "<<",
]  # fmt: skip


# -- tree mutations ---------------------------------------------------------------------------------


def _slots(tree: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in ``tree``, breadth first."""
    out: list[tuple[Any, Any]] = []
    todo = [tree]
    while todo and len(out) < 2000:
        node = todo.pop(0)
        if isinstance(node, dict):
            for k in list(node):
                out.append((node, k))
                todo.append(node[k])
        elif isinstance(node, list):
            for i in range(len(node)):
                out.append((node, i))
                todo.append(node[i])
    return out


def _nest(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"x": value}
    return value


@st.composite
def mutated_tree(draw: st.DrawFn, base: Any, max_mutations: int = 4) -> Any:
    """``base`` with a few mutations."""
    tree = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_mutations))):
        slots = _slots(tree)
        if not slots:
            tree = draw(VALUES)
            continue
        container, key = slots[draw(st.integers(0, len(slots) - 1))]
        op = draw(
            st.sampled_from(
                [
                    "delete", "duplicate", "retype", "swap", "hostile", "nest", "rename",
                    "odd_text", "empty", "template_ref",
                ]
            )
        )  # fmt: skip
        if op == "delete":
            del container[key]
        elif op == "duplicate":
            if isinstance(container, list):
                container.insert(key, copy.deepcopy(container[key]))
            else:
                container[f"{key}_copy"] = copy.deepcopy(container[key])
        elif op == "retype":
            container[key] = draw(VALUES)
        elif op == "swap":
            other_container, other_key = slots[draw(st.integers(0, len(slots) - 1))]
            a, b = container[key], other_container[other_key]
            if a is not b and not _contains(a, b) and not _contains(b, a):
                container[key], other_container[other_key] = copy.deepcopy(b), copy.deepcopy(a)
        elif op == "hostile":
            container[key] = draw(st.sampled_from(HOSTILE_TEMPLATES))
        elif op == "nest":
            depth = draw(st.sampled_from([2, 10, 40, 100, 300]))
            container[key] = _nest(container[key], depth, draw(st.booleans()))
        elif op == "rename" and isinstance(container, dict):
            new = draw(st.one_of(st.sampled_from(KNOWN_KEYS), st.text(alphabet=CHARS, max_size=8)))
            container[new] = container.pop(key)
        elif op == "odd_text":
            container[key] = draw(st.sampled_from(ODD_TEXT))
        elif op == "empty":
            container[key] = draw(st.sampled_from([None, "", [], {}]))
        elif op == "template_ref":
            ref = draw(
                st.sampled_from(
                    [
                        "trigger", "trigger.contactId", "steps", "vars", "env", "item", "index",
                        "output", "steps.contact.output", "steps.nosuch.output", "trigger.x.y.z",
                    ]
                )
            )  # fmt: skip
            filt = draw(
                st.sampled_from(
                    [
                        "", " | default('')", " | length", " | lower", " | tojson", " | int",
                        " | list", " | first", " | plain_text", " | ghl_datetime", " | phone",
                        " | index_by('id')", " | unix_seconds", " | email", " | split_name",
                        " | compact", " | full_name(trigger)",
                    ]
                )
            )  # fmt: skip
            container[key] = draw(
                st.sampled_from(["{{ REF }}", "x-{{ REF }}", "{% if REF %}a{% endif %}"])
            ).replace("REF", ref + filt)
    return tree


def _contains(outer: Any, inner: Any) -> bool:
    if outer is inner:
        return True
    if isinstance(outer, dict):
        return any(_contains(v, inner) for v in outer.values())
    if isinstance(outer, list):
        return any(_contains(v, inner) for v in outer)
    return False


# -- text -------------------------------------------------------------------------------------------

ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

TEXT_EDITS = [
    "none", "none", "none", "bomb", "bomb_in", "duplicate_key", "tabs", "cut", "control", "bom",
    "merge_key", "recursive_alias", "deep_flow", "tags", "multi_doc", "latin1",
]  # fmt: skip


def dump(tree: Any, as_json: bool) -> str:
    if as_json:
        return json.dumps(tree, default=str, ensure_ascii=False)
    try:
        return yaml.dump(tree, Dumper=_DUMPER, allow_unicode=True, sort_keys=False, width=120)
    except (yaml.YAMLError, RecursionError, ValueError):
        return json.dumps(tree, default=str)


@st.composite
def edited_text(draw: st.DrawFn, text: str) -> str | bytes:
    """``text`` with an edit a YAML parser must survive."""
    edit = draw(st.sampled_from(TEXT_EDITS))
    lines = text.splitlines()
    if edit == "bomb":
        return ALIAS_BOMB + text
    if edit == "bomb_in":
        return text + "\nbomb:\n" + "".join("  " + line + "\n" for line in ALIAS_BOMB.splitlines())
    if edit == "duplicate_key" and lines:
        i = draw(st.integers(0, len(lines) - 1))
        return "\n".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])
    if edit == "tabs":
        return text.replace("  ", "\t")
    if edit == "cut":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if edit == "control":
        at = draw(st.integers(0, len(text)))
        bad = draw(st.sampled_from(["\x00", "\x07", "\x1b", "\ud800", "\x85", "\u2028", "\r"]))
        return text[:at] + bad + text[at:]
    if edit == "bom":
        return "\ufeff" + text
    if edit == "merge_key":
        return "base: &base {name: x, steps: []}\n<<: *base\n" + text
    if edit == "recursive_alias":
        return text + "\nloop: &loop [*loop]\n"
    if edit == "deep_flow":
        depth = draw(st.sampled_from([50, 500, 5000]))
        return text + "\ndeep: " + "[" * depth + "]" * depth + "\n"
    if edit == "tags":
        return text + "\nx: !!python/object/apply:os.system ['true']\ny: !!binary AAAA\n"
    if edit == "multi_doc":
        return text + "\n---\nname: second\n"
    if edit == "latin1":
        return (text + "\nnote: café\n").encode("latin-1", "replace")
    return text


@st.composite
def recipe_texts(draw: st.DrawFn) -> str | bytes:
    base = draw(st.sampled_from(BASE_RECIPES))
    tree = draw(mutated_tree(base)) if draw(st.integers(0, 9)) else copy.deepcopy(base)
    return draw(edited_text(dump(tree, as_json=draw(st.integers(0, 5)) == 0)))


@st.composite
def runnable_recipes(draw: st.DrawFn) -> dict[str, Any]:
    """A shipped recipe whose templates (only) are changed: most still validate, so the run paths
    meet the hostile values."""
    base = copy.deepcopy(draw(st.sampled_from(BASE_RECIPES)))
    strings = [
        (c, k)
        for c, k in _slots(base)
        if isinstance(c[k], str) and "{{" in c[k] and not (isinstance(c, dict) and k == "action")
    ]
    for _ in range(draw(st.integers(0, 3))):
        if not strings:
            break
        container, key = strings[draw(st.integers(0, len(strings) - 1))]
        container[key] = draw(
            st.one_of(
                st.sampled_from(HOSTILE_TEMPLATES),
                st.sampled_from(
                    [
                        "{{ trigger }}",
                        "{{ trigger | tojson }}",
                        "{{ trigger.items() | list }}",
                        "{{ steps }}",
                        "{{ none }}",
                        "{{ [] }}",
                        "{{ {} }}",
                        "{{ 10**300 }}",
                        "{{ 'x' * 999999 }}",
                        "{{ range(200001) | list }}",
                    ]
                ),
            )
        )
    return base


@st.composite
def events(draw: st.DrawFn) -> Any:
    base = draw(st.sampled_from(BASE_EVENTS))
    if draw(st.integers(0, 4)) == 0:
        return copy.deepcopy(base)
    return draw(mutated_tree(base, max_mutations=5))


@st.composite
def event_texts(draw: st.DrawFn) -> str | bytes:
    tree = draw(events())
    return draw(edited_text(dump(tree, as_json=draw(st.booleans()))))


# -- responses of a fake API -----------------------------------------------------------------------

RESPONSE_BODIES = st.one_of(
    st.just({}),
    VALUES,
    st.fixed_dictionaries(
        {
            "contact": st.one_of(st.none(), VALUES, st.just({"id": "c1", "email": "a@b.c"})),
            "tasks": st.one_of(st.none(), VALUES, st.just([{"id": "t1", "title": "x"}])),
            "notes": st.one_of(st.none(), VALUES, st.just([{"id": "n1", "body": "<b>x</b>"}])),
            "events": st.one_of(st.none(), VALUES),
            "data": st.one_of(st.none(), VALUES, st.just({"users": [], "tasks": [], "id": 1})),
        }
    ),
)

RESPONSES = st.tuples(
    st.sampled_from([200, 200, 200, 201, 204, 400, 401, 404, 409, 422, 429, 500, 503]),
    RESPONSE_BODIES,
    st.sampled_from(["json", "json", "text", "empty", "html"]),
    st.sampled_from([None, "0", "1", "-5", "soon", "99999999", "Wed, 21 Oct 2015 07:28:00 GMT"]),
)
