"""The GoHighLevel and Connecteam apps: their operations from the generated catalog, and how each
vendor behaves (:mod:`connector.builtins.ghl`, :mod:`connector.builtins.connecteam`), registered
through the same ``register_apps`` hook as a plugin's app."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from connector.apps import App
from connector.builtins import connecteam, ghl
from connector.builtins.records import CONNECTEAM_RECORDS, GHL_RECORDS
from connector.catalog import load_operations
from connector.catalog.model import Operation
from connector.hookspecs import hookimpl

if TYPE_CHECKING:
    import httpx

GHL_DEFAULT_BASE_URL = "https://services.leadconnectorhq.com"
CONNECTEAM_DEFAULT_BASE_URL = "https://api.connecteam.com"


def _ghl_auth(env: Mapping[str, str]) -> httpx.Auth | None:
    from connector.sending.auth import BearerAuth, StoredAuth

    token = env.get("GHL_TOKEN")
    if token:  # a Private Integration token (or an access token) overrides stored connections
        return BearerAuth(token)
    return StoredAuth("ghl", partial(_tokens, dict(env)))


def _ghl_headers(op: Operation) -> Mapping[str, str]:
    return {"Version": op.version} if op.version else {}


def _connecteam_auth(env: Mapping[str, str]) -> httpx.Auth | None:
    from connector.sending.auth import APIKeyAuth, StoredAuth

    key = env.get("CONNECTEAM_API_KEY")
    if key:
        return APIKeyAuth("X-API-KEY", key)
    return StoredAuth("connecteam", partial(_tokens, dict(env)))


def _tokens(env: Mapping[str, str]) -> Any:
    from connector.connections import tokens_for

    return tokens_for(env)


def _ghl_duplicate_contact(op: Operation, status: int, body: Any) -> Any:
    """GoHighLevel refuses a second contact with the same email or phone (400, naming the one it
    has in ``meta.contactId``): after a lost answer, that contact is the one the write made."""
    if op.name != "ghl.create-contact" or status != 400 or not isinstance(body, dict):
        return None
    meta = body.get("meta")
    contact_id = meta.get("contactId") if isinstance(meta, dict) else None
    if not isinstance(contact_id, str) or not contact_id:
        return None
    return {"contact": {"id": contact_id}, "existing": True}


def _ghl_refuses_duplicate(op: Operation, body: Any) -> bool:
    """A new contact with an email or phone that another contact has is refused (in a location
    that does not allow duplicates, GoHighLevel's default), so sending it again is safe."""
    return (
        op.name == "ghl.create-contact"
        and isinstance(body, dict)
        and bool(body.get("email") or body.get("phone"))
    )


# the contact fields a ContactUpdate shows as they were written
_GHL_ECHO_FIELDS = (
    "firstName", "lastName", "name", "email", "phone", "companyName", "address1", "city",
    "state", "postalCode", "country", "website", "timezone", "dnd", "tags",
)  # fmt: skip
_CONNECTEAM_ECHO_FIELDS = ("firstName", "lastName", "email", "phoneNumber", "customFields")


def _ghl_echoes(op: Operation, path: str, body: Any) -> list[tuple[str, dict[str, Any]]]:
    """``PUT /contacts/{contactId}`` comes back as a ContactUpdate showing what it set."""
    if op.name != "ghl.update-contact" or not isinstance(body, dict):
        return []
    contact_id = path.rstrip("/").rsplit("/", 1)[-1]
    fields = {k: body[k] for k in _GHL_ECHO_FIELDS if body.get(k) is not None}
    return [(f"ghl:contact:{contact_id}", fields)] if fields else []


def _connecteam_echoes(op: Operation, path: str, body: Any) -> list[tuple[str, dict[str, Any]]]:
    """``PUT /users/v1/users`` comes back as a user_updated per user, showing what it set."""
    if op.name != "connecteam.edit-users" or not isinstance(body, list):
        return []
    out = []
    for user in body:
        if isinstance(user, dict) and user.get("userId") is not None:
            fields = {k: user[k] for k in _CONNECTEAM_ECHO_FIELDS if user.get(k) is not None}
            if fields:
                out.append((f"connecteam:user:{user['userId']}", fields))
    return out


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
            location_param="locationId",
            location_env=ghl.LOCATION_ENV,
            rate_limits=ghl.RATE_LIMITS,
            rate_limit_headers=ghl.RATE_LIMIT_HEADERS,
            webhooks=(ghl.WEBHOOK,),
            polls=ghl.POLLS,
            run_env=ghl.run_env,
            delivery_fields=ghl.DELIVERY_FIELDS,
            safe_writes=frozenset(
                {
                    "ghl.upsert-contact",
                    "ghl.add-tags",
                    "ghl.remove-tags",
                    "ghl.update-task-completed",
                }
            ),
            # searches GoHighLevel takes as a POST body: reads, retried like a GET
            post_reads=frozenset(
                {
                    "ghl.search-contacts-advanced",
                    "ghl.search-opportunities-advanced",
                    "ghl.search-object-records",
                    "ghl.filter-users-by-email",
                    "ghl.task-search",
                }
            ),
            existing_record=_ghl_duplicate_contact,
            refuses_duplicate=_ghl_refuses_duplicate,
            echoes=_ghl_echoes,
            records=GHL_RECORDS,
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
            rate_limits=connecteam.RATE_LIMITS,
            rate_limit_headers=connecteam.RATE_LIMIT_HEADERS,
            webhooks=(connecteam.WEBHOOK,),
            polls=connecteam.POLLS,
            run_env=connecteam.run_env,
            delivery_fields=connecteam.DELIVERY_FIELDS,
            echoes=_connecteam_echoes,
            records=CONNECTEAM_RECORDS,
        )
    )
