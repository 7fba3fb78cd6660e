"""JSON written by the database, in either dialect: an object from (key, SQL expression) pairs, a stored time as
the API prints it (controlplane.timestamps.rfc3339), a stored JSON column as it is. A read model's answer can
then come back as the text a response embeds (orjson.Fragment), with no dict built per value in Python.

SQLite's json_object() and PostgreSQL's row_to_json() both write compact JSON with the keys in the order given
(PostgreSQL's json_build_object would write `"key" : value`). Nested objects and JSON columns are embedded as
JSON, not as strings. The keys are the code's own, never a client's."""

from django.db import connection


def array(texts) -> str:
    """JSON texts (objects the database wrote) as one JSON array's text, for a response to embed or read whole."""
    return f"[{','.join(texts)}]"


def obj(*pairs: tuple[str, str]) -> str:
    """An SQL expression for a JSON object with these keys and values (SQL expressions), in this order."""
    if connection.vendor == "sqlite":
        return "json_object(" + ", ".join(f"'{key}', {value}" for key, value in pairs) + ")"
    columns = ", ".join(f'{value} AS "{key}"' for key, value in pairs)
    return f"(SELECT row_to_json(o) FROM (SELECT {columns}) o)"


def text(value: str) -> str:
    """A JSON value selected as its text (PostgreSQL's driver would decode a json column into values)."""
    return value if connection.vendor == "sqlite" else f"({value})::text"


def stored_json(column: str) -> str:
    """A JSON column's value embedded as JSON (SQLite stores it as text, which would otherwise be a string). An
    array compact, as orjson writes it (PostgreSQL's jsonb prints `["a", "b"]`); its items, and anything else, as
    PostgreSQL prints them."""
    if connection.vendor == "sqlite":
        return f"json({column})"
    compact = f"array_to_json(ARRAY(SELECT jsonb_array_elements({column})))"
    return f"CASE WHEN jsonb_typeof({column}) = 'array' THEN {compact} ELSE {column}::json END"


def time(column: str) -> str:
    """A stored time as RFC 3339 in UTC with `Z`, fractions of a second only when there are some: what
    `rfc3339()` prints of it. SQLite stores UTC text ("YYYY-MM-DD HH:MM:SS[.ffffff]")."""
    if connection.vendor == "sqlite":
        return f"(replace(CAST({column} AS TEXT), ' ', 'T') || 'Z')"
    utc = f"({column} AT TIME ZONE 'UTC')"
    fraction = f"CASE WHEN date_trunc('second', {utc}) = {utc} THEN '' ELSE to_char({utc}, '.US') END"
    return f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || {fraction} || 'Z')"


def boolean(column: str) -> str:
    """A stored boolean as JSON's true or false (SQLite stores 0 or 1)."""
    if connection.vendor == "sqlite":
        return f"CASE WHEN {column} IS NULL THEN NULL WHEN {column} THEN json('true') ELSE json('false') END"
    return column


def when(condition: str, value: str) -> str:
    """`value` where `condition` holds, else null (JSON null once embedded)."""
    return f"CASE WHEN {condition} THEN {value} END"
