"""``connector serve --sandbox``: the embedded sandbox wired to the server both ways.

:func:`sandbox_env` points the apps at the sandbox and trusts its webhook keys;
:func:`wire_sandbox` sends its GoHighLevel webhooks to ``/webhooks/ghl`` and registers
``/webhooks/connecteam/SECRET`` for its Connecteam users and tasks events, as a user would
with ``connector webhooks register connecteam``.
"""

from __future__ import annotations

import secrets
from typing import Any

__all__ = ["CONNECTEAM_EVENTS", "sandbox_env", "wire_sandbox"]

# the Connecteam webhooks `connector serve` takes, by feature type
CONNECTEAM_EVENTS = {
    "users": ["user_created", "user_updated", "user_archived", "user_restored", "user_deleted"],
    "tasks": ["task_published", "task_completed"],
}


def sandbox_env(running: Any) -> dict[str, str]:
    """What ``running`` (a :class:`~connector.sandbox.server.RunningSandbox`) adds to the
    server's environment: the apps' base URLs and credentials, its webhook keys, a secret, and
    the task board a sync makes Connecteam tasks on."""
    emitter = running.app.webhooks
    return {
        **running.env,
        "CONNECTOR_VAR_TASK_BOARD_ID": running.state.default_task_board_id,
        "GHL_WEBHOOK_PUBLIC_KEY": emitter.public_key_pem("ed25519").decode(),
        "GHL_WEBHOOK_RSA_PUBLIC_KEY": emitter.public_key_pem("rsa").decode(),
        "CONNECTEAM_WEBHOOK_SECRET": secrets.token_urlsafe(24),
    }


def wire_sandbox(running: Any, base: str, secret: str) -> None:
    """Point ``running``'s webhooks of both vendors at the server at ``base``."""
    running.app.webhooks.url = f"{base}/webhooks/ghl"
    url = f"{base}/webhooks/connecteam/{secret}"
    for feature, events in CONNECTEAM_EVENTS.items():
        running.app.connecteam_webhooks.register(url, feature, events, name=f"connector {feature}")
