"""`connector webhooks register connecteam`: the URL lands in Connecteam's webhook settings (the
sandbox's, through the same API), and the secret in it is never printed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.sandbox.server import RunningSandbox, start_in_thread


@pytest.fixture()
def sandbox() -> Iterator[RunningSandbox]:
    with start_in_thread() as running:
        yield running
        running.app.close()


def test_register_makes_one_webhook_per_feature(sandbox: RunningSandbox) -> None:
    env = {**sandbox.env, "CONNECTEAM_WEBHOOK_SECRET": "s3cret-in-url"}
    result = CliRunner().invoke(
        cli,
        ["webhooks", "register", "connecteam", "--url", "http://127.0.0.1:9/", "--json"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "s3cret-in-url" not in result.output
    made = json.loads(result.output)
    assert sorted(h["featureType"] for h in made) == ["tasks", "users"]
    listed = httpx.get(
        f"{sandbox.url}/connecteam/settings/v1/webhooks",
        headers={"X-API-KEY": sandbox.env["CONNECTEAM_API_KEY"]},
    ).json()["data"]
    hooks = listed["webhooks"] if isinstance(listed, dict) else listed
    urls = {h["url"] for h in hooks}
    assert urls == {"http://127.0.0.1:9/webhooks/connecteam/s3cret-in-url"}
    users = [h for h in hooks if h["featureType"] == "users"]
    assert "user_created" in users[0]["eventTypes"]


def test_register_without_a_secret_says_what_to_set(sandbox: RunningSandbox) -> None:
    result = CliRunner().invoke(
        cli, ["webhooks", "register", "connecteam", "--url", "https://x.example"], env=sandbox.env
    )
    assert result.exit_code == 2
    assert "CONNECTEAM_WEBHOOK_SECRET" in result.output
    assert "Traceback" not in result.output
