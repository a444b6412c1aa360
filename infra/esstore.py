"""The event store's PostgreSQL recorder: the eventsourcing library's, with one INSERT path
of our own, in one round trip.

The library's insert is a transaction of seven round trips (BEGIN, SET LOCAL lock_timeout,
LOCK TABLE, NOTIFY, INSERT, fetch, COMMIT), in psycopg's pipeline mode, with the events as
one array of a composite type that psycopg writes out as text, field by field, in Python.
Here one statement, sent in autocommit mode (its own transaction), calls a function that
does the same things in the same order: the EXCLUSIVE table lock that keeps notification ids
in commit order (a reader never passes a gap that fills later), the NOTIFY, and one INSERT
of every event returning their ids, in the events' order. The events go as four arrays of
plain types, in binary. No pipeline mode either: in it a large insert (a bulk of a few
hundred things) hung for good over a Unix socket (the embedded PostgreSQL's; psycopg issue
#685 reports the same).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent, Transcoder
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

from infra.transcoder import FastTranscoder

TOPIC = "infra.esstore:Factory"
FUNCTION = "smq_insert_events"
# The store's identity: one row, written once when the store's tables are first created (every
# start proposes a fresh id; only the first insert takes). The relay stamps it on the stream.
IDENTITY_TABLE = "smq_store"


class Recorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = {"schema": Identifier(self.datastore.schema), "table": Identifier(self.events_table_name),
                 "function": Identifier(FUNCTION), "id_type": SQL(self.datastore.originator_id_type),
                 "channel": Identifier(self.channel_name)}
        self.sql_create_statements.append(SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}("
            "ids {id_type}[], versions bigint[], topics text[], states bytea[])"
            " RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$"
            " BEGIN"
            "  SET LOCAL lock_timeout = '" + str(int(self.datastore.lock_timeout)) + "s';"
            "  LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;"
            "  NOTIFY {channel};"
            "  RETURN QUERY INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            "   SELECT * FROM unnest(ids, versions, topics, states) RETURNING notification_id;"
            " END; $BODY$").format(**names))
        names["identity"] = Identifier(IDENTITY_TABLE)
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.{identity} (one boolean PRIMARY KEY DEFAULT true CHECK (one),"
            " store_id uuid NOT NULL, created_at timestamptz NOT NULL DEFAULT now())").format(**names))
        self.sql_create_statements.append(SQL(
            "INSERT INTO {schema}.{identity} (store_id) VALUES ('" + str(uuid.uuid4()) + "')"
            " ON CONFLICT DO NOTHING").format(**names))
        self._identity_query = SQL("SELECT store_id FROM {schema}.{identity}").format(**names)
        # What the library's ``select_notifications(start, limit)`` reads, as plain tuples with
        # the id as text (no dict per row, no UUID object to make and print again), in binary
        # (the state as it is, not in hex): the relay's and the replay's read (``infra.store``).
        self._rows_query = SQL(
            "SELECT notification_id, originator_id::text, originator_version, topic, state"
            " FROM {schema}.{table} WHERE notification_id>=%s ORDER BY notification_id LIMIT %s").format(**names)
        self._select_events: dict[tuple[bool, bool, bool, bool], str] = {}
        self._insert_call = SQL(
            "SELECT n AS notification_id FROM {schema}.{function}(%b, %b, %b, %b) AS n").format(**names)
        self._insert_text: str | None = None  # the statement rendered, at the first insert

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            assert conn.autocommit  # the statement is its own transaction
            if self._insert_text is None:
                self._insert_text = self._insert_call.as_string(conn)
            curs.execute(self._insert_text, (
                [e.originator_id for e in stored_events], [e.originator_version for e in stored_events],
                [e.topic for e in stored_events], [e.state for e in stored_events]))
            return [row["notification_id"] for row in curs.fetchall()]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_rows(self, start: int, limit: int) -> list[tuple[int, str, int, str, bytes]]:
        """The notifications from ``start`` on (at most ``limit``, in order), as the library's
        ``select_notifications(start, limit)`` reads them: (id, originator id as text, version,
        topic, state)."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(self._rows_query, (start, limit), prepare=True, binary=True)
            return curs.fetchall()

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events(self, originator_id: UUID | str, *, gt: int | None = None, lte: int | None = None,
                      desc: bool = False, limit: int | None = None) -> Sequence[StoredEvent]:
        """The library's, with its statement rendered once per shape rather than composed and
        rendered again at every call (an aggregate's load: a command reads a few each)."""
        shape = (gt is not None, lte is not None, desc, limit is not None)
        params = [originator_id, *(p for p in (gt, lte, limit) if p is not None)]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            statement = self._select_events.get(shape)
            if statement is None:
                statement = self._select_events[shape] = self._select_events_of(*shape).as_string(conn)
            curs.execute(statement, params, prepare=True)
            return [StoredEvent(originator_id=row["originator_id"], originator_version=row["originator_version"],
                                topic=row["topic"], state=bytes(row["state"]))
                    for row in curs.fetchall()]

    def _select_events_of(self, gt: bool, lte: bool, desc: bool, limit: bool) -> Composed:
        """The library's statement of ``select_events`` for these arguments, as it composes it."""
        statement: Composed = self.select_events_statement
        if gt:
            statement += SQL(" AND originator_version > %s")
        if lte:
            statement += SQL(" AND originator_version <= %s")
        statement += SQL(" ORDER BY originator_version")
        statement += SQL(" DESC") if desc else SQL(" ASC")
        if limit:
            statement += SQL(" LIMIT %s")
        return statement

    def store_id(self) -> str:
        """The identity of this store (created with its tables, never changed)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._identity_query)
            row = curs.fetchone()
        if row is None:
            raise RuntimeError(f"the event store has no identity row in {IDENTITY_TABLE}")
        return str(row["store_id"])


class Factory(PostgresFactory):
    application_recorder_class = Recorder

    def transcoder(self) -> Transcoder:
        """The library's JSON format through msgspec (``infra.transcoder``), unless the
        environment names another (``TRANSCODER_TOPIC``)."""
        if self.env.get(self.TRANSCODER_TOPIC):
            return super().transcoder()
        return FastTranscoder()
