"""Django's SQLite backend, with the connections a process closes kept for its next request.

Under ASGI every request runs its database code in a thread of its own, so Django opens a SQLite
connection per request and closes it at the end: the open, its setup (Django registers its SQL functions,
the PRAGMAs) and above all a cold page cache (the schema parsed again, every index page read again) cost a
request more than its queries (an index page: 4.1 ms with a new connection, 2.5 ms with a kept one). This
keeps up to `DB_POOL_SIZE` (CONTROLPLANE_DB_POOL_SIZE) idle connections per database file and process and
hands them out again, as the psycopg pool does on PostgreSQL. A connection goes back only outside any
transaction; one still in a transaction is closed, as Django would have (which rolls it back).
"""

import os
import threading
from collections import defaultdict, deque

from django.conf import settings
from django.db.backends.sqlite3 import base

_idle: dict[tuple[int, str], deque] = defaultdict(deque)
_lock = threading.Lock()


class DatabaseWrapper(base.DatabaseWrapper):
    def _pool(self) -> deque | None:
        if self.is_in_memory_db():
            return None  # closing one destroys it: Django never closes it anyway
        return _idle[(os.getpid(), str(self.settings_dict["NAME"]))]

    def get_new_connection(self, conn_params):
        pool = self._pool()
        if pool:
            try:
                return pool.pop()
            except IndexError:
                pass
        return super().get_new_connection(conn_params)

    def _close(self):
        pool = self._pool()
        connection = self.connection
        if pool is None or connection is None or connection.in_transaction:
            return super()._close()
        with _lock:
            if len(pool) < settings.DB_POOL_SIZE:
                pool.append(connection)
                return None
        return super()._close()
