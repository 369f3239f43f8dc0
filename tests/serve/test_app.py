"""The routes serve mounts for an app's webhooks: what the app declares, in the order it says
(admit, read, verify, parse), and what each refusal is answered."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from connector import hookimpl
from connector.apps import App
from connector.apps.events import Delivered, Event, Rejected, Webhook
from connector.apps.plugins import default_registry
from connector.apps.registry import registry_from_plugins
from connector.persistence.database import close_all
from connector.runtime.durable import Runtime
from connector.serve.app import ServeSettings, build_app
from connector.serve.intake import Intake
from connector.serve.metrics import Metrics

with warnings.catch_warnings():  # Starlette would rather have httpx2; httpx is what we have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SECRET = "mine-secret"


def _settings(env: Mapping[str, str]) -> str | None:
    return env.get("MINE_SECRET")


def _admit(secret: str | None, path: Mapping[str, str], headers: Mapping[str, str]) -> None:
    if path.get("tenant") == "closed":
        raise Rejected("Not Found", status=404, kind="secret")


def _verify(secret: str | None, body: bytes, headers: Mapping[str, str]) -> None:
    if secret is None or headers.get("x-mine-token") != secret:
        raise Rejected("x-mine-token is wrong")


def _parse(secret: str | None, payload: dict[str, Any], now: float) -> Delivered:
    if payload.get("boom"):
        raise ValueError("a bug in the app's parser")
    if "id" not in payload:
        raise Rejected("no id", status=400)
    return Delivered([Event("mine", "thing", payload, f"mine:{payload['id']}")], payload["id"])


MINE = App(
    name="mine",
    title="Mine",
    operations={},
    default_base_url="http://mine.example",
    webhooks=(
        Webhook(
            path="mine/{tenant}", settings=_settings, admit=_admit, verify=_verify, parse=_parse
        ),
    ),
)


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    registry, _ = default_registry([], home=Path("/nonexistent"))
    registry.apps["mine"] = MINE
    runtime = Runtime(registry, {"CONNECTOR_HOME": str(tmp_path / "home")})
    intake = Intake(runtime, [], metrics=Metrics())
    settings = ServeSettings.from_env(registry.apps.values(), {"MINE_SECRET": SECRET})
    with TestClient(build_app(intake, settings)) as test_client:
        yield test_client
    runtime.close()
    close_all()


def _post(client: TestClient, body: Any, token: str = SECRET, tenant: str = "t1") -> Any:
    return client.post(f"/webhooks/mine/{tenant}", json=body, headers={"x-mine-token": token})


def test_an_apps_webhook_is_mounted_and_its_events_are_taken(client: TestClient) -> None:
    answer = _post(client, {"id": "d1"})
    assert answer.status_code == 200
    assert answer.json() == {"runs": [], "dropped": {"no_recipe": 1}}
    assert _post(client, {"id": "d1"}).json() == {"runs": [], "duplicate": True}


def test_each_refusal_is_answered_as_the_app_says(client: TestClient) -> None:
    assert _post(client, {"id": "d2"}, tenant="closed").status_code == 404
    wrong = _post(client, {"id": "d2"}, token="guess")
    assert (wrong.status_code, wrong.json()) == (401, {"error": "x-mine-token is wrong"})
    assert _post(client, {"no": "id"}).status_code == 400
    assert _post(client, ["not", "an", "object"]).status_code == 400
    metrics = client.get("/metrics").text
    for reason in ("secret", "signature", "malformed"):
        line = f'connector_events_refused_total{{reason="{reason}",source="mine"}}'
        assert line in metrics, reason


def test_a_bug_in_the_apps_parser_is_a_500_not_a_traceback(client: TestClient) -> None:
    answer = _post(client, {"id": "d3", "boom": True})
    assert (answer.status_code, answer.json()) == (500, {"error": "the delivery could not be read"})


def test_a_webhook_path_outside_the_apps_name_is_refused() -> None:
    stray = dataclasses.replace(MINE, webhooks=(Webhook(path="ghl", parse=_parse),))

    @hookimpl
    def register_apps(register: Callable[[App], None]) -> None:
        register(stray)

    registry = registry_from_plugins({"stray": SimpleNamespace(register_apps=register_apps)})
    assert "webhook path 'ghl' must be 'mine'" in registry.failures["stray"]
