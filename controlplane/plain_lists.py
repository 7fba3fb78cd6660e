"""A list of plain columns read with a statement written once per list shape, not compiled per request.

A REST list whose every field is a column (DomainSerializer.plain_columns), narrowed by equality and prefix
filters on its own columns, one keyset page at a time: Django's query compiler cost such a page three times
its query (the select list, the ORDER BY's expressions hashed, the WHERE tree, for the same SQL each time).
Here the SQL is put together once per shape (which filters, which side of a cursor, how many rows) and only
the values change. The SQL is what Django writes for the same lookups: the backend's operators, casts and
LIKE escaping (connection.operators, ops.lookup_cast, ops.prep_for_like_query), each value prepared by its
model field. Rows come back as the database stores them, as StoredValues gives them. Anything else (a
join, a method filter, a queryset already narrowed) goes through the ORM.
"""

from functools import lru_cache

from django.db import connections, models

from controlplane.db import json_sql
from controlplane.keyset import Keyset, Position

LOOKUPS = frozenset({"exact", "startswith", "gt", "gte", "lt", "lte", "isnull"})  # what a plain condition may ask
WRITTEN = "written"  # the key of a row's JSON text, when the database writes the resource (PlainQuery.writing)
# How a column is shown, written by the database: as stored, as an RFC 3339 time, "" as null, a boolean.
AS_STORED, TIME, BLANK_AS_NULL, BOOLEAN = "as stored", "time", "blank as null", "boolean"


class PlainQuery:
    """The rows of `model` (every row, its default manager unnarrowed) whose `conditions` hold:
    `(column, lookup, value)`, each a concrete column of the model and a lookup in LOOKUPS."""

    def __init__(self, model: type[models.Model], columns: tuple[str, ...], conditions, using: str = "default"):
        self.model, self.columns, self.using = model, columns, using
        self.conditions = tuple(sorted(conditions, key=lambda c: c[:2]))
        self.written: tuple | None = None

    def writing(self, written: tuple[tuple[str, str, str], ...], columns: tuple[str, ...]) -> "PlainQuery":
        """The same rows, with the `columns` asked (a page's bookmark) and the resource as the database writes it
        in JSON (`row[WRITTEN]`): an object of `(key, column, how)` for each field, `how` one of AS_STORED, TIME,
        BLANK_AS_NULL, BOOLEAN."""
        twin = PlainQuery(self.model, tuple(columns), self.conditions, self.using)
        twin.written = written
        return twin

    @classmethod
    def of(cls, queryset, columns, conditions) -> "PlainQuery | None":
        """The plain query of an unnarrowed queryset and its filters' conditions, or None when the ORM must
        write it (the queryset is narrowed already, or a condition is not plain)."""
        query = queryset.query
        if query.where or query.annotations or query.extra or query.distinct or query.combinator:
            return None
        fields = {f.attname: f for f in queryset.model._meta.concrete_fields}
        if not all(column in fields and lookup in LOOKUPS for column, lookup, _ in conditions):
            return None
        return cls(queryset.model, tuple(columns), conditions, queryset.db)

    def rows(self, keyset: Keyset, limit: int, position: Position) -> list[dict]:
        connection = connections[self.using]
        after = position.values is not None
        # A statement per shape: the columns and lookups asked, and for IS [NOT] NULL which (it takes no value).
        shape = tuple(
            (column, lookup, value if lookup == "isnull" else None) for column, lookup, value in self.conditions
        )
        sql = _statement(
            self.model, self.columns, self.written, shape, keyset.ordering, after, position.backwards, limit, self.using
        )
        params = [
            _prepared(self.model, column, lookup, value, connection)
            for column, lookup, value in self.conditions
            if lookup != "isnull"
        ]
        if after:
            params += _beyond_params(self.model, keyset, position.values, connection)
        names = self.columns if self.written is None else (*self.columns, WRITTEN)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _column(model, attname: str, connection) -> str:
    quote = connection.ops.quote_name
    return f"{quote(model._meta.db_table)}.{quote(_field(model, attname).column)}"


def _field(model, attname: str) -> models.Field:
    return model._meta.get_field(attname)  # by attname too (service_id)


def as_stored(column_sql: str, field: models.Field, connection) -> str:
    """A column selected as the database stores it: SQLite's driver would parse a time's text (in Python, per
    value) only for the API to print it again (controlplane.timestamps.rfc3339 takes the text)."""
    if connection.vendor == "sqlite" and isinstance(field, models.DateTimeField):
        return f"CAST({column_sql} AS TEXT)"
    return column_sql


def _selected(model, attname: str, connection) -> str:
    return as_stored(_column(model, attname, connection), _field(model, attname), connection)


def _condition(model, attname: str, lookup: str, is_null: bool | None, connection) -> str:
    if lookup == "isnull":  # no parameter: the SQL says which
        return f"{_column(model, attname, connection)} IS {'' if is_null else 'NOT '}NULL"
    field = _field(model, attname)
    lhs = connection.ops.lookup_cast(lookup, field.get_internal_type()) % _column(model, attname, connection)
    return f"{lhs} {connection.operators[lookup] % '%s'}"


def _prepared(model, attname: str, lookup: str, value, connection):
    field = _field(model, attname)
    if lookup == "startswith":  # Django's PatternLookup: the value escaped for LIKE, then the pattern
        return f"{connection.ops.prep_for_like_query(field.get_prep_value(value))}%"
    return field.get_db_prep_value(value, connection, prepared=False)


def _written(model, written, connection) -> str:
    def value(column: str, how: str) -> str:
        sql = _column(model, column, connection)
        return {
            AS_STORED: sql,
            TIME: json_sql.time(sql),
            BLANK_AS_NULL: f"NULLIF({sql}, '')",
            BOOLEAN: json_sql.boolean(sql),
        }[how]

    return json_sql.text(json_sql.obj(*((key, value(column, how)) for key, column, how in written)))


@lru_cache(maxsize=512)
def _statement(
    model, columns, written, shape, ordering: tuple, after: bool, backwards: bool, limit: int, alias: str
) -> str:
    connection = connections[alias]
    select = ", ".join(_selected(model, column, connection) for column in columns)
    if written is not None:
        select += f", {_written(model, written, connection)}"
    where = [_condition(model, column, lookup, is_null, connection) for column, lookup, is_null in shape]
    if after:
        where.append(_beyond(model, ordering, backwards, connection))
    # Reading back: the order reversed (Keyset.rows), the page turned round by Keyset.page.
    order = ", ".join(
        f"{_column(model, o.lstrip('-'), connection)} {'DESC' if o.startswith('-') != backwards else 'ASC'}"
        for o in ordering
    )
    sql = f"SELECT {select} FROM {connection.ops.quote_name(model._meta.db_table)}"
    if where:
        sql += " WHERE " + " AND ".join(f"({w})" for w in where)
    return f"{sql} ORDER BY {order} LIMIT {int(limit)}"


def _beyond(model, ordering: tuple, backwards: bool, connection) -> str:
    """Keyset.beyond as SQL: (a, b) past (x, y) is a > x OR (a = x AND b > y), each column its own way."""
    condition = None
    for each in reversed(ordering):
        column, descending = each.lstrip("-"), each.startswith("-") != backwards
        past = f"{_column(model, column, connection)} {'<' if descending else '>'} %s"
        same = f"{_column(model, column, connection)} = %s"
        condition = past if condition is None else f"{past} OR ({same} AND ({condition}))"
    return condition


def _beyond_params(model, keyset: Keyset, values: list, connection) -> list:
    """The values _beyond's placeholders take, in their order: x, then x and y, and so on, as written."""
    pairs = zip(keyset.columns, values, strict=True)
    prepared = [_field(model, c).get_db_prep_value(v, connection, prepared=False) for c, v in pairs]
    params = [prepared[-1]]
    for value in reversed(prepared[:-1]):
        params = [value, value, *params]
    return params
