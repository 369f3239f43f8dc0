"""``connector sandbox``: serve the stateful GoHighLevel and Connecteam fakes until Ctrl-C."""

from __future__ import annotations

import os
from pathlib import Path

import click

from connector.errors import ConnectorError

__all__ = ["sandbox"]


@click.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8765, show_default=True, type=int, help="Port (0 picks a free one)."
)
@click.option(
    "--seed",
    "seed_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Seed YAML to start from instead of the shipped one (see docs/sandbox.md).",
)
@click.option(
    "--fault",
    "fault_specs",
    multiple=True,
    metavar="SPEC",
    help="Inject faults, e.g. '503:0.2', '429:0.1,retry_form=date', 'slow:1,delay=2', "
    "'drop-after:0.5,path=/ghl/contacts,method=POST' (repeatable; also CONNECTOR_SANDBOX_FAULTS).",
)
@click.option(
    "--fault-seed",
    type=int,
    default=None,
    help="Random seed for the faults, so runs are reproducible (also CONNECTOR_SANDBOX_FAULT_SEED).",
)
@click.option("--webhook-url", default=None, help="POST signed GoHighLevel-style events here.")
@click.pass_context
def sandbox(
    ctx: click.Context,
    host: str,
    port: int,
    seed_file: Path | None,
    fault_specs: tuple[str, ...],
    fault_seed: int | None,
    webhook_url: str | None,
) -> None:
    """Serve stateful fakes of GoHighLevel (/ghl) and Connecteam (/connecteam).

    \b
    The sandbox behaves as the vendors' documents say: auth, the Version
    header, validation errors, pagination, rate limits and their headers,
    OAuth with rotating refresh tokens. State lives in memory until you stop
    it (Ctrl-C). Point a run at it with the printed environment lines:
    \b
      connector sandbox --port 8765
      export GHL_BASE_URL=http://127.0.0.1:8765/ghl ...
      connector run recipes/pull.yaml
    \b
    Or let `connector run RECIPE --sandbox` start one for a single run.
    Control endpoints: GET /_sandbox/state, POST /_sandbox/reset,
    POST /_sandbox/faults (see docs/sandbox.md).
    \b
    `connector sandbox show APP COLLECTION FIELD=VALUE` prints the records of
    a running sandbox that match, not its whole state.
    """
    if ctx.invoked_subcommand is not None:
        return
    from connector.sandbox.faults import FaultConfig
    from connector.sandbox.server import bind, create_app, server_for

    try:
        faults = FaultConfig.from_env(os.environ)
        if fault_specs:
            faults = FaultConfig.from_specs(list(fault_specs), faults.seed)
        if fault_seed is not None:
            faults.seed = fault_seed
        app = create_app(seed_file, faults, webhook_url=webhook_url)
        sock = bind(host, port)
    except ConnectorError as exc:
        raise click.ClickException(str(exc)) from exc
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}"
    state = app.state_
    click.echo(f"Sandbox serving on {url}")
    click.echo(
        f"  GoHighLevel: {url}/ghl    Connecteam: {url}/connecteam    control: {url}/_sandbox"
    )
    if faults.rules:
        click.echo(f"  faults: {len(faults.rules)} rule(s), seed {faults.seed}")
    click.echo("Point a run at it (sandbox credentials: they work only here):")
    click.echo(f"  export GHL_BASE_URL={url}/ghl")
    click.echo(f"  export GHL_TOKEN={state.default_token}")
    click.echo(f"  export GHL_LOCATION_ID={state.default_location_id}")
    click.echo(f"  export CONNECTEAM_BASE_URL={url}/connecteam")
    click.echo(f"  export CONNECTEAM_API_KEY={state.default_api_key}")
    click.echo("Press Ctrl-C to stop.")
    server = server_for(app, host, bound)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        app.webhooks.close()
        sock.close()
    click.echo("Sandbox stopped.")


@sandbox.command("show")
@click.argument("app", type=click.Choice(["ghl", "connecteam"]))
@click.argument("collection", metavar="COLLECTION")
@click.argument("where", nargs=-1, metavar="[FIELD=VALUE]...")
@click.option(
    "--url",
    default="http://127.0.0.1:8765",
    show_default=True,
    envvar="CONNECTOR_SANDBOX_URL",
    help="The running sandbox (`connector serve --sandbox` prints its address).",
)
def show(app: str, collection: str, where: tuple[str, ...], url: str) -> None:
    """Print the records of a running sandbox's COLLECTION that match every FIELD=VALUE (text
    compared without regard to case), as JSON: just those records, not the whole state.

    \b
    COLLECTION: ghl contacts, tasks, notes, appointments, users, calendars,
    locations; connecteam users, tasks, notes, taskBoards, customFields.
    \b
      connector sandbox show ghl contacts email=ada@example.com --url http://127.0.0.1:8765
      connector sandbox show connecteam users lastName=Lovelace
      connector sandbox show ghl tasks title='Bring samples'
    \b
    Exit status: 0 records found, 1 none (or the sandbox cannot be reached), 2 usage.
    """
    import json

    import httpx

    wanted: list[tuple[str, str]] = []
    for item in where:
        field, sep, value = item.partition("=")
        if not sep or not field:
            raise click.UsageError(
                f"{item!r} is not FIELD=VALUE (for example email=ada@example.com)"
            )
        wanted.append((field, value))
    try:
        answer = httpx.get(f"{url.rstrip('/')}/_sandbox/state", timeout=10)
        answer.raise_for_status()
        state = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise click.ClickException(f"cannot read the sandbox at {url}: {exc}") from None
    world = state.get(app) if isinstance(state, dict) else None
    if not isinstance(world, dict) or collection not in world:
        known = ", ".join(k for k, v in (world or {}).items() if isinstance(v, list | dict))
        raise click.UsageError(f"{app} has no collection {collection!r} (it has: {known})")
    found = [r for r in _records(world[collection]) if _matches(r, wanted)]
    if not found:
        shown = " ".join(where) or "(any)"
        click.echo(f"no {app} {collection} with {shown} in the sandbox at {url} (yet?)", err=True)
        raise SystemExit(1)
    click.echo(json.dumps(found, indent=2, ensure_ascii=False))


def _records(value: object) -> list[dict[str, object]]:
    """The records of a collection: a list, or lists kept per parent (tasks per contact)."""
    if isinstance(value, list):
        return [r for r in value if isinstance(r, dict)]
    if isinstance(value, dict):
        return [r for inner in value.values() for r in _records(inner)]
    return []


def _matches(record: dict[str, object], wanted: list[tuple[str, str]]) -> bool:
    for field, value in wanted:
        have = record.get(field)
        if have is None or str(have).casefold() != value.casefold():
            return False
    return True
