"""How catalog operations are named: ``ghl.<operationId>`` and short ``connecteam.<name>``.

GoHighLevel
    An operation is ``ghl.<operationId>``, exactly as the official document spells it. When the
    same operationId appears in more than one document (the 2025 documents reuse
    ``create-association`` and ``create-``/``update-``/``delete-custom-field``), the plain name goes
    to the document the operationId is about: the one whose file name, singular or plural, is
    the operationId's noun (``create-association`` -> ``associations.json``, ``*-custom-field`` ->
    ``custom-fields.json``); if no document matches, the first file name in alphabetical order.
    Every other copy is named ``ghl.<document>.<operationId>``, with the document's file name
    without ``.json``: ``ghl.contacts.create-association`` (POST
    /contacts/bulk/tags/update/{type}), ``ghl.locations.create-custom-field`` (POST
    /locations/{locationId}/customFields).

Connecteam
    Its operationIds are FastAPI's ``<function>_<path>_<method>``
    (``get_users_users_v1_users_get``). The name is the function part in kebab case
    (``connecteam.get-users``). A few functions are renamed because the bare function name would be
    ambiguous or misleading (:data:`CONNECTEAM_RENAMES`, for example the daily-info notes become
    ``create-daily-note`` so that ``create-note`` is the user note). Names that still collide are
    made unique in this order: (1) when the colliding operations belong to different API versions
    (``/v1/``, ``/v2/``), the lowest version keeps the name and the others get ``-v<N>``
    (``get-shifts`` and ``get-shifts-v2``); (2) otherwise each gets ``-<first path segment>``;
    (3) a number, in path order, as a last resort. The generator fails if names are not unique.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

__all__ = ["CONNECTEAM_RENAMES", "connecteam_names", "ghl_names", "kebab"]

# operationId -> name, for functions whose own name collides or misleads.
CONNECTEAM_RENAMES: dict[str, str] = {
    "get_custom_fields_users_v1_custom_field_categories_get": "get-custom-field-categories",
    "assign_user_to_policy_company_policies_v1_pay_rule_policies__payRulePolicyId__assignments_put": (
        "assign-user-to-pay-rule-policy"
    ),
    "assign_user_to_policy_time_off_v1_time_off_policies__timeOffPolicyId__assignments_put": (
        "assign-user-to-time-off-policy"
    ),
    "create_note_daily_info_v1_daily_notes_post": "create-daily-note",
    "get_note_daily_info_v1_daily_note__noteId__get": "get-daily-note",
    "update_note_daily_info_v1_daily_note__noteId__put": "update-daily-note",
    "delete_note_daily_info_v1_daily_note__noteId__delete": "delete-daily-note",
    "get_unavailabilities_scheduler_v1_schedulers_user_unavailability_get": (
        "get-user-unavailabilities"
    ),
    "get_unavailabilities_scheduler_v2_schedulers_user_unavailability_get": (
        "get-user-unavailabilities"
    ),
    "get_unavailabilities_scheduler_v1_schedulers__schedulerId__unavailabilities_get": (
        "get-scheduler-unavailabilities"
    ),
}


def kebab(text: str) -> str:
    """``get_users`` / ``getUsers`` / ``Get users`` -> ``get-users``."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", text)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") else word


def ghl_names(ops: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Names for ``(document stem, operationId)`` pairs, by the rule in the module docstring."""
    by_id: dict[str, list[str]] = defaultdict(list)
    for stem, op_id in ops:
        by_id[op_id].append(stem)
    names: dict[tuple[str, str], str] = {}
    for op_id, stems in by_id.items():
        if len(stems) == 1:
            names[(stems[0], op_id)] = f"ghl.{op_id}"
            continue
        noun = op_id.split("-", 1)[-1]
        owners = sorted(s for s in stems if _singular(s) in (noun, _singular(noun)))
        owner = owners[0] if owners else sorted(stems)[0]
        for stem in stems:
            names[(stem, op_id)] = f"ghl.{op_id}" if stem == owner else f"ghl.{stem}.{op_id}"
    return names


def _function_name(op_id: str, method: str, path: str) -> str:
    """The FastAPI function name inside ``<function>_<path>_<method>``, or the whole id."""
    suffix = re.sub(r"\W", "_", path) + "_" + method.lower()
    if op_id.endswith(suffix) and len(op_id) > len(suffix):
        return op_id[: -len(suffix)]
    return op_id


def _version(path: str) -> int:
    found = re.search(r"/v(\d+)(/|$)", path)
    return int(found.group(1)) if found else 0


def connecteam_names(ops: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """Names (``connecteam.<name>``) for ``(operationId, method, path)``, by operationId."""
    entries = list(ops)
    base = {
        op_id: CONNECTEAM_RENAMES.get(op_id) or kebab(_function_name(op_id, method, path))
        for op_id, method, path in entries
    }
    paths = {op_id: path for op_id, _, path in entries}
    groups: dict[str, list[str]] = defaultdict(list)
    for op_id, _, _ in entries:
        groups[base[op_id]].append(op_id)
    final: dict[str, str] = {}
    for name, members in groups.items():
        if len(members) == 1:
            final[members[0]] = name
            continue
        versions = {m: _version(paths[m]) for m in members}
        if len(set(versions.values())) > 1:
            lowest = min(versions.values())
            named = {m: name if v == lowest else f"{name}-v{v}" for m, v in versions.items()}
        else:
            named = {m: f"{name}-{kebab(paths[m].strip('/').split('/')[0])}" for m in members}
        counts: dict[str, list[str]] = defaultdict(list)
        for m in sorted(members, key=lambda m: paths[m]):
            counts[named[m]].append(m)
        for n, ms in counts.items():
            for i, m in enumerate(ms):
                final[m] = n if i == 0 else f"{n}-{i + 1}"
    result = {op_id: f"connecteam.{n}" for op_id, n in final.items()}
    if len(set(result.values())) != len(result):
        dupes = sorted({n for n in result.values() if list(result.values()).count(n) > 1})
        raise ValueError(f"Connecteam operation names are not unique: {dupes}")
    return result
