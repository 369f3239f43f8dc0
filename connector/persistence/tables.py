"""Every table of ours, declared on the one :data:`metadata`.

This module imports only SQLAlchemy: the stores beside it (:mod:`connector.persistence`) read and
write these tables, :mod:`connector.persistence.migrations` creates them. DBOS keeps its own
system tables in the same database, declared and migrated by DBOS itself.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

MAX_TERM_LENGTH = 200  # a search term of the run history (connector.persistence.history)
MAX_KEY_LENGTH = 200  # a rate budget's key (connector.persistence.budgets)
MAX_PERSON_LENGTH = 200  # a person's name or email, as the page shows who a run was about

# the tables of connector.persistence.runs

runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("recipe", sa.String(200), nullable=False),
    sa.Column("recipe_hash", sa.String(64), nullable=False),
    sa.Column("recipe_path", sa.Text, nullable=False),
    sa.Column("trigger_app", sa.String(100), nullable=False),
    sa.Column("trigger_event", sa.String(200), nullable=False),
    sa.Column("trigger_json", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False, default=False),
    sa.Column("sandbox", sa.Boolean, nullable=False, default=False),
    sa.Column("parent", sa.String(64), nullable=True),
    sa.Column("env_json", sa.Text, nullable=True),
    sa.Column("output_json", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32), nullable=True),
    sa.Column("duration_ms", sa.Float, nullable=True),
    # migration 6: who the run was about (a person's name, else their email), for the page's
    # list; from the trigger, else from the people its ids name (connector.persistence.history)
    sa.Column("person", sa.String(MAX_PERSON_LENGTH), nullable=True),
)


sa.Index("runs_started", runs_table.c.started_at)


sa.Index("runs_recipe", runs_table.c.recipe, runs_table.c.started_at)


sa.Index("runs_status", runs_table.c.status, runs_table.c.started_at)


# migration 3, for the run history page: a run's retries and replays, the trigger filter
sa.Index("runs_parent", runs_table.c.parent)


sa.Index("runs_trigger", runs_table.c.trigger_event, runs_table.c.started_at)


steps_table = sa.Table(
    "run_steps",
    metadata,
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("step_id", sa.String(200), nullable=False),
    sa.Column("record_json", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.PrimaryKeyConstraint("run_id", "seq"),
)


# a run made from another by `runs retry` (which continues its parent's per-run write claims)
# or `runs replay` (which does its writes again), recorded before the fork starts it
forks_table = sa.Table(
    "run_forks",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("claims_of", sa.String(64), nullable=False),
)


recipes_table = sa.Table(
    "recipes",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
)


# the tables of connector.persistence.history

terms_table = sa.Table(
    "run_terms",
    metadata,
    sa.Column("term", sa.String(MAX_TERM_LENGTH), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("term", "run_id", name="run_terms_pkey"),
)


sa.Index("run_terms_newest", terms_table.c.term, terms_table.c.started_at, terms_table.c.run_id)


sa.Index("run_terms_run", terms_table.c.run_id)


marks_table = sa.Table(
    "run_marks",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("resolved_at", sa.String(32), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
)


# migration 6: the people the runs met, by id (a contact's, a user's; lower-cased as a term):
# the name (else the email) last seen with that id in a trigger, a request or a response
people_table = sa.Table(
    "people",
    metadata,
    sa.Column("term", sa.String(MAX_TERM_LENGTH), primary_key=True),
    sa.Column("name", sa.String(MAX_PERSON_LENGTH), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
)


# the tables of connector.persistence.pauses (migration 6): the recipes paused, by name, and the
# events they were given while paused, held until they are resumed

pauses_table = sa.Table(
    "recipe_pauses",
    metadata,
    sa.Column("recipe", sa.String(200), primary_key=True),
    sa.Column("paused_at", sa.String(32), nullable=False),
    sa.Column("by", sa.String(200), nullable=False),  # "page", "cli"
)

held_table = sa.Table(
    "held_events",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),  # the run the event becomes
    sa.Column("recipe", sa.String(200), nullable=False),
    sa.Column("app", sa.String(100), nullable=False),
    sa.Column("type", sa.String(200), nullable=False),
    sa.Column("key", sa.String(300), nullable=False),
    sa.Column("subject", sa.String(300), nullable=True),
    sa.Column("payload_json", sa.Text, nullable=False),
    sa.Column("held_at", sa.String(32), nullable=False),
)
sa.Index("held_events_recipe", held_table.c.recipe, held_table.c.held_at)


# the tables of connector.persistence.links

links_table = sa.Table(
    "links",
    metadata,
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("ghl_id", sa.Text, nullable=False),
    sa.Column("connecteam_id", sa.Text, nullable=False),
    # the ids are stored as text; these say which of them were JSON integers
    sa.Column("ghl_id_is_int", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("connecteam_id_is_int", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("meta", sa.Text, nullable=False, server_default=sa.text("'{}'")),  # a JSON object
    sa.Column("created_at", sa.Text, nullable=False),  # ISO 8601 UTC, seconds, "Z"
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("kind", "ghl_id", name="links_pkey"),
    sa.UniqueConstraint("kind", "connecteam_id", name="links_kind_connecteam_id_key"),
)


# the tables of connector.persistence.connections

connections_table = sa.Table(
    "connections",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("app", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # location | company | api_key | client_credentials
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("parent", sa.Text, nullable=True),  # the agency connection a location came from
    sa.Column("scopes", sa.Text, nullable=False, server_default=sa.text("''")),  # space-separated
    sa.Column("expires_at", sa.Float, nullable=True),  # epoch seconds; null: does not expire
    sa.Column("needs_login", sa.Text, nullable=True),  # why a new login is needed, when it is
    sa.Column("meta", sa.Text, nullable=False, server_default=sa.text("'{}'")),  # JSON, not secret
    sa.Column("secret", sa.Text, nullable=False),  # sealed JSON
    sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("refresh_owner", sa.Text, nullable=True),
    sa.Column("refresh_until", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


# the tables of connector.persistence.page_sessions: the run history page's key (random, sealed
# like a connection's secret) and its sessions, so that logging out ends one everywhere

page_keys_table = sa.Table(
    "page_keys",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("sealed", sa.Text, nullable=False),  # {"key": ..., "password": ...}, sealed
    sa.Column("updated_at", sa.Float, nullable=False),
)

page_sessions_table = sa.Table(
    "page_sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # the SHA-256 of the session's nonce
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


# the tables of connector.persistence.budgets

rate_requests = sa.Table(
    "rate_requests",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("key", sa.String(MAX_KEY_LENGTH), nullable=False),
    sa.Column("at", sa.Double(), nullable=False),
    sa.Column("n", sa.Integer(), nullable=False),
    sa.Column("expires", sa.Double(), nullable=False),
    sa.Index("ix_rate_requests_key_at", "key", "at"),
    sa.Index("ix_rate_requests_expires", "expires"),
)


rate_days = sa.Table(
    "rate_days",
    metadata,
    sa.Column("key", sa.String(MAX_KEY_LENGTH), primary_key=True),
    sa.Column("day", sa.Integer(), primary_key=True),
    sa.Column("used", sa.BigInteger(), nullable=False),
)


# the tables of connector.persistence.effects

effects_table = sa.Table(
    "effects",
    metadata,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(300), nullable=False),
    sa.Column("output_json", sa.Text, nullable=True),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


sa.Index("effects_run", effects_table.c.run_id)


# the tables of connector.persistence.cursors

cursors_table = sa.Table(
    "cursors",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


# the tables of connector.persistence.deliveries

deliveries_table = sa.Table(
    "deliveries",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("delivery_id", sa.String(200), primary_key=True),
    sa.Column("received_at", sa.Float, nullable=False),
)


latest_table = sa.Table(
    "latest_events",
    metadata,
    sa.Column("subject", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("event_key", sa.String(200), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
)


event_runs_table = sa.Table(
    "event_runs",
    metadata,
    sa.Column("event_key", sa.String(200), primary_key=True),
    sa.Column("recipe", sa.String(200), primary_key=True),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
)


# the tables of connector.persistence.echoes

echoes_table = sa.Table(
    "echoes",
    metadata,
    sa.Column("subject", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("fields", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)


# the tables of connector.persistence.database

schema_table = sa.Table(
    "connector_schema",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)


# the tables of connector.persistence.sync

# the last synced state of every pair of a two-way sync: per mapped field the value both sides
# agreed on (after the field's transform), and per side the vendor's change time of the newest
# state of that record the sync has seen (an event older than it changes nothing)
sync_state_table = sa.Table(
    "sync_state",
    metadata,
    sa.Column("kind", sa.String(64), primary_key=True),
    sa.Column("ghl_id", sa.String(256), primary_key=True),
    sa.Column("connecteam_id", sa.String(256), nullable=False),
    sa.Column("base_json", sa.Text, nullable=False),  # {field: value}
    sa.Column("ghl_seen_at", sa.Float, nullable=True),
    sa.Column("connecteam_seen_at", sa.Float, nullable=True),
    # per side, the digest of the values it had before the sync's own last write to it: an event
    # as old as that write that carries them is the state the write replaced
    sa.Column("superseded_json", sa.Text, nullable=True),
    # per side, where its record is reached besides its id (a task's contact, a task's board)
    sa.Column("address_json", sa.Text, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.UniqueConstraint("kind", "connecteam_id", name="sync_state_connecteam"),
)

# every conflict a sync met: the same field changed on both sides since the last sync
sync_conflicts_table = sa.Table(
    "sync_conflicts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),  # recorded once
    sa.Column("sync", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("ghl_id", sa.String(256), nullable=False),
    sa.Column("connecteam_id", sa.String(256), nullable=False),
    sa.Column("field", sa.String(200), nullable=False),
    sa.Column("base_json", sa.Text, nullable=True),
    sa.Column("ghl_json", sa.Text, nullable=True),
    sa.Column("connecteam_json", sa.Text, nullable=True),
    sa.Column("ghl_at", sa.Float, nullable=True),
    sa.Column("connecteam_at", sa.Float, nullable=True),
    sa.Column("rule", sa.String(16), nullable=False),
    sa.Column("winner", sa.String(16), nullable=True),  # ghl | connecteam; none while open
    sa.Column("status", sa.String(16), nullable=False),  # decided | open | resolved
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("resolved_at", sa.Text, nullable=True),
)
sa.Index("sync_conflicts_status", sync_conflicts_table.c.status, sync_conflicts_table.c.id)

# the tables of connector.persistence.incidents (migration 7)

# what an alert told a person about, from the alert until it is closed: by a retry or replay that
# succeeded, by a person on the page, by the conflict being decided, by a level back to normal;
# a closed incident's "resolved" message is sent once (the process that moves it to announced)
incidents_table = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False),  # run:ROOT | conflict:ID | level:NAME
    # the key while the incident is open, NULL once closed: one open incident per key
    sa.Column("open_key", sa.String(300), nullable=True, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),  # failed | outcome unknown | needs login ...
    sa.Column("recipe", sa.String(200), nullable=False),  # the recipe or sync ("" for a level)
    sa.Column("run_id", sa.String(64), nullable=False),  # the run it opened with ("" for a level)
    sa.Column("last_run_id", sa.String(64), nullable=False),  # the newest repeat's run
    sa.Column("repeats", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("what", sa.Text, nullable=False),  # the alert's first line
    sa.Column("said", sa.Text, nullable=False),  # what the vendor said (redacted, as recorded)
    sa.Column("opened_at", sa.String(32), nullable=False),
    sa.Column("closed_at", sa.String(32), nullable=True),
    sa.Column("closed_by", sa.Text, nullable=True),  # why: "run RUN succeeded", "marked ..."
    sa.Column("fixed_by", sa.String(64), nullable=True),  # the run that fixed it, if one did
    sa.Column("status", sa.String(16), nullable=False),  # open | closed | announced
)
sa.Index("incidents_status", incidents_table.c.status, incidents_table.c.id)
sa.Index("incidents_key", incidents_table.c.key)
