"""SQLite connections a process closes are kept for its next request (controlplane/db/sqlite3/)."""

import sqlite3
import threading

import pytest
from django.db import connection, connections, transaction

from controlplane.db.sqlite3.base import close_idle
from services.models import Environment

pytestmark = [
    pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL has its own pool"),
    pytest.mark.django_db(transaction=True),
]


def request(work, close=True):
    """`work()` in a thread of its own, as a stream's sync code runs under the ASGI handler, its connections
    closed after it (as an ordinary request's are, on its worker's main thread).
    Returns what `work` returned."""
    result = []

    def run():
        result.append(work())
        if close:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result[0]


def query(sql="SELECT 1"):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def raw_connection():
    """The sqlite3 connection a request's query ran on."""
    query()
    return connection.connection


def test_the_next_request_gets_the_connection_the_last_one_closed():
    first = request(raw_connection)
    assert request(raw_connection) is first


def test_a_connection_closed_in_a_transaction_is_not_kept():
    kept = request(raw_connection)

    def dies_in_a_transaction():
        taken = raw_connection()
        transaction.atomic().__enter__()
        query()
        assert connection.connection.in_transaction
        connection.close()  # as Django does after a failed request: the transaction goes with the connection
        return taken

    assert request(dies_in_a_transaction, close=False) is kept
    assert request(raw_connection) is not kept  # a fresh one: the rolled-back one was closed


def test_at_most_the_pool_size_are_kept(settings):
    settings.DB_POOL_SIZE = 2
    close_idle()  # what earlier tests in this process left kept: the pool starts empty, as a new process's
    all_open = threading.Barrier(4)

    def while_others_are_open():
        raw = raw_connection()
        all_open.wait()
        return raw

    results = []
    threads = [threading.Thread(target=lambda: results.append(request(while_others_are_open))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in results}) == 4
    closed = []
    for raw in results:
        try:
            raw.execute("SELECT 1")
        except sqlite3.ProgrammingError:  # a closed sqlite3 connection refuses to run anything
            closed.append(raw)
    assert len(closed) == 2  # two kept open for the next requests, the others closed


def test_a_cursor_left_open_does_not_carry_its_snapshot_into_the_next_request():
    for n in range(3):  # rows left to read (sqlite3 reads one ahead)
        Environment(name=f"before-{n}").save()

    def leaves_a_cursor_open():
        cursor = connection.cursor()
        cursor.execute("SELECT name FROM services_environment")
        cursor.fetchone()  # an unfinished SELECT: in WAL mode it holds the snapshot it started with
        return cursor

    left_open = request(leaves_a_cursor_open)  # noqa: F841 - kept alive, as a leaked cursor would be
    Environment(name="after").save()  # committed by another connection
    names = request(lambda: list(Environment.objects.values_list("name", flat=True)))
    assert "after" in names


def test_a_kept_connection_checks_foreign_keys_again():
    request(lambda: query("PRAGMA foreign_keys = OFF"))
    assert request(lambda: query("PRAGMA foreign_keys")) == [(1,)]


def test_a_kept_connection_keeps_its_prepared_statements():
    # Setting a pragma, even to the value it has, expires every statement the connection prepared: a kept
    # connection whose settings no request changed is handed out without one.
    raw = request(raw_connection)
    statements = []
    raw.set_trace_callback(statements.append)
    try:
        assert request(raw_connection) is raw
    finally:
        raw.set_trace_callback(None)
    assert not [s for s in statements if s.upper().startswith("PRAGMA")], statements
    assert statements  # the settings were read (a request could have changed them)
