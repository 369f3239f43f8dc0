"""``connector serve``: the recipes run by themselves, from webhooks, hooks, polls and schedules.

- :mod:`~connector.serve.app`: the HTTP routes (Starlette); :mod:`~connector.serve.server` the
  process (runtime, intake, schedules, polls, uvicorn, SIGTERM).
- :mod:`~connector.serve.signatures`, :mod:`~connector.serve.bodies`: what a delivery must be.
- :mod:`~connector.serve.events`: deliveries as events; :mod:`~connector.serve.intake` routes
  them to recipes and stores their runs on the durable queue, after
  :mod:`~connector.persistence.deliveries` (duplicates, bursts) and :mod:`~connector.persistence.echoes`
  (the runtime's own writes coming back).
- :mod:`~connector.serve.schedules`, :mod:`~connector.serve.polls`, with their
  :mod:`~connector.persistence.cursors`.
- :mod:`~connector.serve.metrics`: ``GET /metrics``; :mod:`~connector.serve.wiring`:
  ``--sandbox``.
"""
