"""``connector webhooks``: register this server's webhook URL with a vendor that has an API for
it (Connecteam's ``/settings/v1/webhooks``; GoHighLevel's URL is set in its marketplace app)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from connector.cli.common import get_registry, plugins_dir_option

__all__ = ["webhooks"]

PATH = "/webhooks/connecteam/"


def _target(url: str, env: dict[str, str]) -> str:
    """The URL to register: ``url`` itself when it is a Connecteam webhook URL already, else
    ``url`` as the server's public base, with the path and CONNECTEAM_WEBHOOK_SECRET."""
    if PATH in url:
        return url
    secret = env.get("CONNECTEAM_WEBHOOK_SECRET")
    if not secret:
        raise click.UsageError(
            "CONNECTEAM_WEBHOOK_SECRET is not set: `connector serve` refuses Connecteam webhooks "
            "without it; set it (the same value for the server) and run this again"
        )
    return url.rstrip("/") + PATH + secret


def _shown(url: str) -> str:
    head, sep, _ = url.partition(PATH)
    return head + sep + "***" if sep else url


@click.group()
def webhooks() -> None:
    """Register where vendors send their webhooks."""


@webhooks.command("register")
@click.argument("app", type=click.Choice(["connecteam"]))
@click.option(
    "--url",
    required=True,
    help="The server's public https base URL (https://sync.example.com), or a whole "
    "https://.../webhooks/connecteam/SECRET URL.",
)
@click.option(
    "--feature",
    "features",
    multiple=True,
    type=click.Choice(["users", "tasks"]),
    help="Which events (repeatable; default: users and tasks).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the registered webhooks as JSON.")
@plugins_dir_option
def register(app: str, url: str, features: tuple[str, ...], as_json: bool) -> None:
    """Register URL with Connecteam for the events the recipes use.

    \b
    One webhook per feature type, through Connecteam's /settings/v1/webhooks API with
    CONNECTEAM_API_KEY (an account owner's key; Connecteam wants an https URL):
      users: user_created, user_updated, user_archived, user_restored, user_deleted
      tasks: task_published, task_completed
    \b
    Example:
      CONNECTEAM_WEBHOOK_SECRET=... connector webhooks register connecteam \\
          --url https://sync.example.com
    """
    from connector.sending.http import make_clients
    from connector.serve.wiring import CONNECTEAM_EVENTS

    env = dict(os.environ)
    target = _target(url, env)
    registry, _report = get_registry()
    connecteam = registry.apps["connecteam"]
    if not any(env.get(name) for name in connecteam.secret_env):
        raise click.UsageError("CONNECTEAM_API_KEY is not set")
    [client] = make_clients([connecteam], env).values()
    made: list[dict[str, Any]] = []
    with client:
        for feature in features or tuple(CONNECTEAM_EVENTS):
            body = {
                "name": f"connector {feature}",
                "url": target,
                "featureType": feature,
                "eventTypes": CONNECTEAM_EVENTS[feature],
            }
            try:
                answer = client.post("settings/v1/webhooks", json=body)
            except Exception as exc:
                click.echo(f"error: cannot reach Connecteam: {type(exc).__name__}", err=True)
                sys.exit(1)
            if answer.status_code >= 300:
                detail = answer.text[:300].replace(target, _shown(target))
                click.echo(
                    f"error: Connecteam refused the {feature} webhook "
                    f"({answer.status_code}): {detail}",
                    err=True,
                )
                sys.exit(1)
            data = answer.json().get("data") or {}
            made.append({"id": data.get("id"), "featureType": feature, "url": _shown(target)})
    if as_json:
        click.echo(json.dumps(made, indent=2))
        return
    for hook in made:
        events = ", ".join(CONNECTEAM_EVENTS[hook["featureType"]])
        click.echo(
            f"registered webhook {hook['id']} ({hook['featureType']}: {events}) -> {hook['url']}"
        )
