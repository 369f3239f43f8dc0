"""GoHighLevel webhook signatures: Ed25519 first, RSA only without it, failing closed."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.apps.events import Rejected
from connector.builtins.ghl_signatures import (
    WebhookKeys,
    check_timestamp,
    verify_ghl,
)
from connector.errors import UsageError

ED = ed25519.Ed25519PrivateKey.generate()
RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
BODY = json.dumps(
    {"type": "ContactCreate", "id": "c1", "timestamp": "2026-12-01T10:00:00Z", "webhookId": "w1"},
    separators=(",", ":"),
).encode()


def _pem(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


KEYS = WebhookKeys.from_env(
    {"GHL_WEBHOOK_PUBLIC_KEY": _pem(ED), "GHL_WEBHOOK_RSA_PUBLIC_KEY": _pem(RSA)}
)


def _ed(body: bytes) -> str:
    return base64.b64encode(ED.sign(body)).decode()


def _rsa(body: bytes) -> str:
    signature = RSA.sign(body, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def test_the_published_keys_are_the_ones_gohighlevel_publishes() -> None:
    """sha256 of each key's DER, as the vendor facts (section 1.2) record them."""
    keys = WebhookKeys.from_env({})
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert hashlib.sha256(keys.rsa.public_bytes(*der)).hexdigest() == (
        "2f62045d413b1b7747e26770ce7f57840cbf86288cd20ceb90d299a62501fd25"
    )
    assert hashlib.sha256(keys.ed25519.public_bytes(*der)).hexdigest() == (
        "5a2c1b2749d3efcc233fb27d4ab43d56b8d20818c42cd226f6c9a3ff20d3097c"
    )
    assert keys.rsa.key_size == 4096


def test_an_ed25519_signature_verifies_and_wins() -> None:
    assert verify_ghl(BODY, {"X-GHL-Signature": _ed(BODY)}, KEYS) == "ed25519"
    both = {"x-ghl-signature": _ed(BODY), "x-wh-signature": _rsa(BODY)}
    assert verify_ghl(BODY, both, KEYS) == "ed25519"


def test_a_bad_ed25519_signature_is_not_rescued_by_a_good_legacy_one() -> None:
    other = ed25519.Ed25519PrivateKey.generate()
    forged = base64.b64encode(other.sign(BODY)).decode()
    with pytest.raises(Rejected, match="X-GHL-Signature does not match") as caught:
        verify_ghl(BODY, {"X-GHL-Signature": forged, "X-WH-Signature": _rsa(BODY)}, KEYS)
    assert caught.value.status == 401


def test_the_legacy_rsa_signature_is_used_without_an_ed25519_one() -> None:
    assert verify_ghl(BODY, {"X-WH-Signature": _rsa(BODY)}, KEYS) == "rsa"
    assert verify_ghl(BODY, {"X-GHL-Signature": "N/A", "X-WH-Signature": _rsa(BODY)}, KEYS) == "rsa"
    with pytest.raises(Rejected, match="X-WH-Signature does not match"):
        verify_ghl(BODY.replace(b"c1", b"c2"), {"X-WH-Signature": _rsa(BODY)}, KEYS)


def test_the_sandbox_signs_as_gohighlevel_does() -> None:
    """The sandbox's webhooks (RSA, its own key) verify with its published PEM."""
    from connector.sandbox.webhooks import sign

    keys = WebhookKeys.from_env(
        {"GHL_WEBHOOK_PUBLIC_KEY": _pem(ED), "GHL_WEBHOOK_RSA_PUBLIC_KEY": _pem(RSA)}
    )
    assert verify_ghl(BODY, {"x-wh-signature": sign(RSA, BODY)}, keys) == "rsa"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "no signature"),
        ({"X-GHL-Signature": "N/A", "X-WH-Signature": "N/A"}, "no signature"),
        ({"X-GHL-Signature": ""}, "no signature"),
        ({"X-GHL-Signature": "not base64!"}, "not base64"),
        ({"X-GHL-Signature": base64.b64encode(b"short").decode()}, "64 bytes"),
        ({"X-WH-Signature": "%%%"}, "not base64"),
    ],
)
def test_no_usable_signature_is_refused(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(Rejected, match=reason) as caught:
        verify_ghl(BODY, headers, KEYS)
    assert caught.value.status == 401


def test_the_published_keys_refuse_a_signature_made_with_another_key() -> None:
    with pytest.raises(Rejected):
        verify_ghl(BODY, {"X-GHL-Signature": _ed(BODY)}, WebhookKeys.from_env({}))
    with pytest.raises(Rejected):
        verify_ghl(BODY, {"X-WH-Signature": _rsa(BODY)}, WebhookKeys.from_env({}))


def test_a_body_reformatted_after_signing_verifies_as_its_compact_json() -> None:
    """GoHighLevel's examples verify JSON.stringify(parsed body): compact, non-ASCII kept."""
    data = {"type": "NoteCreate", "body": "Café notes", "n": [1, 2]}
    compact = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    pretty = json.dumps(data, indent=2).encode()
    assert verify_ghl(pretty, {"X-GHL-Signature": _ed(compact)}, KEYS) == "ed25519"
    changed = json.dumps({**data, "n": [1, 3]}, indent=2).encode()
    with pytest.raises(Rejected):
        verify_ghl(changed, {"X-GHL-Signature": _ed(compact)}, KEYS)


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0, max_value=len(BODY) - 1), bit=st.integers(0, 7))
def test_any_changed_byte_is_refused(position: int, bit: int) -> None:
    tampered = bytearray(BODY)
    tampered[position] ^= 1 << bit
    for headers in ({"X-GHL-Signature": _ed(BODY)}, {"X-WH-Signature": _rsa(BODY)}):
        with pytest.raises(Rejected):
            verify_ghl(bytes(tampered), headers, KEYS)


def test_a_key_of_the_wrong_kind_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="GHL_WEBHOOK_PUBLIC_KEY must be an Ed25519"):
        WebhookKeys.from_env({"GHL_WEBHOOK_PUBLIC_KEY": _pem(RSA)})
    with pytest.raises(UsageError, match="GHL_WEBHOOK_RSA_PUBLIC_KEY is not a PEM"):
        WebhookKeys.from_env({"GHL_WEBHOOK_RSA_PUBLIC_KEY": "hello"})


def test_the_timestamp_must_be_within_five_minutes() -> None:
    now = time.time()

    def at(offset: float) -> dict[str, str]:
        moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + offset))
        return {"timestamp": moment}

    check_timestamp(at(-299), now)
    check_timestamp(at(299), now)
    for offset, words in ((-301, "old"), (301, "in the future")):
        with pytest.raises(Rejected, match=words) as caught:
            check_timestamp(at(offset), now)
        assert caught.value.status == 400
    for payload in ({}, {"timestamp": 17}, {"timestamp": "yesterday"}):
        with pytest.raises(Rejected) as caught:
            check_timestamp(payload, now)
        assert caught.value.status == 400
    with pytest.raises(Rejected, match="no time zone"):
        check_timestamp({"timestamp": "2026-12-01T10:00:00"}, now)
