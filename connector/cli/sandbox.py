"""``connector sandbox``: serve the stateful GoHighLevel and Connecteam fakes until Ctrl-C."""

from __future__ import annotations

import os
from pathlib import Path

import click

from connector.errors import ConnectorError

__all__ = ["sandbox"]


@click.command()
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
def sandbox(
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
    """
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
