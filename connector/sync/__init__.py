"""Two-way sync: paired records kept the same in both apps, field by field, against the last
state both sides agreed on.

- :mod:`connector.sync.merge`: the decision, with no I/O: what changed on each side since the
  last sync, what goes where, and the conflicts and how the declared rules decide them;
- :mod:`connector.sync.engine`: one sync run for one event, durably: read what the event lacks,
  pair by the match keys, read the other side, write each side once, and keep the new state in
  the transaction that records the write as done;
- :mod:`connector.sync.jobs`: the events of a served app as sync jobs on the run queue.

The declaration is :class:`connector.language.sync_spec.SyncSpec`; the state is kept by
:class:`connector.persistence.sync.SyncStore`.
"""
