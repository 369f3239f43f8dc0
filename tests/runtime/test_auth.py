"""Connections end to end, over real HTTP against the sandbox (issue: OAuth 2.0 connections).

``connector auth login ghl --no-browser`` is driven as a person would: the test reads the URL it
prints and opens it (the sandbox's authorize page approves and redirects to the login's loopback
server). Every claim is checked by the sandbox's record (its token grants, its contacts) and the
bytes of the database, not by what the commands print. Logins and runs are subprocesses; the
commands that only read what is stored (``auth status``, ``validate``, ``runs show``) run in this
process (:func:`here`), through the same command, without an interpreter's start each time;
runs and the other commands in processes forked after the imports (:func:`launcher`).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.connections import forget_tokens, open_store
from connector.persistence.database import close_all
from connector.sandbox.server import RunningSandbox
from tests.runtime.e2e_support import (
    CLI,
    CONTACT,
    LOCAL,
    RECIPES,
    TIMEOUT,
    Launcher,
    RequestLog,
    cli_here,
    login,
)

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_RECIPE = str(ROOT / "tests" / "cli" / "sandbox_contact.yaml")  # get-contact, add-tags
CLIENT = {"GHL_CLIENT_ID": "sandbox-client-id", "GHL_CLIENT_SECRET": "sandbox-client-secret"}
SECOND_LOCATION = "C2QujeCh8ZnC7al2InWR"


@pytest.fixture()
def oauth_env(tmp_path: Path, sandbox: RunningSandbox) -> Iterator[dict[str, str]]:
    """The sandbox's URLs, no token in the environment (the stored connection is used)."""
    env = {
        **sandbox.env,
        **CLIENT,
        "GHL_TOKEN": "",
        "CONNECTEAM_API_KEY": "",
        "GHL_AUTH_URL": f"{sandbox.url}/ghl/oauth/chooselocation",
        "CONNECTOR_HOME": str(tmp_path / "home"),
    }
    yield env
    forget_tokens()
    close_all()


def grants(sandbox: RunningSandbox, grant_type: str | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = LOCAL.get(f"{sandbox.url}/_sandbox/oauth").json()["grants"]
    return [g for g in found if grant_type is None or g["grant_type"] == grant_type]


def advance(sandbox: RunningSandbox, seconds: float) -> None:
    httpx.post(f"{sandbox.url}/_sandbox/clock", json={"advance": seconds}).raise_for_status()


def sandbox_tokens(sandbox: RunningSandbox) -> dict[str, Any]:
    """Every OAuth token the sandbox issued (access and refresh), by value."""
    state = sandbox.state
    with state.lock:
        tokens = {t: info for t, info in state.ghl.tokens.items() if info.kind != "private"}
        refresh = dict(state.ghl.refresh_tokens)
    return {**tokens, **refresh}


def tags(sandbox: RunningSandbox, contact: str = CONTACT) -> list[str]:
    state = httpx.get(f"{sandbox.url}/_sandbox/state").json()
    found = next(c for c in state["ghl"]["contacts"] if c["id"] == contact)
    return list(found.get("tags") or [])


def here(
    env: Mapping[str, str], *args: str, expect: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """:func:`cli_here` after forgetting the tokens this process knows: what it knows of the
    connections is what the database holds."""
    forget_tokens()
    return cli_here(env, *args, expect=expect)


def status(env: Mapping[str, str], expect: int = 0) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(
        here(env, "auth", "status", "--json", expect=expect).stdout
    )
    return data


def test_login_without_a_browser_stores_the_location_encrypted(
    oauth_env: dict[str, str], sandbox: RunningSandbox
) -> None:
    done = login(oauth_env, str(ROOT / "recipes"))
    assert done.returncode == 0, done.stderr
    assert "connected: GoHighLevel location ve9EPM428h8vShlRW1KT" in done.stdout
    [conn] = status(oauth_env)
    assert conn["id"] == "ghl:location:ve9EPM428h8vShlRW1KT" and not conn["needs_login"]
    # the scopes asked for are the ones the shipped recipes' GoHighLevel steps need
    assert set(conn["scopes"]) == {"contacts.readonly", "contacts.write"}
    assert [g["grant_type"] for g in grants(sandbox)] == ["authorization_code"]
    # no token, refresh token or client secret anywhere in CONNECTOR_HOME, in clear
    issued = sandbox_tokens(sandbox)
    assert issued
    home = Path(oauth_env["CONNECTOR_HOME"])
    raw = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    for value in [*issued, CLIENT["GHL_CLIENT_SECRET"]]:
        assert value.encode() not in raw
    assert (home / "secret.key").stat().st_mode & 0o777 == 0o600
    for value in issued:
        assert value not in done.stdout + done.stderr


def test_a_forged_state_is_refused_and_nothing_is_stored(
    oauth_env: dict[str, str], sandbox: RunningSandbox
) -> None:
    done = login(oauth_env, tamper=True)
    assert done.returncode == 1
    assert "state does not match" in done.stderr
    assert "Traceback" not in done.stderr
    assert status(oauth_env) == []
    assert grants(sandbox) == []  # the code was never exchanged


def test_an_expired_token_is_refreshed_once_and_the_run_succeeds(
    oauth_env: dict[str, str], sandbox: RunningSandbox, launcher: Launcher
) -> None:
    assert login(oauth_env).returncode == 0
    launcher.cli(oauth_env, "run", SANDBOX_RECIPE)
    advance(sandbox, 90_000)  # a day and more: the access token has expired
    before = set(sandbox_tokens(sandbox))
    run = json.loads(launcher.cli(oauth_env, "run", SANDBOX_RECIPE, "--json").stdout)
    assert run["status"] == "succeeded"
    assert "cli-test" in tags(sandbox)
    [refresh] = grants(sandbox, "refresh_token")
    assert refresh["ok"] is True
    # the run's record holds none of the tokens, old or rotated
    record = here(oauth_env, "runs", "show", run["id"], "--json").stdout
    for value in sandbox_tokens(sandbox):
        assert value not in record
    assert set(sandbox_tokens(sandbox)) - before  # new tokens were issued, and stored sealed
    [conn] = status(oauth_env)
    assert conn["expires_in"] > 80_000


def test_eight_processes_meeting_an_expired_token_cause_one_refresh(
    oauth_env: dict[str, str], sandbox: RunningSandbox, launcher: Launcher, tmp_path: Path
) -> None:
    assert login(oauth_env).returncode == 0
    advance(sandbox, 90_000)
    outs = [tmp_path / f"run{n}" for n in range(8)]
    results = launcher.together(oauth_env, ["run", SANDBOX_RECIPE, "--json"], outs)
    for code, out, err in results:
        assert code == 0, err
        assert json.loads(out)["status"] == "succeeded"
    refreshes = grants(sandbox, "refresh_token")
    assert len(refreshes) == 1, refreshes
    assert refreshes[0]["ok"] is True


def test_a_used_refresh_token_means_a_new_login_not_a_loop_of_401s(
    oauth_env: dict[str, str], sandbox: RunningSandbox, launcher: Launcher
) -> None:
    assert login(oauth_env).returncode == 0
    # someone else used the stored refresh token (a copy of the database, a racing integration)
    store = open_store(oauth_env)
    [conn] = store.find("ghl")
    secret = store.secret(conn)
    used = httpx.post(
        f"{sandbox.url}/ghl/oauth/token",
        data={
            **{"client_id": CLIENT["GHL_CLIENT_ID"], "client_secret": CLIENT["GHL_CLIENT_SECRET"]},
            "grant_type": "refresh_token",
            "refresh_token": secret["refresh_token"],
        },
    )
    assert used.status_code == 200
    advance(sandbox, 90_000)
    log = RequestLog(sandbox)
    failed = launcher.cli(oauth_env, "run", SANDBOX_RECIPE, "--json", expect=1)
    run = json.loads(failed.stdout)
    assert run["status"] == "failed"
    assert "needs a new login" in run["error"] and "connector auth login ghl" in run["error"]
    refused = grants(sandbox, "refresh_token")[-1]
    assert refused["ok"] is False and refused["error"] == "invalid_grant"
    listed = status(oauth_env, expect=1)
    assert listed[0]["needs_login"] is True
    # the next run fails at once: no grant, and not one request to GoHighLevel
    sent = len(log.requests(prefix="/ghl"))
    asked = len(grants(sandbox))
    again = json.loads(launcher.cli(oauth_env, "run", SANDBOX_RECIPE, "--json", expect=1).stdout)
    assert "needs a new login" in again["error"]
    assert len(log.requests(prefix="/ghl")) == sent
    assert len(grants(sandbox)) == asked
    # a new login mends it
    assert login(oauth_env).returncode == 0
    launcher.cli(oauth_env, "run", SANDBOX_RECIPE)
    assert status(oauth_env)[0]["needs_login"] is False


def test_an_agency_login_runs_recipes_on_two_locations_with_the_right_token_each(
    oauth_env: dict[str, str], sandbox: RunningSandbox, launcher: Launcher
) -> None:
    done = login(oauth_env, "--user-type", "Company")
    assert done.returncode == 0, done.stderr
    [agency] = status(oauth_env)
    assert agency["kind"] == "company"
    assert set(agency["locations"]) >= {"ve9EPM428h8vShlRW1KT", SECOND_LOCATION}
    recipe = str(RECIPES / "create_in_location.yaml")
    made = {}
    for location in ("ve9EPM428h8vShlRW1KT", SECOND_LOCATION):
        event = json.dumps({"email": f"agency-{location}@example.com"})
        env = {**oauth_env, "GHL_LOCATION_ID": location}
        run = subprocess.run(
            [*CLI, "run", recipe, "--event", "-", "--json"],
            input=event,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert run.returncode == 0, run.stderr
        made[location] = json.loads(run.stdout)["output"]["id"]
    state = httpx.get(f"{sandbox.url}/_sandbox/state").json()
    contacts = {c["id"]: c for c in state["ghl"]["contacts"]}
    for location, contact in made.items():
        assert contacts[contact]["locationId"] == location
    assert len(grants(sandbox, "location_token")) == 2
    # each location has its own connection, obtained through the agency, holding a token the
    # sandbox issued for that location and no other
    store = open_store(oauth_env)
    issued = sandbox.state.ghl.tokens
    for location in made:
        [conn] = [c for c in store.find("ghl") if c.account == location]
        assert conn.parent == "ghl:company:" + agency["account"]
        assert issued[store.secret(conn)["access_token"]].location_id == location
    # a run again on the first location reuses its token: no new exchange
    launcher.cli({**oauth_env, "GHL_LOCATION_ID": "ve9EPM428h8vShlRW1KT"}, "run", SANDBOX_RECIPE)
    assert len(grants(sandbox, "location_token")) == 2


def test_validate_flags_a_scope_the_connection_lacks(
    oauth_env: dict[str, str], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    assert login(oauth_env, str(ROOT / "recipes")).returncode == 0  # contacts.* only
    recipe = tmp_path / "calendars.yaml"
    recipe.write_text(
        "name: calendars\ntrigger: {app: manual, event: go, sample: {}}\nsteps:\n"
        "  - id: cals\n    action: ghl.get-calendars\n    with: {}\n"
    )
    checked = here(oauth_env, "validate", str(recipe))
    assert checked.stdout.strip() == (
        f"{recipe}:5:13: warning: $.steps[0].action: ghl.get-calendars needs the scope"
        " calendars.readonly, which the GoHighLevel connection ghl:location:ve9EPM428h8vShlRW1KT"
        " was not granted; log in again with it: connector auth login ghl --scopes"
        " calendars.readonly"
    )
    # the shipped recipes need nothing more than what they asked for
    assert here(oauth_env, "validate", str(ROOT / "recipes")).stdout == ""
    # with the scope granted the warning goes
    assert login(oauth_env, "--scopes", "calendars.readonly").returncode == 0
    assert here(oauth_env, "validate", str(recipe)).stdout == ""


def test_no_connection_says_what_to_do_and_sends_nothing(
    oauth_env: dict[str, str], sandbox: RunningSandbox, launcher: Launcher
) -> None:
    log = RequestLog(sandbox)
    run = json.loads(launcher.cli(oauth_env, "run", SANDBOX_RECIPE, "--json", expect=1).stdout)
    assert "GoHighLevel is not connected for location ve9EPM428h8vShlRW1KT" in run["error"]
    assert "connector auth login ghl" in run["error"]
    assert log.requests(prefix="/ghl") == []


CONNECTEAM_RECIPE = (
    "name: list-users\ntrigger: {app: manual, event: go, sample: {}}\nsteps:\n"
    "  - id: users\n    action: connecteam.get-users\n    with: {}\n"
    'output:\n  count: "{{ steps.users.output.data.users | length }}"\n'
)


def test_connecteam_client_credentials_get_a_new_token_when_theirs_expires(
    oauth_env: dict[str, str], sandbox: RunningSandbox, tmp_path: Path, launcher: Launcher
) -> None:
    recipe = tmp_path / "users.yaml"
    recipe.write_text(CONNECTEAM_RECIPE)
    env = {
        **oauth_env,
        "CONNECTEAM_CLIENT_ID": "sandbox-ct-client-id",
        "CONNECTEAM_CLIENT_SECRET": "sandbox-ct-client-secret",
    }
    done = launcher.cli(env, "auth", "login", "connecteam", "--client-credentials")
    assert "Connecteam OAuth client for default" in done.stdout
    first = json.loads(launcher.cli(oauth_env, "run", str(recipe), "--json").stdout)
    assert first["status"] == "succeeded" and int(first["output"]["count"]) > 0
    advance(sandbox, 90_000)  # the 24-hour token has expired; there is no refresh token
    again = json.loads(launcher.cli(oauth_env, "run", str(recipe), "--json").stdout)
    assert again["status"] == "succeeded"
    asked = grants(sandbox, "client_credentials")
    assert [g["ok"] for g in asked] == [True, True]
    home = Path(oauth_env["CONNECTOR_HOME"])
    raw = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    assert b"sandbox-ct-client-secret" not in raw


def test_a_connecteam_api_key_is_read_without_echo_and_stored_sealed(
    oauth_env: dict[str, str], sandbox: RunningSandbox, tmp_path: Path, launcher: Launcher
) -> None:
    recipe = tmp_path / "users.yaml"
    recipe.write_text(CONNECTEAM_RECIPE)
    key = sandbox.env["CONNECTEAM_API_KEY"]
    done = subprocess.run(
        [*CLI, "auth", "login", "connecteam"],
        input=key + "\n",
        env={**os.environ, **oauth_env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert key not in done.stdout + done.stderr
    assert (
        json.loads(launcher.cli(oauth_env, "run", str(recipe), "--json").stdout)["status"]
        == "succeeded"
    )
    home = Path(oauth_env["CONNECTOR_HOME"])
    raw = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    assert key.encode() not in raw
    # logged out, the next run says what to do and sends nothing
    launcher.cli(oauth_env, "auth", "logout", "connecteam")
    log = RequestLog(sandbox)
    gone = json.loads(launcher.cli(oauth_env, "run", str(recipe), "--json", expect=1).stdout)
    assert "Connecteam is not connected" in gone["error"]
    assert log.requests(prefix="/connecteam") == []
