"""``connector serve``: run the recipes unattended, from webhooks, hooks and schedules."""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import ExitStack
from typing import Any

import click

from connector.cli.common import get_registry, plugins_dir_option
from connector.errors import ConnectorError, UsageError

__all__ = ["serve"]

EPILOG = """\b
Routes:
  POST /webhooks/ghl                  GoHighLevel webhooks (signature verified)
  POST /webhooks/connecteam/SECRET    Connecteam webhooks (CONNECTEAM_WEBHOOK_SECRET)
  POST /webhooks/APP...               the webhooks a plugin's app declares
  POST /hooks/RECIPE                  any JSON object as RECIPE's event
                                      (Authorization: Bearer $CONNECTOR_HOOK_TOKEN)
  GET  /healthz, GET /metrics         readiness; Prometheus metrics
  GET  /                              the run history page (off 127.0.0.1 it needs
                                      CONNECTOR_UI_PASSWORD; see docs/ui.md)
\b
Examples:
  connector serve recipes/ --sandbox          everything against the embedded sandbox
  connector serve recipes/ --port 8000        for real: point GoHighLevel's webhook URL at
                                              /webhooks/ghl, and register Connecteam's with
                                              `connector webhooks register connecteam`
"""


def _load(paths: tuple[str, ...], registry: Any) -> tuple[list[tuple[Any, str]], list[Any]]:
    """The recipes (plans and texts) and the sync declarations in ``paths``."""
    from connector.language.sync_spec import is_sync_file, load_sync
    from connector.language.validate import find_recipe_files
    from connector.runtime.prepare import prepare

    try:
        files = find_recipe_files(paths)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    recipes: list[tuple[Any, str]] = []
    syncs: list[Any] = []
    bad, names = 0, dict[str, str]()
    for path in files:
        if is_sync_file(path):
            spec, problems = load_sync(path, registry)
            for problem in problems:
                click.echo(str(problem), err=True)
            if spec is None:
                bad += 1
            elif spec.name in names:
                click.echo(
                    f"{path}: error: the name {spec.name!r} is in {names[spec.name]} too", err=True
                )
                bad += 1
            else:
                names[spec.name] = path
                syncs.append(spec)
            continue
        prepared = prepare(path, registry)
        if prepared.plan is None:
            for problem in prepared.problems:
                click.echo(str(problem), err=True)
            bad += 1
            continue
        name = prepared.plan.name
        if name in names:
            click.echo(f"{path}: error: a recipe named {name!r} is in {names[name]} too", err=True)
            bad += 1
            continue
        names[name] = path
        recipes.append((prepared.plan, prepared.text))
    served = {plan.name for plan, _ in recipes}
    for plan, _ in recipes:
        if plan.on_failure and plan.on_failure not in served:
            click.echo(
                f"{plan.path}: error: on_failure names the recipe {plan.on_failure!r}, which is"
                " not among the recipes served",
                err=True,
            )
            bad += 1
    if bad:
        click.echo(f"error: {bad} recipe(s) are not valid; nothing is served", err=True)
        sys.exit(2)
    if not recipes and not syncs:
        raise click.UsageError("no recipes found in " + ", ".join(paths))
    return recipes, syncs


@click.command(epilog=EPILOG)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port (0: a free one).")
@click.option(
    "--sandbox",
    is_flag=True,
    help="Start the embedded sandbox in this process and wire it both ways: its webhooks come "
    "here, the recipes act on it. Its state, journal and id links live in a scratch database "
    "that goes with it; each run is copied into the run history (`connector runs`) as it ends.",
)
@click.option(
    "--workers",
    default=64,
    show_default=True,
    type=click.IntRange(1, 256),
    help="How many runs this process executes at once: a run mostly waits for its API, so "
    "this, not the CPU, bounds the runs per second (and the memory they hold).",
)
@click.option(
    "--grace",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0),
    help="On SIGTERM, seconds running steps get to finish; what is left is finished on the next start.",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
    help="The least severe log line written (stderr): INFO tells each run's start, its waits "
    "and retries (with what the vendor said) and its end.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object a line (time, level, logger, message, run_id) for a log collector.",
)
@plugins_dir_option
def serve(
    paths: tuple[str, ...],
    host: str,
    port: int,
    sandbox: bool,
    workers: int,
    grace: float,
    log_level: str,
    log_format: str,
) -> None:
    """Run the recipes in PATH... unattended.

    Receives the apps' webhooks (GoHighLevel's, Connecteam's, a plugin app's) and hooks,
    polls, fires schedules, and runs every recipe whose trigger matches an event, durably: an
    event is answered 200 only once its runs are stored, and a run interrupted by a crash or
    a restart is finished when the server starts again. Duplicate deliveries run once; a
    change the runtime wrote itself does not come back as a new run.
    """
    from connector.serve.server import Service, bind

    registry, _report = get_registry()
    recipes, syncs = _load(paths, registry)
    if sandbox:
        _check_coverage(recipes)
        _check_host(host)
    env = dict(os.environ)
    home_env = dict(env)  # where the run history is, before --sandbox points at a scratch one
    from connector.serve.logs import configure

    configure(log_level, log_format)
    with ExitStack() as stack:
        try:
            sock = bind(host, port)
        except OSError as exc:
            click.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
            sys.exit(1)
        bound = sock.getsockname()[1]
        base = f"http://{_bracketed(host)}:{bound}"
        running = None
        clock = None
        if sandbox:
            running, clock = _start_sandbox(stack, env)
        try:
            service = Service(
                registry, recipes, env, workers=workers, grace=grace, sandbox=sandbox,
                syncs=syncs, **({"clock": clock} if clock else {}),
            )  # fmt: skip
            service.start()
            if sandbox:
                from connector.persistence.runs import RunStore

                service.keep_history(RunStore.for_env(home_env))
        except ConnectorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        if running is not None:
            from connector.serve.wiring import wire_sandbox

            hooks = f"http://{_bracketed(_webhook_host(sock))}:{bound}"
            wire_sandbox(running, hooks, env["CONNECTEAM_WEBHOOK_SECRET"])
            _tell_sandbox(running, base, recipes, syncs, bool(env.get("CONNECTOR_HOOK_TOKEN")))
        names = ", ".join(plan.name for plan, _ in recipes)
        click.echo(f"serving {len(recipes)} recipe(s) at {base}: {names}", err=True)
        for spec in syncs:
            kinds = ", ".join(
                f"{p.kind} ({p.ghl.title} <-> {p.connecteam.title})" for p in spec.pairs
            )
            click.echo(f"syncing {spec.name} both ways: {kinds}", err=True)
        from connector.ui.access import is_loopback

        if is_loopback(host) or env.get("CONNECTOR_UI_PASSWORD"):
            click.echo(f"the run history page: {base}/", err=True)
        else:
            click.echo(
                f"the run history page ({base}/) is refused: CONNECTOR_UI_PASSWORD is not set",
                err=True,
            )
        if not env.get("CONNECTOR_HOOK_TOKEN"):
            click.echo(
                "hooks (POST /hooks/RECIPE) are refused: CONNECTOR_HOOK_TOKEN is not set", err=True
            )
        service.serve(sock)
    click.echo("stopped", err=True)


def _bracketed(host: str) -> str:
    """``host`` as a URL has it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _unspecified(host: str) -> bool:
    """Whether ``host`` means every interface (0.0.0.0, ::)."""
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _check_host(host: str) -> None:
    """With --sandbox, ``host`` must include loopback: the sandbox, like Connecteam, takes only
    https webhook URLs, and plain http only to this machine's loopback addresses."""
    from connector.ui.access import is_loopback

    if not (_unspecified(host) or is_loopback(host)):
        raise click.UsageError(
            f"--sandbox with --host {host}: the sandbox sends its webhooks over http only to this"
            " machine's loopback addresses, which this address is not; listen on 127.0.0.1 or on"
            " every interface (--host 0.0.0.0)"
        )


def _webhook_host(sock: Any) -> str:
    """The address the sandbox's webhooks reach the server listening on ``sock`` at: the
    address it is bound to, or loopback when that is every interface."""
    address = str(sock.getsockname()[0])
    if _unspecified(address):
        return "::1" if ":" in address else "127.0.0.1"
    return address


def _check_coverage(recipes: list[tuple[Any, str]]) -> None:
    """Before anything starts: the steps whose operation the sandbox does not answer."""
    from connector.sandbox.coverage import uncovered_steps

    gaps = [problem for plan, _ in recipes for problem in uncovered_steps(plan)]
    for problem in gaps:
        click.echo(str(problem), err=True)
    if gaps:
        files = len({p.location.file for p in gaps})
        click.echo(
            f"error: {files} recipe(s) call operations the sandbox does not answer;"
            " nothing is served",
            err=True,
        )
        sys.exit(2)


def _start_sandbox(stack: ExitStack, env: dict[str, str]) -> tuple[Any, Any]:
    from connector.sandbox.server import start_in_thread
    from connector.serve.wiring import sandbox_env

    running = stack.enter_context(start_in_thread())
    secret = env.get("CONNECTEAM_WEBHOOK_SECRET")
    env.update(sandbox_env(running))
    if secret:
        env["CONNECTEAM_WEBHOOK_SECRET"] = secret
    scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="connector-serve-"))
    env["CONNECTOR_HOME"] = scratch
    env.pop("CONNECTOR_DATABASE_URL", None)
    click.echo(f"sandbox: GoHighLevel and Connecteam fakes at {running.url}", err=True)
    click.echo(
        "sandbox: each run is copied into the run history as it ends (marked sandbox), where"
        " `connector runs show ID` finds it; its journal and id links stay in a scratch database",
        err=True,
    )
    return running, running.app.clock


def _tell_sandbox(
    running: Any, base: str, recipes: list[tuple[Any, str]], syncs: list[Any], hooks: bool
) -> None:
    """What to try in the sandbox for the recipes and syncs loaded, and how to see what it did
    (the sandbox's credentials work only there, so they are shown)."""
    from connector.cli.serve_hints import Credentials, sandbox_hints

    state = running.state
    creds = Credentials(
        running.url, base, state.default_token, state.default_location_id, state.default_api_key
    )
    click.echo(
        "sandbox: its GoHighLevel and Connecteam webhooks come here; its credentials (they work"
        f" only there): -H 'Authorization: Bearer {creds.ghl_token}' (location"
        f" {creds.location_id}), -H 'X-API-KEY: {creds.api_key}'",
        err=True,
    )
    for line in sandbox_hints(creds, [plan for plan, _ in recipes], syncs, hooks):
        click.echo(line, err=True)
