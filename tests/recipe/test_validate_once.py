"""`connector validate` on a step's ``once:``: the look-up's action and ``with:``, and the templates
of ``key``, ``link`` and the look-up, each problem at the node it is about; and keys and step ids
with line breaks, whose problems stay one line each."""

from __future__ import annotations

import pytest

from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.language import load_recipe_text, validate_recipe
from connector.language.paths import child_path, parent_path

HEAD = (
    "name: t\ntrigger: {app: manual, event: go}\nsteps:\n"
    "  - id: up\n    action: ghl.upsert-contact\n    with: {email: a@b.c}\n    once:\n"
)  # `once:` is line 7; its members start on line 8, column 7


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg, _report = default_registry()
    return reg


def found(text: str, registry: Registry) -> list[str]:
    return [str(p) for p in validate_recipe(load_recipe_text(text, "t.yaml"), registry)]


def test_an_unknown_lookup_action_is_reported_at_it_with_close_matches(
    registry: Registry,
) -> None:
    text = HEAD + (
        "      key: k\n"
        "      lookup:\n"
        "        action: ghl.get-contactz\n"
        '        found: "{{ output }}"\n'
    )
    assert found(text, registry) == [
        "t.yaml:10:17: error: $.steps[0].once.lookup.action: unknown action 'ghl.get-contactz'; "
        "did you mean 'ghl.get-contact' or 'ghl.get-contacts' or 'ghl.upsert-contact'?"
    ]


def test_a_lookup_action_nothing_resembles_points_at_the_catalog(registry: Registry) -> None:
    text = HEAD + '      key: k\n      lookup: {action: "gh l.nosuch", found: "{{ output }}"}\n'
    assert found(text, registry) == [
        "t.yaml:9:24: error: $.steps[0].once.lookup.action: unknown action 'gh l.nosuch'; "
        "`connector catalog list` shows the operations"
    ]


def test_a_lookups_with_is_checked_against_its_operation(registry: Registry) -> None:
    text = HEAD + (
        "      key: k\n"
        "      lookup:\n"
        "        action: ghl.get-contact\n"
        "        with: {contactid: c}\n"
        '        found: "{{ output }}"\n'
    )
    problems = found(text, registry)
    assert [p.split(": ", 3)[:3] for p in problems] == [
        ["t.yaml:11:9", "error", "$.steps[0].once.lookup.with"],
        ["t.yaml:11:16", "error", "$.steps[0].once.lookup.with.contactid"],
    ]
    assert "missing required parameter 'contactId'" in problems[0]
    assert (
        "unknown parameter 'contactid' of ghl.get-contact; did you mean 'contactId'?"
        in (problems[1])
    )


def test_a_deprecated_lookup_action_is_a_warning_naming_its_replacement(
    registry: Registry,
) -> None:
    text = HEAD + '      key: k\n      lookup: {action: ghl.get-contacts, found: "{{ output }}"}\n'
    assert found(text, registry) == [
        "t.yaml:9:24: warning: $.steps[0].once.lookup.action: ghl.get-contacts (GET /contacts/) "
        "is deprecated (its API document says so); use ghl.search-contacts-advanced "
        "(POST /contacts/search) instead"
    ]


def test_an_unknown_filter_in_once_link_is_reported_at_its_template(registry: Registry) -> None:
    text = HEAD + (
        "      key: k\n"
        "      link:\n"
        "        kind: contact\n"
        '        ghl_id: "{{ output.contact.id | nosuchfilter }}"\n'
        "        connecteam_id: '1'\n"
    )
    assert found(text, registry) == [
        "t.yaml:11:17: error: $.steps[0].once.link.ghl_id: unknown filter 'nosuchfilter'"
    ]


def test_once_templates_are_checked_as_other_templates_in_their_scope(
    registry: Registry,
) -> None:
    text = HEAD + (
        '      key: "k:{{ trigger.id | lenght }}"\n'
        "      link:\n"
        "        kind: contact\n"
        '        ghl_id: "{{ output.contact.id }"\n'
        '        connecteam_id: "{{ outptu }}"\n'
        "        meta: {n: \"{{ 'x' * 100000000 }}\"}\n"
        "      lookup:\n"
        "        action: ghl.get-contact\n"
        '        with: {contactId: "{{ item }}"}\n'
        '        found: "{{ output.contact | nosuch }}"\n'
    )
    assert found(text, registry) == [
        "t.yaml:8:12: error: $.steps[0].once.key: unknown filter 'lenght'; did you mean 'length'?",
        "t.yaml:11:17: error: $.steps[0].once.link.ghl_id: template syntax error: unexpected '}'",
        "t.yaml:12:24: error: $.steps[0].once.link.connecteam_id: 'outptu' is undefined; "
        "did you mean 'output'?",
        "t.yaml:13:19: error: $.steps[0].once.link.meta.n: template stopped: repetition would "
        "make 100,000,000 items (a constant expression here, found without running it)",
        "t.yaml:16:27: error: $.steps[0].once.lookup.with.contactId: 'item' is undefined here: "
        "it exists only in the if: and with: of a step that has foreach:",
        "t.yaml:17:16: error: $.steps[0].once.lookup.found: unknown filter 'nosuch'",
    ]


def test_output_is_only_in_link_and_found_and_item_in_a_foreach_steps_once(
    registry: Registry,
) -> None:
    text = (
        "name: t\ntrigger: {app: manual, event: go}\nsteps:\n"
        "  - id: up\n    action: ghl.upsert-contact\n"
        '    foreach: "{{ [1, 2] }}"\n'
        '    with: {email: "{{ item }}@b.c"}\n'
        "    once:\n"
        '      key: "k:{{ item }}:{{ output }}"\n'
        "      link: {kind: contact, ghl_id: '{{ output.contact.id }}', connecteam_id: '{{ item }}'}\n"
    )
    assert found(text, registry) == [
        "t.yaml:9:12: error: $.steps[0].once.key: 'output' is undefined (this template can use "
        "env, index, item, steps, trigger, vars)"
    ]


@pytest.mark.parametrize("key", ["a\nb", "a\rb", "a\tb", "a\x85b", "a\u2028b", "a'b\\c"])
def test_a_quoted_key_is_one_line_and_its_parent_is_found_again(key: str) -> None:
    path = child_path("$.steps[0].with", key)
    assert len(path.splitlines()) == 1 and path.isprintable()
    assert parent_path(path) == "$.steps[0].with"
    assert child_path("$", "a b") == "$['a b']"


def test_a_step_key_with_a_line_break_is_one_escaped_line(registry: Registry) -> None:
    text = (
        "name: t\ntrigger: {app: manual, event: go}\nsteps:\n"
        '  - id: c\n    action: ghl.get-contact\n    with: {contactId: c}\n    "a\\u2028b": 1\n'
    )
    problems = found(text, registry)
    assert problems[0].startswith("t.yaml:7:5: error: $.steps[0]['a\\u2028b']: unknown key")
    assert all(len(p.splitlines()) == 1 for p in problems)


def test_step_ids_in_messages_are_quoted_and_escaped(registry: Registry) -> None:
    text = (
        "name: t\ntrigger: {app: manual, event: go}\nsteps:\n"
        '  - id: "a\\nb"\n    action: ghl.get-contact\n    with: {contactId: c}\n'
        "  - id: c\n    action: ghl.get-contact\n"
        "    with: {contactId: \"{{ steps.nosuch.output }}{{ steps['a\\nb'].outptu }}\"}\n"
    )
    problems = found(text, registry)[1:]  # after the id's own pattern error
    assert problems == [
        "t.yaml:9:23: error: $.steps[1].with.contactId: there is no step 'nosuch' "
        "(steps before this: 'a\\nb')",
        "t.yaml:9:23: error: $.steps[1].with.contactId: steps['a\\nb'] has no 'outptu'; "
        "did you mean 'output'?",
    ]
