"""Django's SQLite backend, with the connections a process closes kept for its next request.

Django closes a request's connections at its end (CONN_MAX_AGE 0, since the streams' sync code runs in a
thread per request under Django's ASGI handler), so it opens a SQLite connection per request: the open, its
setup (Django registers its SQL functions, the PRAGMAs) and above all a cold page cache (the schema parsed
again, every index page read again) cost a request more than its queries (an index page: 4.1 ms with a new
connection, 2.5 ms with a kept one). This keeps up to `DB_POOL_SIZE` (CONTROLPLANE_DB_POOL_SIZE) idle
connections per database file and process and hands them out again, as the psycopg pool does on PostgreSQL.

A connection goes back clean or not at all: only outside any transaction and atomic block, opened by this
process, with every cursor the request left open closed (an unfinished SELECT would hold its snapshot into
the next request); on reuse Django's per-connection PRAGMAs are set again where a request changed them. The
idle ones are closed when the process exits and before a test database is deleted.
"""

import atexit
import os
import threading
import weakref
from collections import defaultdict, deque

from django.conf import settings
from django.db.backends.sqlite3 import base, creation

_idle: dict[tuple[int, str], deque] = defaultdict(deque)
_lock = threading.Lock()
# What Django sets on every new connection, which a request could have changed (a schema editor turns off
# foreign keys while it rebuilds a table): each setting's pragma, and the value Django gives it. Only a setting
# found changed is set again: setting one, even to the value it has, expires every prepared statement of the
# connection, and preparing an index page's statements again cost it 0.3 ms.
_RESET = {"foreign_keys": 1, "legacy_alter_table": 0}
_READ_RESET = f"SELECT * FROM {', '.join(f'pragma_{name}' for name in _RESET)}"


def close_idle(name: str | None = None) -> None:
    """Close this process's idle connections (to the database file `name`, or all)."""
    with _lock:
        for (pid, database), pool in list(_idle.items()):
            if pid == os.getpid() and name in (None, database):
                while pool:
                    pool.pop().close()


atexit.register(close_idle)


class DatabaseCreation(creation.DatabaseCreation):
    def _destroy_test_db(self, test_database_name, verbosity):
        close_idle(str(test_database_name))  # so the file and its -wal, -shm go with no handle left
        super()._destroy_test_db(test_database_name, verbosity)


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = DatabaseCreation

    def _pool(self) -> deque | None:
        if self.is_in_memory_db():
            return None  # closing one destroys it: Django never closes it anyway
        return _idle[(os.getpid(), str(self.settings_dict["NAME"]))]

    def get_new_connection(self, conn_params):
        self._opened_by = os.getpid()
        self._cursors = weakref.WeakSet()
        pool = self._pool()
        while pool:
            try:
                connection = pool.pop()
            except IndexError:
                break
            found = connection.execute(_READ_RESET).fetchone()
            for (name, value), now in zip(_RESET.items(), found, strict=True):
                if now != value:
                    connection.execute(f"PRAGMA {name} = {value}")
            return connection
        return super().get_new_connection(conn_params)

    def create_cursor(self, name=None):
        cursor = super().create_cursor(name)
        self._cursors.add(cursor)
        return cursor

    def _close(self):
        pool = self._pool()
        connection = self.connection
        reusable = (
            pool is not None
            and connection is not None
            and not self.in_atomic_block
            and not connection.in_transaction
            and getattr(self, "_opened_by", None) == os.getpid()
        )
        if not reusable:
            return super()._close()
        for cursor in list(self._cursors):
            cursor.close()
        with _lock:
            if len(pool) < settings.DB_POOL_SIZE:
                pool.append(connection)
                return None
        return super()._close()
