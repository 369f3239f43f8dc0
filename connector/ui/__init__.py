"""The run history page of ``connector serve``: the audit trail across both systems, in a browser.

Served at ``/`` beside the webhook routes (:func:`mount`, called by the serve app), it shows every
run newest first, filtered and searched by any id or email a run touched
(:mod:`connector.persistence.history`); one run with its trigger, each step's request and response (redacted), attempts, waits and
``foreach`` items; the failed and waiting runs as a queue to retry, replay or mark resolved; the
connections and the id links; and it updates itself as runs start and end (server-sent events).

Its parts: :mod:`~connector.ui.access` (who may see it, CSRF), :mod:`~connector.ui.queries` (the
reads), :mod:`~connector.ui.pages` and :mod:`~connector.ui.actions` (the handlers),
:mod:`~connector.ui.live` (the event stream), :mod:`~connector.ui.present` (templates and
redaction), :mod:`~connector.ui.web` (the page's state and its gate) and
:mod:`~connector.ui.routes` (the routes). Templates and static files are package
data; nothing is loaded from the internet and there is no build step.
"""

from __future__ import annotations

from connector.ui.routes import mount, serving
from connector.ui.web import UI

__all__ = ["UI", "mount", "serving"]
