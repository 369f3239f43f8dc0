"""The sandbox's OAuth over real HTTP: GoHighLevel agency (Company) installs, installedLocations,
the agency -> location token exchange, refresh rotation of both kinds, the grants log of
``GET /_sandbox/oauth``, and Connecteam's client credentials. Every vendor response is checked
against the official documents."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from connector.sandbox import RunningSandbox

pytest_plugins = ["sandbox.fixtures"]

COMPANY = "5DP4iH6HLkQsiKESj6rh"
LOC = "ve9EPM428h8vShlRW1KT"
LOC2 = "C2QujeCh8ZnC7al2InWR"
JORDAN = "ocQHyuzHvysMo5N5VsXc"  # a contact of LOC
CASEY = "FDEEtfjgVvVqE1SkHbn8"  # a contact of LOC2
CLIENT = {"client_id": "sandbox-client-id", "client_secret": "sandbox-client-secret"}
CT_CLIENT = ("sandbox-ct-client-id", "sandbox-ct-client-secret")
SCOPE = "contacts.readonly contacts.write oauth.readonly oauth.write"
VERSION = {"Version": "2021-07-28"}
REDIRECT = "http://localhost:9/cb"


def _code(anon: httpx.Client, scope: str = SCOPE) -> str:
    r = anon.get(
        "/ghl/oauth/chooselocation",
        params={
            "response_type": "code",
            "client_id": CLIENT["client_id"],
            "redirect_uri": REDIRECT,
            "scope": scope,
        },
    )
    assert r.status_code == 302
    return parse_qs(urlparse(r.headers["location"]).query)["code"][0]


def _agency(anon: httpx.Client, scope: str = SCOPE) -> dict[str, Any]:
    grant = {
        **CLIENT,
        "grant_type": "authorization_code",
        "code": _code(anon, scope),
        "redirect_uri": REDIRECT,
        "user_type": "Company",
    }
    r = anon.post("/ghl/oauth/token", data=grant)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _api(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **VERSION}


def _installed(anon: httpx.Client, token: str, **params: str) -> httpx.Response:
    query = {"companyId": COMPANY, "appId": "sandbox", **params}
    return anon.get("/ghl/oauth/installedLocations", params=query, headers=_api(token))


def _exchange(
    anon: httpx.Client, token: str, location: str, company: str = COMPANY
) -> httpx.Response:
    form = {"companyId": company, "locationId": location}
    return anon.post("/ghl/oauth/locationToken", data=form, headers=_api(token))


def _refresh(anon: httpx.Client, refresh_token: str) -> httpx.Response:
    form = {**CLIENT, "grant_type": "refresh_token", "refresh_token": refresh_token}
    return anon.post("/ghl/oauth/token", data=form)


def _ct_token(anon: httpx.Client, auth: tuple[str, str] = CT_CLIENT, **form: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", **form}
    return anon.post("/connecteam/oauth/v1/token", data=data, auth=auth)


# -- GoHighLevel agency installs ---------------------------------------------------------------


def test_agency_code_exchange_gives_a_company_token(anon: httpx.Client) -> None:
    tokens = _agency(anon)
    assert tokens["userType"] == "Company" and tokens["companyId"] == COMPANY
    assert "locationId" not in tokens
    assert tokens["approvedLocations"] == [LOC, LOC2]
    assert tokens["expires_in"] == 86399 and tokens["scope"] == SCOPE
    assert tokens["access_token"] and tokens["refresh_token"] and tokens["userId"]
    assert tokens["isBulkInstallation"] is False
    location = {**CLIENT, "grant_type": "authorization_code", "code": _code(anon)}
    plain = anon.post("/ghl/oauth/token", data=location).json()  # no user_type: as before
    assert plain["userType"] == "Location" and plain["locationId"] == LOC
    assert "approvedLocations" not in plain


def test_installed_locations_pages_and_checks_app_and_company(anon: httpx.Client) -> None:
    agency = _agency(anon)["access_token"]
    everything = _installed(anon, agency).json()
    assert [loc["_id"] for loc in everything["locations"]] == [LOC, LOC2]
    assert everything["count"] == 2 and everything["locations"][0]["isInstalled"] is True
    first = _installed(anon, agency, skip="0", limit="1").json()
    second = _installed(anon, agency, skip="1", limit="1", isInstalled="true").json()
    assert [loc["_id"] for loc in first["locations"]] == [LOC] and first["count"] == 2
    assert [loc["_id"] for loc in second["locations"]] == [LOC2]
    assert _installed(anon, agency, skip="2").json()["locations"] == []
    whole_id = _installed(anon, agency, appId="sandbox-client-id")
    assert whole_id.status_code == 200 and whole_id.json()["count"] == 2
    assert _installed(anon, agency, appId="another-app").status_code == 400
    wrong = _installed(anon, agency, companyId="NotTheAgencyCompany0")
    assert wrong.status_code == 403 and "company" in wrong.json()["message"]
    assert _installed(anon, agency, limit="ten").status_code == 422
    bare = anon.get(
        "/ghl/oauth/installedLocations",
        params={"companyId": COMPANY, "appId": "sandbox"},
        headers={"Authorization": f"Bearer {agency}"},
    )
    assert bare.status_code == 401 and bare.json()["message"] == "Version header was not found"


def test_installed_locations_refuses_location_tokens(
    anon: httpx.Client, sandbox: RunningSandbox
) -> None:
    location = _exchange(anon, _agency(anon)["access_token"], LOC).json()["access_token"]
    for token in (location, sandbox.env["GHL_TOKEN"]):  # an OAuth location token, a PIT
        r = _installed(anon, token)
        assert r.status_code == 401 and "AuthClass" in r.json()["message"]


def test_location_token_reaches_its_location_only(anon: httpx.Client) -> None:
    agency = _agency(anon)
    r = _exchange(anon, agency["access_token"], LOC2)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    token = r.json()
    assert token["userType"] == "Location" and token["locationId"] == LOC2
    assert token["scope"] == agency["scope"] and token["expires_in"] == 86399
    assert token["refresh_token"] and token["appId"] == "sandbox"
    assert token["userId"] == agency["userId"]
    api = _api(token["access_token"])
    assert anon.get(f"/ghl/contacts/{CASEY}", headers=api).status_code == 200
    mine = anon.get("/ghl/contacts/", params={"locationId": LOC2}, headers=api)
    assert mine.status_code == 200 and [c["id"] for c in mine.json()["contacts"]] == [CASEY]
    other = anon.get("/ghl/contacts/", params={"locationId": LOC}, headers=api)
    assert other.status_code == 403
    assert other.json()["message"] == "The token does not have access to this location."
    assert anon.get(f"/ghl/contacts/{JORDAN}", headers=api).status_code == 403  # LOC's contact


def test_location_token_errors(anon: httpx.Client) -> None:
    agency = _agency(anon)["access_token"]
    unknown = _exchange(anon, agency, "NoSuchLocation000000")
    assert unknown.status_code == 400 and "NoSuchLocation000000" in unknown.json()["message"]
    assert _exchange(anon, agency, LOC, company="NotTheAgencyCompany0").status_code == 403
    missing = anon.post(
        "/ghl/oauth/locationToken", data={"companyId": COMPANY}, headers=_api(agency)
    )
    assert missing.status_code == 422
    assert missing.json()["message"] == ["locationId should not be empty"]
    location = _exchange(anon, agency, LOC).json()["access_token"]
    refused = _exchange(anon, location, LOC2)
    assert refused.status_code == 401 and "AuthClass" in refused.json()["message"]
    narrow = _agency(anon, scope="contacts.readonly oauth.readonly")["access_token"]
    no_scope = _exchange(anon, narrow, LOC)
    assert no_scope.status_code == 401 and "scope" in no_scope.json()["message"]


def test_agency_token_is_refused_on_location_routes(anon: httpx.Client) -> None:
    api = _api(_agency(anon)["access_token"])
    for r in (
        anon.get(f"/ghl/contacts/{JORDAN}", headers=api),
        anon.get("/ghl/contacts/", params={"locationId": LOC}, headers=api),
        anon.post("/ghl/contacts/search", json={"locationId": LOC}, headers=api),
    ):
        assert r.status_code == 401
        assert r.json()["message"].startswith("This AuthClass is not yet supported!")
        assert "/oauth/locationToken" in r.json()["message"]


def test_agency_refresh_rotates_and_stays_agency(anon: httpx.Client) -> None:
    first = _agency(anon)
    rotated = _refresh(anon, first["refresh_token"])
    assert rotated.status_code == 200
    again = rotated.json()
    assert again["userType"] == "Company" and again["companyId"] == COMPANY
    assert "locationId" not in again and again["approvedLocations"] == [LOC, LOC2]
    assert again["refresh_token"] != first["refresh_token"]
    assert again["access_token"] != first["access_token"]
    reused = _refresh(anon, first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert _installed(anon, again["access_token"]).status_code == 200
    assert _refresh(anon, again["refresh_token"]).json()["userType"] == "Company"


def test_location_token_refresh_gives_a_location_token(anon: httpx.Client) -> None:
    exchanged = _exchange(anon, _agency(anon)["access_token"], LOC2).json()
    refreshed = _refresh(anon, exchanged["refresh_token"])
    assert refreshed.status_code == 200
    body = refreshed.json()
    assert body["userType"] == "Location" and body["locationId"] == LOC2
    assert body["companyId"] == COMPANY and body["scope"] == SCOPE
    assert anon.get(f"/ghl/contacts/{CASEY}", headers=_api(body["access_token"])).status_code == 200
    reused = _refresh(anon, exchanged["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_agency_tokens_expire_by_the_sandbox_clock(anon: httpx.Client) -> None:
    agency = _agency(anon)["access_token"]
    anon.post("/_sandbox/clock", json={"advance": 86399})
    expired = _installed(anon, agency)
    assert expired.status_code == 401 and "expired" in expired.json()["message"]


# -- the grants log ----------------------------------------------------------------------------


def test_grants_log_lists_every_grant_in_order_without_tokens(
    anon: httpx.Client, sandbox: RunningSandbox
) -> None:
    assert anon.get("/_sandbox/oauth").json() == {"grants": []}
    agency = _agency(anon)
    rotated = _refresh(anon, agency["refresh_token"]).json()
    assert _refresh(anon, agency["refresh_token"]).status_code == 400
    location = _exchange(anon, rotated["access_token"], LOC2).json()
    assert _exchange(anon, location["access_token"], LOC).status_code == 401
    anon.post("/_sandbox/clock", json={"advance": 30})
    ct = _ct_token(anon).json()
    assert _ct_token(anon, auth=(CT_CLIENT[0], "wrong")).status_code == 401
    bad_client = anon.post(
        "/ghl/oauth/token", data={**CLIENT, "client_secret": "nope", "grant_type": "refresh_token"}
    )
    assert bad_client.status_code == 401

    r = anon.get("/_sandbox/oauth")
    grants = r.json()["grants"]
    summary = [(g["app"], g["grant_type"], g["ok"], g["status"], g["error"]) for g in grants]
    assert summary == [
        ("ghl", "authorization_code", True, 200, None),
        ("ghl", "refresh_token", True, 200, None),
        ("ghl", "refresh_token", False, 400, "invalid_grant"),
        ("ghl", "location_token", True, 200, None),
        ("ghl", "location_token", False, 401, "invalid_token"),
        ("connecteam", "client_credentials", True, 200, None),
        ("connecteam", "client_credentials", False, 401, "invalid_client"),
        ("ghl", "refresh_token", False, 401, "invalid_client"),
    ]
    first, exchange = grants[0], grants[3]
    assert first["user_type"] == "Company" and first["company_id"] == COMPANY
    assert first["location_id"] is None and first["client_id"] == CLIENT["client_id"]
    assert exchange["user_type"] == "Location" and exchange["location_id"] == LOC2
    assert exchange["company_id"] == COMPANY and exchange["client_id"] == CLIENT["client_id"]
    assert grants[5]["client_id"] == CT_CLIENT[0] and grants[5]["user_type"] is None
    start = sandbox.clock.base()
    assert grants[0]["time"] == start and grants[5]["time"] == start + 30
    text = r.text
    secrets = [
        agency["access_token"],
        agency["refresh_token"],
        rotated["access_token"],
        rotated["refresh_token"],
        location["access_token"],
        location["refresh_token"],
        ct["access_token"],
        CLIENT["client_secret"],
        CT_CLIENT[1],
        "sbx-",
    ]
    assert not [s for s in secrets if s in text]
    assert set(json.loads(text)["grants"][0]) == {
        "app",
        "grant_type",
        "time",
        "ok",
        "status",
        "error",
        "client_id",
        "user_type",
        "location_id",
        "company_id",
    }


def test_reset_clears_the_grants_log(anon: httpx.Client) -> None:
    _agency(anon)
    _ct_token(anon)
    assert len(anon.get("/_sandbox/oauth").json()["grants"]) == 2
    assert anon.post("/_sandbox/reset").status_code == 200
    assert anon.get("/_sandbox/oauth").json() == {"grants": []}


# -- Connecteam client credentials -------------------------------------------------------------


def test_connecteam_client_credentials_token(anon: httpx.Client) -> None:
    r = _ct_token(anon)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 86400
    assert {"users.read", "users.write", "quick_tasks.read"} <= set(body["scope"].split())
    narrow = _ct_token(anon, scope="users.read").json()
    assert narrow["scope"] == "users.read"


def test_connecteam_token_refusals(anon: httpx.Client) -> None:
    bad = _ct_token(anon, auth=(CT_CLIENT[0], "wrong"))
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    assert "error_description" in bad.json() and bad.headers["www-authenticate"].startswith("Basic")
    unknown = _ct_token(anon, auth=("nobody", CT_CLIENT[1]))
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
    no_auth = anon.post("/connecteam/oauth/v1/token", data={"grant_type": "client_credentials"})
    assert no_auth.status_code == 401
    grant = _ct_token(anon, grant_type="password")
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    scope = _ct_token(anon, scope="users.read chat.write")
    assert scope.status_code == 403 and scope.json()["error"] == "invalid_scope"


def test_connecteam_bearer_token_reaches_users_and_shares_the_account_limit(
    anon: httpx.Client, sandbox: RunningSandbox
) -> None:
    token = _ct_token(anon).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    key = {"X-API-KEY": sandbox.env["CONNECTEAM_API_KEY"]}
    by_key = anon.get("/connecteam/users/v1/users", headers=key)
    by_token = anon.get("/connecteam/users/v1/users", params={"userIds": 9001}, headers=bearer)
    assert by_token.status_code == 200
    assert by_token.json()["data"]["users"][0]["userId"] == 9001
    remaining = int(by_key.headers["x-ratelimit-minute-remaining"])
    assert int(by_token.headers["x-ratelimit-minute-remaining"]) == remaining - 1
    note = anon.post(
        "/connecteam/users/v1/users/9001/notes", json={"text": "via OAuth"}, headers=bearer
    )
    assert note.status_code == 200


def test_connecteam_token_scopes_are_enforced(anon: httpx.Client) -> None:
    token = _ct_token(anon, scope="users.read").json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert anon.get("/connecteam/users/v1/users", headers=bearer).status_code == 200
    write = anon.post("/connecteam/users/v1/users/9001/notes", json={"text": "x"}, headers=bearer)
    assert write.status_code == 403 and "users.write" in write.json()["detail"]


def test_connecteam_token_expires_by_the_sandbox_clock(anon: httpx.Client) -> None:
    token = _ct_token(anon).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert anon.get("/connecteam/users/v1/users", headers=bearer).status_code == 200
    anon.post("/_sandbox/clock", json={"advance": 86399})
    assert anon.get("/connecteam/users/v1/users", headers=bearer).status_code == 200
    anon.post("/_sandbox/clock", json={"advance": 1})
    expired = anon.get("/connecteam/users/v1/users", headers=bearer)
    assert expired.status_code == 401 and expired.json() == {"detail": "Access token has expired"}
    unknown = anon.get("/connecteam/users/v1/users", headers={"Authorization": "Bearer made-up"})
    assert unknown.status_code == 401 and unknown.json() == {"detail": "Invalid access token"}
