"""SQLite connections a process closes are kept for its next request (controlplane/db/sqlite3/)."""

import sqlite3
import threading

import pytest
from django.db import connection, connections, transaction

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL has its own pool")


def raw_connection_of_a_new_thread():
    """What a request's thread gets: its own Django connection, opened for a query and closed after it."""
    seen = []

    def request():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        seen.append(connection.connection)
        connections.close_all()

    thread = threading.Thread(target=request)
    thread.start()
    thread.join()
    return seen[0]


@pytest.mark.django_db(transaction=True)
def test_the_next_request_gets_the_connection_the_last_one_closed():
    first = raw_connection_of_a_new_thread()
    assert raw_connection_of_a_new_thread() is first


@pytest.mark.django_db(transaction=True)
def test_a_connection_closed_in_a_transaction_is_not_kept(settings):
    kept = raw_connection_of_a_new_thread()
    taken = []

    def request_that_dies_in_a_transaction():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        taken.append(connection.connection)
        transaction.atomic().__enter__()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert connection.connection.in_transaction
        connection.close()  # as Django does after a failed request: the transaction goes with the connection

    thread = threading.Thread(target=request_that_dies_in_a_transaction)
    thread.start()
    thread.join()
    assert taken == [kept]
    assert raw_connection_of_a_new_thread() is not kept  # a fresh one: the rolled-back one was closed


@pytest.mark.django_db(transaction=True)
def test_at_most_the_pool_size_are_kept(settings):
    settings.DB_POOL_SIZE = 2
    barrier = threading.Barrier(4)
    opened, closed = [], []

    def request():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        opened.append(connection.connection)
        barrier.wait()  # all four open at once
        connections.close_all()

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in opened}) == 4
    for raw in opened:  # a closed sqlite3 connection refuses to run anything
        try:
            raw.execute("SELECT 1")
        except sqlite3.ProgrammingError:
            closed.append(raw)
    assert len(closed) == 2  # two kept open for the next requests, the others closed


@pytest.mark.django_db(transaction=True)
def test_a_cursor_left_open_does_not_carry_its_snapshot_into_the_next_request():
    from services.models import Environment

    for n in range(3):  # rows left to read (sqlite3 reads one ahead)
        Environment(name=f"before-{n}").save()
    left_open = []

    def request_that_leaves_a_cursor_open():
        cursor = connection.cursor()
        cursor.execute("SELECT name FROM services_environment")
        cursor.fetchone()  # an unfinished SELECT: in WAL mode it holds the snapshot it started with
        left_open.append(cursor)
        connections.close_all()

    thread = threading.Thread(target=request_that_leaves_a_cursor_open)
    thread.start()
    thread.join()
    Environment(name="after").save()  # committed by another connection

    names = []

    def next_request():
        names.extend(Environment.objects.values_list("name", flat=True))
        connections.close_all()

    thread = threading.Thread(target=next_request)
    thread.start()
    thread.join()
    assert "after" in names


@pytest.mark.django_db(transaction=True)
def test_a_kept_connection_checks_foreign_keys_again():
    def request_that_turns_them_off():
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA foreign_keys = OFF")
        connections.close_all()

    def foreign_keys() -> list:
        seen = []

        def request():
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA foreign_keys")
                seen.append(cursor.fetchone()[0])
            connections.close_all()

        thread = threading.Thread(target=request)
        thread.start()
        thread.join()
        return seen

    thread = threading.Thread(target=request_that_turns_them_off)
    thread.start()
    thread.join()
    assert foreign_keys() == [1]
