"""The event store's PostgreSQL recorder, as the eventsourcing library makes it but for one
thing: events are inserted without psycopg's pipeline mode.

In pipeline mode a large insert (a bulk of a few hundred things) hangs for good over a Unix
socket (the embedded PostgreSQL's; seen here every time at 500 things, and psycopg issue
#685 reports the same), with the server waiting in ClientRead. The statements stay the
library's own: the table lock that keeps notification ids in commit order, the NOTIFY, and
one INSERT of every event that returns their ids; they just go one after another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from eventsourcing.utils import retry

TOPIC = "infra.esstore:Factory"


class Recorder(PostgresApplicationRecorder):
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return []
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)


class Factory(PostgresFactory):
    application_recorder_class = Recorder
