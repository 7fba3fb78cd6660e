import uuid
from contextlib import contextmanager

import psycopg

SERVER = "postgres://postgres@127.0.0.1:5432"


@contextmanager
def temporary_postgres():
    """A fresh database on the local PostgreSQL server, dropped afterwards; None when none answers."""
    name = f"controlplane_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        yield None
        return
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{SERVER}/{name}"
        finally:
            from django.conf import settings
            from django.db import connections

            if settings.configured:  # a benchmark that used it in this process
                connections.close_all()
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
