"""Persistence: the one database and everything kept in it.

:mod:`~connector.persistence.tables` declares every table on one ``metadata`` (a leaf: it imports
only SQLAlchemy); :mod:`~connector.persistence.migrations` brings a database to that schema;
:mod:`~connector.persistence.database` opens it. The stores beside them each own the reads and
writes of their tables: runs (:mod:`~connector.persistence.runs`, with the search terms of
:mod:`~connector.persistence.history`), id links, connections (sealed by
:mod:`~connector.persistence.sealing`), rate budgets, the journal of writes
(:mod:`~connector.persistence.effects`), poll cursors, webhook deliveries, echoes and the
executors' liveness locks. Nothing here imports the runtime, serving or the page.
"""
