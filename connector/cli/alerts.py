"""``connector alerts``: the alerts `connector serve` sends (CONNECTOR_ALERT_URLS)."""

from __future__ import annotations

import os
import sys

import click


@click.group()
def alerts() -> None:
    """Alerts: when a run fails for good, a write's outcome is unknown, a sync conflict waits for
    a person, or a connection needs a new login, `connector serve` tells every Apprise URL in
    CONNECTOR_ALERT_URLS (separated by spaces or commas): mailto://, slack://, msteams://,
    discord://, json:// (a webhook) and the rest Apprise supports.

    Each alert opens an incident; a retry or replay that succeeds, "Mark resolved" on the run's
    page, a decided conflict or a new login closes it, and the same targets get one short
    "resolved" message. A recipe or sync adds its own targets with `alerts: [URL or VARIABLE]`
    (or sends only there with `alerts: {to: [...], deployment: false}`). Thresholds, off unless
    set: CONNECTOR_ALERT_BACKLOG=500 (runs queued), CONNECTOR_ALERT_FAILURE_RATE=0.2 (share of
    the runs of the last CONNECTOR_ALERT_FAILURE_WINDOW=300 seconds that failed): one alert when
    crossed, one "back to normal" after.

    \b
      connector alerts test     send one test alert to every configured URL
    """


@alerts.command("test")
def test_alert() -> None:
    """Send one test alert to every URL in CONNECTOR_ALERT_URLS, and say which took it.

    Exit 0 every target took it, 1 one did not, 2 no URL is configured."""
    from connector.serve.targets import alert_urls, hide_in_logs, send_apprise, shown_url

    urls = alert_urls(os.environ.get("CONNECTOR_ALERT_URLS"))
    if not urls:
        click.echo(
            "error: CONNECTOR_ALERT_URLS is not set: give it Apprise URLs (for example"
            " mailto://user:password@example.com or json://alerts.example.com/hook)",
            err=True,
        )
        sys.exit(2)
    hide_in_logs(urls)
    title = "connector: a test alert"
    body = (
        "This is a test alert from `connector alerts test`. Alerts look like this one: what"
        " failed, what the vendor said, and a link to the run's page."
    )
    failed = 0
    for url in urls:
        if send_apprise(url, title, body):
            click.echo(f"sent to {shown_url(url)}")
        else:
            failed += 1
            click.echo(f"error: {shown_url(url)} did not take the alert", err=True)
    sys.exit(1 if failed else 0)
