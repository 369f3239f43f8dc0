"""GoHighLevel's webhook signatures, verified as GoHighLevel documents them, failing closed.

GoHighLevel signs each webhook body twice (../shared vendor facts, section 1.1):

- ``X-GHL-Signature``: Ed25519, the current scheme. When it is present it decides: a bad one is
  not rescued by a good legacy signature (the SDKs do the same).
- ``X-WH-Signature``: RSA PKCS#1 v1.5 over SHA-256, the legacy scheme, used only when there is no
  Ed25519 signature.

Both are base64 over the raw body. GoHighLevel's own examples verify a re-serialized body
(``JSON.stringify(req.body)``), so when the raw bytes do not verify, the compact JSON of the
parsed body is tried too; nothing else is. A missing signature, ``N/A``, bad base64, a signature
that does not verify, or no key for the scheme the request uses: :class:`Rejected`, and nothing
runs. There is no "skip verification when the header is missing" path.

The keys are the ones GoHighLevel publishes, unless ``GHL_WEBHOOK_PUBLIC_KEY`` (Ed25519) or
``GHL_WEBHOOK_RSA_PUBLIC_KEY`` (RSA) give other PEM keys. After the signature, the body's
``timestamp`` must be within :data:`WINDOW_SECONDS` of now (:func:`check_timestamp`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from connector.apps.events import Rejected
from connector.errors import UsageError

__all__ = [
    "GHL_ED25519_PUBLIC_KEY",
    "GHL_RSA_PUBLIC_KEY",
    "WINDOW_SECONDS",
    "WebhookKeys",
    "check_timestamp",
    "verify_ghl",
]

WINDOW_SECONDS = 300.0  # GoHighLevel's example window: 5 minutes

# Verbatim from GoHighLevel's Webhook Integration Guide (vendor facts 1.2).
GHL_ED25519_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg=
-----END PUBLIC KEY-----
"""

GHL_RSA_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAokvo/r9tVgcfZ5DysOSC
Frm602qYV0MaAiNnX9O8KxMbiyRKWeL9JpCpVpt4XHIcBOK4u3cLSqJGOLaPuXw6
dO0t6Q/ZVdAV5Phz+ZtzPL16iCGeK9po6D6JHBpbi989mmzMryUnQJezlYJ3DVfB
csedpinheNnyYeFXolrJvcsjDtfAeRx5ByHQmTnSdFUzuAnC9/GepgLT9SM4nCpv
uxmZMxrJt5Rw+VUaQ9B8JSvbMPpez4peKaJPZHBbU3OdeCVx5klVXXZQGNHOs8gF
3kvoV5rTnXV0IknLBXlcKKAQLZcY/Q9rG6Ifi9c+5vqlvHPCUJFT5XUGG5RKgOKU
J062fRtN+rLYZUV+BjafxQauvC8wSWeYja63VSUruvmNj8xkx2zE/Juc+yjLjTXp
IocmaiFeAO6fUtNjDeFVkhf5LNb59vECyrHD2SQIrhgXpO4Q3dVNA5rw576PwTzN
h/AMfHKIjE4xQA1SZuYJmNnmVZLIZBlQAF9Ntd03rfadZ+yDiOXCCs9FkHibELhC
HULgCsnuDJHcrGNd5/Ddm5hxGQ0ASitgHeMZ0kcIOwKDOzOU53lDza6/Y09T7sYJ
PQe7z0cvj7aE4B+Ax1ZoZGPzpJlZtGXCsu9aTEGEnKzmsFqwcSsnw3JB31IGKAyk
T1hhTiaCeIY/OwwwNUY2yvcCAwEAAQ==
-----END PUBLIC KEY-----
"""


@dataclass(frozen=True)
class WebhookKeys:
    """The public keys GoHighLevel's signatures are checked with."""

    ed25519: Ed25519PublicKey
    rsa: RSAPublicKey

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookKeys:
        """The published keys, or ``GHL_WEBHOOK_PUBLIC_KEY`` / ``GHL_WEBHOOK_RSA_PUBLIC_KEY``.
        A variable that is set but holds no key of the right kind is a usage error."""
        ed = _load(env.get("GHL_WEBHOOK_PUBLIC_KEY") or GHL_ED25519_PUBLIC_KEY, Ed25519PublicKey)
        rsa = _load(env.get("GHL_WEBHOOK_RSA_PUBLIC_KEY") or GHL_RSA_PUBLIC_KEY, RSAPublicKey)
        return cls(ed25519=ed, rsa=rsa)


def _load(pem: str, kind: type) -> Any:
    name = "GHL_WEBHOOK_PUBLIC_KEY" if kind is Ed25519PublicKey else "GHL_WEBHOOK_RSA_PUBLIC_KEY"
    want = "an Ed25519" if kind is Ed25519PublicKey else "an RSA"
    try:
        key = serialization.load_pem_public_key(pem.strip().encode() + b"\n")
    except (ValueError, TypeError):
        raise UsageError(f"{name} is not a PEM public key") from None
    if not isinstance(key, kind):
        raise UsageError(f"{name} must be {want} public key")
    return key


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            value = value.strip()
            return None if value in ("", "N/A") else value
    return None


def _decode(signature: str, header: str) -> bytes:
    try:
        return base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected(f"{header} is not base64") from None


def _bodies(body: bytes) -> list[bytes]:
    """The raw body, then its compact JSON (as GoHighLevel's examples re-serialize it)."""
    candidates = [body]
    try:
        compact = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()
    except (ValueError, RecursionError):
        return candidates
    if compact != body:
        candidates.append(compact)
    return candidates


def verify_ghl(body: bytes, headers: Mapping[str, str], keys: WebhookKeys) -> str:
    """Verify a GoHighLevel webhook; returns the scheme that verified it (``ed25519`` or
    ``rsa``). Raises :class:`Rejected` (401) otherwise."""
    ed = _header(headers, "x-ghl-signature")
    if ed is not None:
        signature = _decode(ed, "X-GHL-Signature")
        if len(signature) != 64:
            raise Rejected("X-GHL-Signature is not an Ed25519 signature (64 bytes)")
        for candidate in _bodies(body):
            try:
                keys.ed25519.verify(signature, candidate)
            except InvalidSignature:
                continue
            return "ed25519"
        raise Rejected("X-GHL-Signature does not match the body")
    legacy = _header(headers, "x-wh-signature")
    if legacy is not None:
        signature = _decode(legacy, "X-WH-Signature")
        for candidate in _bodies(body):
            try:
                keys.rsa.verify(signature, candidate, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                continue
            return "rsa"
        raise Rejected("X-WH-Signature does not match the body")
    raise Rejected("no signature: X-GHL-Signature or X-WH-Signature is required")


def check_timestamp(payload: Mapping[str, Any], now: float, window: float = WINDOW_SECONDS) -> None:
    """The body's ``timestamp`` (ISO 8601, signed with the body) must be within ``window``
    seconds of ``now``: an old delivery replayed, or one from the future, is refused (400)."""
    value = payload.get("timestamp")
    if not isinstance(value, str) or not value:
        raise Rejected("the webhook has no timestamp", status=400, kind="stale")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(
            f"the webhook's timestamp {value[:40]!r} is not a date", status=400, kind="stale"
        ) from None
    if moment.tzinfo is None:
        raise Rejected(
            f"the webhook's timestamp {value[:40]!r} has no time zone", status=400, kind="stale"
        )
    skew = moment.timestamp() - now
    if abs(skew) > window:
        when = "old" if skew < 0 else "in the future"
        raise Rejected(
            f"the webhook's timestamp is {abs(skew):.0f} s {when} (more than {window:.0f} s)",
            status=400,
            kind="stale",
        )
