"""GoHighLevel-style webhook events from the sandbox, signed as GoHighLevel signs them.

When a configured URL is set (``connector sandbox --webhook-url URL``, ``create_app(webhook_url=)``
or ``POST /_sandbox/webhooks {"url": ...}``), every change the GoHighLevel fake makes is POSTed
there as GoHighLevel's webhook body: ``{"type": "ContactCreate", "locationId": ..., "id": ...,
...the record's fields, "timestamp": ..., "webhookId": ...}``. Event types: ``ContactCreate``,
``ContactUpdate``, ``ContactDelete``, ``ContactTagUpdate``, ``TaskCreate``, ``TaskComplete``,
``TaskDelete``, ``NoteCreate``, ``NoteUpdate``, ``NoteDelete``.

Signatures, both over the raw body and base64, as GoHighLevel sends them: ``x-ghl-signature``
(Ed25519, GoHighLevel's current scheme) and ``x-wh-signature`` (RSA PKCS#1 v1.5 SHA-256, the
legacy one). The sandbox makes its own key pairs (the RSA one once per process, shared by every
sandbox in it: making one costs tens of ms of CPU, and GoHighLevel signs with one published key
too); ``GET /_sandbox/webhooks/public-key`` gives the RSA PEM and ``GET
/_sandbox/webhooks/public-key?scheme=ed25519`` the Ed25519 one (or
:meth:`WebhookEmitter.public_key_pem`), to set as ``GHL_WEBHOOK_RSA_PUBLIC_KEY`` and
``GHL_WEBHOOK_PUBLIC_KEY``.

Deliveries go through the sandbox's :class:`~connector.sandbox.delivery.Dispatcher` and are retried
as GoHighLevel retries (vendor facts 1.4): any answer that is not 2xx, or none, is tried again, up
to 12 times, with exponential backoff and jitter on the sandbox clock
(:data:`~connector.sandbox.delivery.GHL_RETRY`: 5 s doubling, capped at 10 minutes, each wait
shortened by up to half at random; ``create_app(ghl_retry=RetryPolicy(...))`` changes it). Every
attempt carries the same body, so the same ``webhookId`` and ``timestamp``, and the same
signatures. Attempts are logged (``GET /_sandbox/webhooks``).
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from connector.sandbox.delivery import GHL_RETRY, Delivery, Dispatcher, RetryPolicy
from connector.sandbox.state import SandboxState, iso

__all__ = ["WebhookEmitter", "sign", "verify"]


def sign(private_key: rsa.RSAPrivateKey, body: bytes) -> str:
    return base64.b64encode(private_key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(public_pem: bytes, body: bytes, signature: str) -> bool:
    """Check an ``x-wh-signature`` the way a GoHighLevel webhook receiver does."""
    from cryptography.exceptions import InvalidSignature

    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(base64.b64decode(signature), body, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


_RSA_KEY: rsa.RSAPrivateKey | None = None  # made on first use (tens of ms), then shared
_RSA_LOCK = threading.Lock()


def _rsa_key() -> rsa.RSAPrivateKey:
    global _RSA_KEY
    with _RSA_LOCK:
        if _RSA_KEY is None:
            _RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _RSA_KEY


class WebhookEmitter:
    """Listens to the GoHighLevel fake's changes and delivers them, signed, to :attr:`url` (when
    set), through ``dispatcher`` (one of its own on the state's clock when not given)."""

    def __init__(
        self,
        state: SandboxState,
        url: str | None = None,
        dispatcher: Dispatcher | None = None,
        retry: RetryPolicy = GHL_RETRY,
    ) -> None:
        self.state = state
        self.url = url
        self.retry = retry
        self.dispatcher = dispatcher or Dispatcher(state.clock)
        self._ed25519 = ed25519.Ed25519PrivateKey.generate()
        state.listeners.append(self.on_change)

    @property
    def _key(self) -> rsa.RSAPrivateKey:
        return _rsa_key()

    def public_key_pem(self, scheme: str = "rsa") -> bytes:
        """The PEM key that verifies ``x-wh-signature`` (``rsa``) or ``x-ghl-signature``
        (``ed25519``)."""
        key = self._ed25519.public_key() if scheme == "ed25519" else self._key.public_key()
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def signatures(self, raw: bytes) -> dict[str, str]:
        """The headers GoHighLevel signs a body with."""
        return {
            "x-ghl-signature": base64.b64encode(self._ed25519.sign(raw)).decode(),
            "x-wh-signature": sign(self._key, raw),
        }

    def payload(self, event: str, record: dict[str, Any]) -> dict[str, Any]:
        body = {**record, "type": event}  # the event type, not the contact's (lead)
        body.setdefault("locationId", self._location_of(record))
        body["timestamp"] = iso(self.state.now())
        body["webhookId"] = str(uuid.uuid4())
        return body

    def _location_of(self, record: dict[str, Any]) -> str:
        contact = self.state.ghl.contacts.get(str(record.get("contactId", "")))
        return str(contact["locationId"]) if contact else self.state.default_location_id

    def on_change(self, event: str, record: dict[str, Any]) -> None:
        url = self.url
        if not url:
            return
        body = self.payload(event, record)
        raw = json.dumps(body, separators=(",", ":")).encode()
        # Signed on the delivery thread (the RSA key takes a moment to make), once for all attempts.
        self.dispatcher.submit(
            Delivery("ghl", url, event, body["webhookId"], raw, self.retry, sign=self.signatures)
        )

    def log(self) -> list[dict[str, Any]]:
        """Every delivery attempt of the sandbox (both vendors), oldest first."""
        return self.dispatcher.log()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until no delivery (of either vendor) is due or in flight (for tests)."""
        return self.dispatcher.flush(timeout)

    def close(self) -> None:
        """Stop the delivery thread (which Connecteam's webhooks share)."""
        self.dispatcher.close()
