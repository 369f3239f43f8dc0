"""``connector auth``: log in to GoHighLevel and Connecteam, list and remove connections."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any

import click

from connector.cli.common import get_registry, plugins_dir_option

__all__ = ["auth"]

TITLES = {"ghl": "GoHighLevel", "connecteam": "Connecteam"}


def _secret(prompt: str, env: dict[str, str], name: str) -> str:
    """``name`` from the environment, else asked for without echo (a line of stdin when it is
    not a terminal)."""
    if env.get(name):
        return env[name]
    if sys.stdin.isatty():
        value = click.prompt(prompt, hide_input=True, err=True)
    else:
        click.echo(f"{prompt}: ", err=True, nl=False)
        value = sys.stdin.readline()
    value = str(value).strip()
    if not value:
        raise click.UsageError(f"no {prompt.lower()} given (set {name}, or type it when asked)")
    return value


def _plain(prompt: str, env: dict[str, str], name: str) -> str:
    if env.get(name):
        return env[name]
    if sys.stdin.isatty():
        return str(click.prompt(prompt, err=True)).strip()
    raise click.UsageError(f"{name} is not set")


def _recipe_scopes(paths: tuple[str, ...], app: str) -> list[str]:
    """The scopes the recipes and sync declarations ``paths`` name need from ``app``."""
    from connector.catalog.model import Operation
    from connector.connections.login import scopes_of
    from connector.language.sync_spec import is_sync_file, load_sync
    from connector.language.validate import find_recipe_files
    from connector.runtime.prepare import prepare

    registry, _report = get_registry()
    plans = []
    synced: list[str] = []
    for path in find_recipe_files(paths):
        if is_sync_file(path):
            spec, _problems = load_sync(path, registry)
            if spec is None:
                raise click.UsageError(
                    f"{path} is not a valid sync declaration: run `connector validate {path}`"
                )
            for name in spec.operations():
                op = registry.operation(name)
                if isinstance(op, Operation) and op.app == app and op.scopes:
                    synced.append(op.scopes[0])
            continue
        prepared = prepare(path, registry)
        if prepared.plan is None:
            raise click.UsageError(f"{path} is not a valid recipe: run `connector validate {path}`")
        plans.append(prepared.plan)
    return list(dict.fromkeys([*scopes_of(plans, app), *synced]))


def _store(env: dict[str, str]) -> Any:
    from connector.connections import open_store

    return open_store(env)


def _line(conn: Any) -> str:
    from connector.connections.login import describe_expiry

    what = {
        "location": "location",
        "company": "agency",
        "api_key": "API key for",
        "client_credentials": "OAuth client for",
    }[conn.kind]
    state = f"needs a new login: {conn.needs_login}" if conn.needs_login else "ok"
    parts = [f"{TITLES.get(conn.app, conn.app)} {what} {conn.account}"]
    if conn.parent:
        parts.append(f"(through {conn.parent})")
    if conn.scopes:
        parts.append("scopes: " + " ".join(conn.scopes))
    if conn.kind == "company" and conn.meta.get("locations") is not None:
        parts.append(f"{len(conn.meta['locations'])} locations")
    if conn.kind != "api_key":
        parts.append("expires " + describe_expiry(conn.expires_at))
    parts.append(state)
    return "  ".join(parts)


@click.group()
def auth() -> None:
    """Connections to GoHighLevel and Connecteam, stored encrypted in the database.

    \b
    A run uses the connection of the location its event names (GoHighLevel) or
    the one Connecteam connection; GHL_TOKEN and CONNECTEAM_API_KEY, when set,
    override what is stored. Tokens are refreshed before they expire and after
    a 401, once across every process; a refresh that is refused marks the
    connection as needing a new login (`auth status` says so).
    \b
    The key that encrypts them: CONNECTOR_SECRET_KEY, else the OS keyring,
    else CONNECTOR_HOME/secret.key (0600). Processes that share a PostgreSQL
    database need the same key: `connector auth key` prints a new one.
    """


@auth.command("login")
@click.argument("app", type=click.Choice(["ghl", "connecteam"]))
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--no-browser", is_flag=True, help="Print the sign-in URL instead of opening a browser."
)
@click.option(
    "--scopes", default="", help="Scopes to ask for (space-separated), besides the recipes'."
)
@click.option(
    "--user-type",
    type=click.Choice(["Location", "Company"]),
    default="Location",
    show_default=True,
    help="GoHighLevel: one sub-account (Location), or an agency (Company) and its locations.",
)
@click.option(
    "--port", type=int, default=0, help="GoHighLevel: the loopback port (default: a free one)."
)
@click.option(
    "--timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds to wait for the sign-in.",
)
@click.option(
    "--client-credentials",
    is_flag=True,
    help="Connecteam: OAuth client credentials (CONNECTEAM_CLIENT_ID / _SECRET) instead of an API key.",
)
@click.option(
    "--name", default="default", show_default=True, help="Connecteam: a name for this account."
)
@click.option(
    "--location", default=None, help="Connecteam: the GoHighLevel location its events sync with."
)
@plugins_dir_option
def login(
    app: str,
    paths: tuple[str, ...],
    no_browser: bool,
    scopes: str,
    user_type: str,
    port: int,
    timeout: float,
    client_credentials: bool,
    name: str,
    location: str | None,
) -> None:
    """Log in to APP and store the connection.

    \b
    GoHighLevel (OAuth 2.0 authorization code, loopback redirect):
      GHL_CLIENT_ID=... GHL_CLIENT_SECRET=... connector auth login ghl recipes/
    asks for the scopes the recipes under PATHS use (plus --scopes), opens the
    authorize page (GHL_AUTH_URL), and waits for it to redirect to
    http://127.0.0.1:PORT/callback, which the marketplace app must allow
    (fix it with --port). --user-type Company logs in an agency: location
    tokens are then obtained as runs need them.
    \b
    Connecteam: an API key, asked for without echo (or CONNECTEAM_API_KEY):
      connector auth login connecteam
      connector auth login connecteam --client-credentials
    """
    env = dict(os.environ)
    from connector.connections.login import LoginError

    try:
        if app == "ghl":
            conns = _login_ghl(env, paths, no_browser, scopes, user_type, port, timeout)
        else:
            if paths:
                raise click.UsageError(
                    "recipes are for GoHighLevel's scopes; Connecteam's come with its key"
                )
            conns = _login_connecteam(env, client_credentials, name, location)
    except LoginError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for conn in conns:
        click.echo(f"connected: {_line(conn)}")


def _login_ghl(
    env: dict[str, str],
    paths: tuple[str, ...],
    no_browser: bool,
    extra: str,
    user_type: str,
    port: int,
    timeout: float,
) -> list[Any]:
    from connector.builtins.apps import GHL_DEFAULT_BASE_URL
    from connector.connections.login import DEFAULT_GHL_AUTH_URL, DEFAULT_GHL_SCOPES, ghl_login

    wanted = _recipe_scopes(paths, "ghl") if paths else list(DEFAULT_GHL_SCOPES)
    wanted = list(dict.fromkeys([*wanted, *extra.split()]))
    client_id = _plain("GoHighLevel client id", env, "GHL_CLIENT_ID")
    client_secret = _secret("GoHighLevel client secret", env, "GHL_CLIENT_SECRET")
    store = _store(env)

    def show(url: str) -> None:
        if not no_browser:
            import webbrowser

            with contextlib.suppress(Exception):  # no browser here: the URL below is enough
                webbrowser.open(url)
        click.echo("Open this page to connect GoHighLevel:")
        click.echo(url)
        sys.stdout.flush()

    return ghl_login(
        store,
        client_id=client_id,
        client_secret=client_secret,
        authorize_url=env.get("GHL_AUTH_URL") or DEFAULT_GHL_AUTH_URL,
        base_url=env.get("GHL_BASE_URL") or GHL_DEFAULT_BASE_URL,
        scopes=wanted,
        user_type=user_type,
        show=show,
        port=port,
        timeout=timeout,
    )


def _login_connecteam(
    env: dict[str, str], client_credentials: bool, name: str, location: str | None
) -> list[Any]:
    from connector.builtins.apps import CONNECTEAM_DEFAULT_BASE_URL
    from connector.connections.login import connecteam_client_login, store_connecteam_key

    store = _store(env)
    if not client_credentials:
        key = _secret("Connecteam API key", env, "CONNECTEAM_API_KEY")
        return [store_connecteam_key(store, key, name, location)]
    return [
        connecteam_client_login(
            store,
            base_url=env.get("CONNECTEAM_BASE_URL") or CONNECTEAM_DEFAULT_BASE_URL,
            client_id=_plain("Connecteam client id", env, "CONNECTEAM_CLIENT_ID"),
            client_secret=_secret("Connecteam client secret", env, "CONNECTEAM_CLIENT_SECRET"),
            name=name,
            location=location,
        )
    ]


@auth.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the connections as a JSON list.")
def status(as_json: bool) -> None:
    """List the stored connections: app, location or account, scopes, expiry, and whether each
    needs a new login. Exits 1 when one does."""
    from connector.connections import open_store

    env = dict(os.environ)
    conns = open_store(env, sealed=False).find()
    now = time.time()
    if as_json:
        click.echo(json.dumps([c.to_json(now) for c in conns], indent=2))
    else:
        if not conns:
            click.echo(
                "no connections: run `connector auth login ghl` or `connector auth login connecteam`"
            )
        for conn in conns:
            click.echo(_line(conn))
        for var, app in (("GHL_TOKEN", "GoHighLevel"), ("CONNECTEAM_API_KEY", "Connecteam")):
            if env.get(var):
                click.echo(f"{var} is set: it overrides the stored {app} connections", err=True)
    if any(c.needs_login for c in conns):
        sys.exit(1)


@auth.command("logout")
@click.argument("app", type=click.Choice(["ghl", "connecteam"]))
@click.argument("account", required=False)
@click.option("--all", "everything", is_flag=True, help="Every connection of APP.")
def logout(app: str, account: str | None, everything: bool) -> None:
    """Forget APP's connection for ACCOUNT (a location, agency or Connecteam name), or --all.

    The tokens are deleted from the database; revoke the app's access in the vendor's settings
    to end them there too.
    """
    from connector.connections import forget_tokens, open_store

    store = open_store(dict(os.environ), sealed=False)
    conns = store.find(app)
    if everything:
        chosen = conns
    elif account:
        chosen = [c for c in conns if c.account == account or c.id == account]
    elif len(conns) == 1:
        chosen = conns
    else:
        accounts = ", ".join(c.account for c in conns) or "none"
        raise click.UsageError(f"which {TITLES[app]} connection? ({accounts}); or --all")
    if not chosen:
        click.echo(f"error: no {TITLES[app]} connection {account}", err=True)
        sys.exit(1)
    gone: list[str] = []
    for conn in chosen:
        gone.extend(store.delete(conn.id))
    forget_tokens()
    for conn_id in dict.fromkeys(gone):
        click.echo(f"removed {conn_id}")


@auth.command("key")
def key() -> None:
    """Print a new encryption key for CONNECTOR_SECRET_KEY (set the same one on every machine
    that shares the database, before the first login)."""
    from connector.persistence.sealing import new_key

    click.echo(new_key())
