"""The GoHighLevel and Connecteam apps, from the generated catalog."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from connector.apps import App
from connector.catalog import load_operations
from connector.catalog.model import Operation
from connector.hookspecs import hookimpl

if TYPE_CHECKING:
    import httpx

GHL_DEFAULT_BASE_URL = "https://services.leadconnectorhq.com"
CONNECTEAM_DEFAULT_BASE_URL = "https://api.connecteam.com"


def _ghl_auth(env: Mapping[str, str]) -> httpx.Auth | None:
    from connector.auth import BearerAuth

    token = env.get("GHL_TOKEN")
    return BearerAuth(token) if token else None


def _ghl_headers(op: Operation) -> Mapping[str, str]:
    return {"Version": op.version} if op.version else {}


def _connecteam_auth(env: Mapping[str, str]) -> httpx.Auth | None:
    from connector.auth import APIKeyAuth

    key = env.get("CONNECTEAM_API_KEY")
    return APIKeyAuth("X-API-KEY", key) if key else None


@hookimpl
def register_apps(register: Callable[[App], None]) -> None:
    register(
        App(
            name="ghl",
            title="GoHighLevel",
            description="GoHighLevel API v2 (LeadConnector)",
            operations=load_operations("ghl"),
            default_base_url=GHL_DEFAULT_BASE_URL,
            base_url_env="GHL_BASE_URL",
            sandbox_prefix="/ghl",
            auth=_ghl_auth,
            headers=_ghl_headers,
            secret_env=("GHL_TOKEN",),
        )
    )
    register(
        App(
            name="connecteam",
            title="Connecteam",
            description="Connecteam API v1",
            operations=load_operations("connecteam"),
            default_base_url=CONNECTEAM_DEFAULT_BASE_URL,
            base_url_env="CONNECTEAM_BASE_URL",
            sandbox_prefix="/connecteam",
            auth=_connecteam_auth,
            secret_env=("CONNECTEAM_API_KEY",),
        )
    )
