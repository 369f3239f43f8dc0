"""``connector serve``: the recipes run by themselves, from webhooks, hooks, polls and schedules.

- :mod:`~connector.serve.app`: the HTTP routes (Starlette); :mod:`~connector.serve.server` the
  process (runtime, intake, schedules, polls, uvicorn, SIGTERM).
- :mod:`~connector.serve.bodies`: what a delivery's body must be; each app's webhooks (how a
  delivery is verified and read into events) are the app's own (:attr:`App.webhooks
  <connector.apps.App.webhooks>`, :mod:`connector.apps.events`).
- :mod:`~connector.serve.events`: events and their run ids; :mod:`~connector.serve.intake` routes
  them to recipes and stores their runs on the durable queue, after
  :mod:`~connector.persistence.deliveries` (duplicates, bursts) and :mod:`~connector.persistence.echoes`
  (the runtime's own writes coming back).
- :mod:`~connector.serve.schedules`, :mod:`~connector.serve.polls` (the pollers each app
  declares, :attr:`App.polls <connector.apps.App.polls>`), with their
  :mod:`~connector.persistence.cursors`.
- :mod:`~connector.serve.metrics`: ``GET /metrics``; :mod:`~connector.serve.wiring`:
  ``--sandbox``.
"""
