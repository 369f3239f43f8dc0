"""GoHighLevel-style webhook events from the sandbox, signed as GoHighLevel signs them.

When a configured URL is set (``connector sandbox --webhook-url URL``, ``create_app(webhook_url=)``
or ``POST /_sandbox/webhooks {"url": ...}``), every change the GoHighLevel fake makes is POSTed
there as GoHighLevel's webhook body: ``{"type": "ContactCreate", "locationId": ..., "id": ...,
...the record's fields, "timestamp": ..., "webhookId": ...}``. Event types: ``ContactCreate``,
``ContactUpdate``, ``ContactDelete``, ``ContactTagUpdate``, ``TaskCreate``, ``TaskComplete``,
``TaskDelete``, ``NoteCreate``, ``NoteUpdate``, ``NoteDelete``.

Signatures, both over the raw body and base64, as GoHighLevel sends them: ``x-ghl-signature``
(Ed25519, GoHighLevel's current scheme) and ``x-wh-signature`` (RSA PKCS#1 v1.5 SHA-256, the
legacy one). The sandbox makes its own key pairs; ``GET /_sandbox/webhooks/public-key`` gives the
RSA PEM and ``GET /_sandbox/webhooks/public-key?scheme=ed25519`` the Ed25519 one (or
:meth:`WebhookEmitter.public_key_pem`), to set as ``GHL_WEBHOOK_RSA_PUBLIC_KEY`` and
``GHL_WEBHOOK_PUBLIC_KEY``. Deliveries run on a background thread, one attempt each, and are logged
(``GET /_sandbox/webhooks``).
"""

from __future__ import annotations

import base64
import json
import queue
import threading
import uuid
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

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


class WebhookEmitter:
    """Listens to state changes and delivers them, signed, to :attr:`url` (when set)."""

    def __init__(self, state: SandboxState, url: str | None = None) -> None:
        self.state = state
        self.url = url
        self._private: rsa.RSAPrivateKey | None = None  # made on first use: it takes a moment
        self._ed25519 = ed25519.Ed25519PrivateKey.generate()
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        state.listeners.append(self.on_change)

    @property
    def _key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._private is None:
                self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._private

    def public_key_pem(self, scheme: str = "rsa") -> bytes:
        """The PEM key that verifies ``x-wh-signature`` (``rsa``) or ``x-ghl-signature``
        (``ed25519``)."""
        key = self._ed25519.public_key() if scheme == "ed25519" else self._key.public_key()
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

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
        if not self.url:
            return
        raw = json.dumps(self.payload(event, record), separators=(",", ":")).encode()
        self._queue.put((self.url, raw))
        with self._lock:
            start = self._thread is None
            if start:
                self._thread = threading.Thread(
                    target=self._deliver, name="sandbox-webhooks", daemon=True
                )
                self._thread.start()

    def _deliver(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while (item := self._queue.get()) is not None:
                url, raw = item
                headers = {
                    "content-type": "application/json",
                    "x-ghl-signature": base64.b64encode(self._ed25519.sign(raw)).decode(),
                    "x-wh-signature": sign(self._key, raw),
                }
                entry: dict[str, Any] = {"url": url, "type": json.loads(raw)["type"]}
                try:
                    entry["status"] = client.post(url, content=raw, headers=headers).status_code
                except httpx.HTTPError as exc:
                    entry["error"] = type(exc).__name__
                with self._lock:
                    self._log.append(entry)
                self._queue.task_done()

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    def flush(self) -> None:
        """Wait until every queued event was attempted (for tests)."""
        if self._thread is not None:
            self._queue.join()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None
