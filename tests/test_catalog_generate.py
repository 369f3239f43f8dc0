"""The catalog generator: the committed catalog is exactly what the vendors' documents give."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.catalog import DATA_DIR, load_operations, load_triggers
from connector.catalog.generate import (
    GenerateError,
    build_ghl,
    default_connecteam_file,
    default_ghl_dir,
    generate,
    main,
)
from connector.catalog.naming import connecteam_names, ghl_names, kebab
from connector.catalog.resolve import DocumentSet
from connector.catalog.triggers import webhook_event_name

HERE = Path(__file__).parent
SPECS = HERE / "catalog" / "specs"

# the documents are found, and their absence skips (or fails under CI), in tests/conftest.py
needs_specs = pytest.mark.needs_specs

SEED_ENDPOINTS = [
    ("GET", "/contacts/{contactId}"),
    ("PUT", "/contacts/{contactId}"),
    ("DELETE", "/contacts/{contactId}"),
    ("GET", "/contacts/"),
    ("POST", "/contacts/"),
    ("GET", "/contacts/business/{businessId}"),
    ("GET", "/contacts/{contactId}/tasks"),
    ("GET", "/contacts/{contactId}/tasks/{taskId}"),
    ("PUT", "/contacts/{contactId}/tasks/{taskId}"),
    ("DELETE", "/contacts/{contactId}/tasks/{taskId}"),
    ("PUT", "/contacts/{contactId}/tasks/{taskId}/completed"),
    ("POST", "/contacts/{contactId}/tasks"),
    ("GET", "/contacts/{contactId}/notes"),
    ("GET", "/contacts/{contactId}/notes/{id}"),
    ("GET", "/contacts/{contactId}/appointments"),
    ("POST", "/contacts/{contactId}/tags"),
]


def _raw(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA_DIR / name).read_text(encoding="utf-8"))
    return data


def _spec_operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch"):
                yield method.upper(), path, op


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, sub in value.items():
            if key == "$ref":
                yield sub
            else:
                yield from _refs(sub)
    elif isinstance(value, list):
        for sub in value:
            yield from _refs(sub)


@needs_specs
def test_regenerating_gives_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    for name in ("ghl.json", "connecteam.json", "triggers.json"):
        fresh = (tmp_path / name).read_bytes()
        assert fresh == (DATA_DIR / name).read_bytes(), (
            f"{name} is stale: run connector catalog generate"
        )
        assert fresh.endswith(b"}\n")


@needs_specs
def test_every_operation_of_every_document_is_catalogued() -> None:
    ghl, connecteam = load_operations("ghl"), load_operations("connecteam")
    assert len(ghl) == 185
    assert len(connecteam) == 145
    in_catalog = {(op.source, op.method, op.path) for op in ghl.values()}
    for file in sorted(default_ghl_dir().glob("*.json")):
        for method, path, _ in _spec_operations(json.loads(file.read_text())):
            assert (file.name, method, path) in in_catalog
    doc = json.loads(default_connecteam_file().read_text())
    assert {(m, p) for m, p, _ in _spec_operations(doc)} == {
        (op.method, op.path) for op in connecteam.values()
    }


@needs_specs
def test_the_seed_endpoints_are_there_with_their_exact_method_and_path() -> None:
    ghl = {(op.method, op.path) for op in load_operations("ghl").values()}
    for endpoint in SEED_ENDPOINTS:
        assert endpoint in ghl


@needs_specs
def test_no_reference_is_left_unresolved_except_recursive_defs() -> None:
    for name in ("ghl.json", "connecteam.json", "triggers.json"):
        entries = _raw(name).get("operations") or _raw(name)["triggers"]
        for entry in entries:
            text = json.dumps(entry)
            for ref in _refs(entry):
                assert ref.startswith("#/$defs/"), (entry.get("name") or entry["event"], ref)
                assert f'"{ref.rsplit("/", 1)[-1]}": ' in text  # its $defs entry is there


@needs_specs
def test_create_task_knows_where_each_field_goes_and_which_are_required() -> None:
    op = load_operations("ghl")["ghl.create-task"]
    assert (op.method, op.path) == ("POST", "/contacts/{contactId}/tasks")
    where = {p.name: (p.location, p.required) for p in op.parameters}
    assert where["contactId"] == ("path", True)
    assert where["title"] == ("body", True)
    assert where["dueDate"] == ("body", True)
    assert where["completed"] == ("body", True)
    assert where["assignedTo"] == ("body", False)
    assert op.body_required and op.body_content_type == "application/json"
    assert op.response_status == 201
    # The engine sends Version and Authorization itself: they are not parameters.
    assert "Version" not in where and "Authorization" not in where


@needs_specs
def test_scopes_come_from_each_operations_security() -> None:
    ghl, connecteam = load_operations("ghl"), load_operations("connecteam")
    assert ghl["ghl.get-contact"].scopes == ("contacts.readonly",)
    assert ghl["ghl.create-task"].scopes == ("contacts.write",)
    assert connecteam["connecteam.get-users"].scopes == ("users.read",)


@needs_specs
def test_version_header_values() -> None:
    ghl = load_operations("ghl")
    by_source: dict[str, set[str | None]] = {}
    for op in ghl.values():
        by_source.setdefault(op.source, set()).add(op.version)
    assert by_source["contacts.json"] == {"2021-07-28"}
    assert by_source["calendars.json"] == {"2021-04-15"}
    assert "2021-04-15" in by_source["conversations.json"]
    assert ghl["ghl.get-access-token"].version is None  # POST /oauth/token sends no Version
    assert {op.version for op in load_operations("connecteam").values()} == {None}


@needs_specs
def test_reused_ghl_operation_ids_are_named_by_the_documented_rule() -> None:
    ghl = load_operations("ghl")
    expected = {
        "ghl.create-association": ("associations.json", "POST", "/associations/"),
        "ghl.contacts.create-association": (
            "contacts.json",
            "POST",
            "/contacts/bulk/tags/update/{type}",
        ),
        "ghl.create-custom-field": ("custom-fields.json", "POST", "/custom-fields/"),
        "ghl.locations.create-custom-field": (
            "locations.json",
            "POST",
            "/locations/{locationId}/customFields",
        ),
        "ghl.update-custom-field": ("custom-fields.json", "PUT", "/custom-fields/{id}"),
        "ghl.locations.update-custom-field": (
            "locations.json",
            "PUT",
            "/locations/{locationId}/customFields/{id}",
        ),
        "ghl.delete-custom-field": ("custom-fields.json", "DELETE", "/custom-fields/{id}"),
        "ghl.locations.delete-custom-field": (
            "locations.json",
            "DELETE",
            "/locations/{locationId}/customFields/{id}",
        ),
    }
    for name, (source, method, path) in expected.items():
        op = ghl[name]
        assert (op.source, op.method, op.path) == (source, method, path)
    qualified = [n for n in ghl if n.count(".") > 1]
    assert sorted(qualified) == sorted(n for n in expected if n.count(".") > 1)


@needs_specs
def test_connecteam_names_are_short_unique_kebab_case() -> None:
    ops = load_operations("connecteam")
    assert all(re.fullmatch(r"connecteam\.[a-z0-9]+(-[a-z0-9]+)*", n) for n in ops)
    assert len({op.operation_id for op in ops.values()}) == 145
    where = {name: (op.method, op.path) for name, op in ops.items()}
    assert where["connecteam.get-users"] == ("GET", "/users/v1/users")
    assert where["connecteam.create-task"] == ("POST", "/tasks/v1/taskboards/{taskBoardId}/tasks")
    assert where["connecteam.create-note"] == ("POST", "/users/v1/users/{userId}/notes")
    assert where["connecteam.create-daily-note"] == ("POST", "/daily-info/v1/daily-notes")
    assert where["connecteam.get-shifts"][1].startswith("/scheduler/v1/")
    assert where["connecteam.get-shifts-v2"][1].startswith("/scheduler/v2/")


@needs_specs
def test_pagination_styles_are_detected() -> None:
    ghl, connecteam = load_operations("ghl"), load_operations("connecteam")
    contacts = ghl["ghl.get-contacts"].pagination
    assert contacts is not None and contacts["style"] == "cursor"
    assert contacts["cursor_params"] == {
        "startAfter": "meta.startAfter",
        "startAfterId": "meta.startAfterId",
    }
    business = ghl["ghl.get-contacts-by-businessId"].pagination
    assert business is not None
    assert (business["style"], business["offset_param"]) == ("offset", "skip")
    users = connecteam["connecteam.get-users"].pagination
    assert users == {
        "style": "offset",
        "limit_param": "limit",
        "offset_param": "offset",
        "next_offset": "paging.offset",
        "items": "data.users",
        "max_limit": 500,
    }
    assert contacts["max_limit"] == 100  # from the description: "maximum up to 100"
    search = ghl["ghl.search-contacts-advanced"]
    assert search.pagination is not None
    assert search.pagination["style"] == "search_after"
    assert (search.pagination["limit_param"], search.pagination["max_limit"]) == ("pageLimit", 500)
    assert search.pagination["page_param"] == "page"
    # the search's body fields, which its document leaves out
    assert {"locationId", "page", "pageLimit", "searchAfter", "filters"} <= {
        p.name for p in search.parameters
    }
    # and its response, which its document leaves without a schema: {contacts, total}, each
    # contact as GET /contacts/{contactId} documents one, with the searchAfter it pages on
    assert search.response_schema is not None
    contact = search.response_schema["properties"]["contacts"]["items"]["properties"]
    assert {"id", "email", "firstName", "dateUpdated", "searchAfter"} <= set(contact)
    assert search.response_schema["properties"]["total"] == {"type": "number"}
    assert ghl["ghl.get-contact"].pagination is None


@needs_specs
def test_trigger_catalog_holds_every_event() -> None:
    events = load_triggers()
    by_app: dict[str, list[str]] = {}
    for event in events:
        by_app.setdefault(event.app, []).append(event.event)
    assert sorted(by_app["ghl"]) == sorted(
        [
            "ContactCreate",
            "ContactUpdate",
            "ContactDelete",
            "ContactTagUpdate",
            "ContactDndUpdate",
            "TaskCreate",
            "TaskComplete",
            "TaskDelete",
            "NoteCreate",
            "NoteUpdate",
            "NoteDelete",
            "AppointmentCreate",
            "AppointmentUpdate",
            "AppointmentDelete",
        ]
    )
    # the seed's own events, and task.updated (found by polling: Connecteam sends no webhook)
    seed = {
        "contact.selected",
        "contact.created",
        "contact.updated",
        "task.created",
        "task.updated",
    }
    assert seed <= set(by_app["connecteam"])
    assert len(by_app["connecteam"]) == 41 + 5
    assert by_app["schedule"] == ["cron"] and by_app["manual"] == ["*"]
    assert len(events) == 14 + 41 + 5 + 2
    manual = next(e for e in events if e.app == "manual")
    assert manual.any_event
    selected = next(e for e in events if e.event == "contact.selected")
    assert selected.payload_schema is not None
    assert set(selected.payload_schema["required"]) == {"contactId", "userId"}
    user_created = next(e for e in events if e.event == "user_created")
    assert user_created.payload_schema is not None
    assert "eventType" in user_created.payload_schema["properties"]


def test_webhook_keys_become_snake_case_event_names() -> None:
    assert webhook_event_name("User created") == "user_created"
    assert (
        webhook_event_name("Time activity admin approved clock out without NFC request")
        == "time_activity_admin_approved_clock_out_without_nfc_request"
    )


def test_recursive_and_cross_file_references_are_resolved() -> None:
    docs = DocumentSet()
    catalog = build_ghl(SPECS / "apps", docs)
    ops = {op["name"]: op for op in catalog["operations"]}
    update = ops["ghl.update-node"]
    # A recursive schema keeps a $ref into $defs of the same schema.
    body = update["body"]["schema"]
    assert body["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert body["$defs"]["Node"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    # A reference into ../common/shared.json is inlined.
    assert ops["ghl.get-error"]["response"]["schema"]["properties"] == {
        "message": {"type": "string"}
    }
    assert update["version"] == "2021-07-28"
    assert update["scopes"] == ["nodes.write"]
    assert update["response"]["status"] == 201


def test_a_body_field_named_like_a_query_parameter_becomes_body_dot_name() -> None:
    catalog = build_ghl(SPECS / "apps", DocumentSet())
    update = next(op for op in catalog["operations"] if op["name"] == "ghl.update-node")
    params = [(p["name"], p["in"], p["required"]) for p in update["parameters"]]
    assert params == [
        ("nodeId", "path", True),
        ("name", "query", False),
        ("body.name", "body", True),
        ("children", "body", False),
    ]


def test_generate_reports_a_folder_without_documents(tmp_path: Path) -> None:
    with pytest.raises(GenerateError, match="no GoHighLevel documents"):
        generate(tmp_path, SPECS / "apps" / "tree.json")


def test_ghl_duplicate_without_an_owning_document_goes_to_the_first_file() -> None:
    names = ghl_names([("zeta", "do-thing"), ("alpha", "do-thing"), ("alpha", "other")])
    assert names == {
        ("alpha", "do-thing"): "ghl.do-thing",
        ("zeta", "do-thing"): "ghl.zeta.do-thing",
        ("alpha", "other"): "ghl.other",
    }


def test_connecteam_collisions_fall_back_to_path_segment_then_number() -> None:
    names = connecteam_names(
        [
            ("list_items_a_v1_items_get", "GET", "/a/v1/items"),
            ("list_items_b_v1_items_get", "GET", "/b/v1/items"),
            ("list_items_b_v1_things_get", "GET", "/b/v1/things"),
        ]
    )
    assert names == {
        "list_items_a_v1_items_get": "connecteam.list-items-a",
        "list_items_b_v1_items_get": "connecteam.list-items-b",
        "list_items_b_v1_things_get": "connecteam.list-items-b-2",
    }
    assert kebab("getUsers") == "get-users"


@needs_specs
def test_the_contacts_v3_document_gives_a_second_version_of_the_contacts_operations() -> None:
    ghl = load_operations("ghl")
    v3_doc = json.loads((default_ghl_dir() / "v3" / "contacts-v3.json").read_text())
    contacts = {op.operation_id: op for op in ghl.values() if op.source == "contacts.json"}
    for method, path, spec in _spec_operations(v3_doc):
        v3 = contacts[spec["operationId"]].at_version("v3")
        assert v3 is not None and v3.variant
        assert (v3.source, v3.method, v3.path, v3.version) == (
            "contacts-v3.json",
            method,
            path,
            "v3",
        )
    get = ghl["ghl.get-contact"]
    assert get.versions == ("2021-07-28", "v3")
    assert get.version == "2021-07-28" and get.at_version("2021-07-28") is get  # the default

    def dnd(op: Any) -> set[str]:
        return set(
            op.response_schema["properties"]["contact"]["properties"]["dndSettings"]["properties"]
        )

    assert "Email" in dnd(get) and "email" in dnd(get.variants["v3"])
    update = ghl["ghl.update-contact"]
    assert "succeded" in update.response_schema["properties"]
    v3_props = update.variants["v3"].response_schema["properties"]
    assert "succeeded" in v3_props and "succeded" not in v3_props
    # v3 drops GET /contacts/ and renames removeAll
    assert ghl["ghl.get-contacts"].versions == ("2021-07-28",)
    every = ghl["ghl.remove-contact-from-every-campaign"]
    assert every.path.endswith("/removeAll")
    assert every.variants["v3"].path == "/contacts/{contactId}/campaigns/remove-all"
    # the overlays of the contact search apply to its v3 version too
    search = ghl["ghl.search-contacts-advanced"].variants["v3"]
    assert search.pagination and search.pagination["style"] == "search_after"
    assert search.param("pageLimit") is not None
    assert "v3/contacts-v3.json" in _raw("ghl.json")["documents"]


def test_a_document_in_a_version_folder_gives_versions_of_its_namesakes(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(SPECS, tmp_path / "specs")
    apps = tmp_path / "specs" / "apps"
    doc = json.loads((apps / "tree.json").read_text())
    put = doc["paths"]["/nodes/{nodeId}"]["put"]
    put["parameters"][0]["schema"]["enum"] = ["v9"]
    doc["components"]["schemas"]["Node"]["properties"]["label"] = {"type": "string"}
    del doc["paths"]["/errors"]  # v9 has no get-error
    doc["paths"]["/nodes"] = {
        "post": {
            "operationId": "create-node",
            "parameters": [put["parameters"][0]],
            "responses": {"201": {"description": "ok"}},
        }
    }
    (apps / "v9").mkdir()
    (apps / "v9" / "tree-v9.json").write_text(json.dumps(doc))
    shutil.copytree(SPECS / "common", apps / "common")  # ../common, seen from v9/
    catalog = build_ghl(apps, DocumentSet())
    ops = {op["name"]: op for op in catalog["operations"]}
    assert catalog["documents"] == ["tree.json", "v9/tree-v9.json"]
    update = ops["ghl.update-node"]
    assert update["version"] == "2021-07-28"
    v9 = update["versions"]["v9"]
    assert v9["version"] == "v9" and v9["source"] == "tree-v9.json"
    assert "label" in v9["response"]["schema"]["properties"]
    assert "label" not in update["response"]["schema"]["properties"]
    assert "versions" not in ops["ghl.get-error"]
    # an operation only the new version has is an operation of its own
    assert ops["ghl.create-node"]["version"] == "v9"


def test_a_version_document_that_repeats_the_version_of_the_original_is_refused(
    tmp_path: Path,
) -> None:
    import shutil

    shutil.copytree(SPECS, tmp_path / "specs")
    apps = tmp_path / "specs" / "apps"
    (apps / "v2").mkdir()
    shutil.copy(apps / "tree.json", apps / "v2" / "tree-v2.json")
    shutil.copytree(SPECS / "common", apps / "common")
    with pytest.raises(GenerateError, match=r"v2/tree-v2\.json: update-node has Version"):
        build_ghl(apps, DocumentSet())
