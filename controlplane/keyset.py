"""The one pagination: keyset pages with signed cursors, for REST, GraphQL and the pages alike.

A list has a fixed, total order (`ordering`, its last column unique, none of its columns NULL). A page is
the rows past a position in that order (or before it, reading back), at most `size` of them, read with one
more to know whether more follow: one indexed query, as cheap deep in a list as at its start, and stable
under inserts. A cursor is a row's ordering values, signed with the SECRET_KEY and bound to the list (its
`name`), so a cursor forged, tampered with or issued for another list is refused before it reaches a query.
Each door says a refusal its own way (REST a 400 naming `cursor`, GraphQL an error naming `after`, a page its
first page); the rows, the order, the cursors and the limits are this module's.
"""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import models
from django.db.models import Q

from controlplane.timestamps import rfc3339

CURSOR_REFUSED = "is not a cursor this API issued."
AFTER, BEFORE = "after", "before"  # a cursor's direction: the rows past its position, or those before it


class NotACursor(ValueError):
    """A cursor this list did not issue."""


def size_rule() -> str:
    return f"must be a whole number from 1 to {settings.API_MAX_PAGE_SIZE}."


def page_size(given: int | None) -> int:
    """How many rows a page holds: `given`, from 1 to API_MAX_PAGE_SIZE, or API_PAGE_SIZE when None.
    Anything else is a ValueError with the rule."""
    if given is None:
        return settings.API_PAGE_SIZE
    if isinstance(given, bool) or not isinstance(given, int) or not 1 <= given <= settings.API_MAX_PAGE_SIZE:
        raise ValueError(size_rule())
    return given


@dataclass(frozen=True)
class Position:
    """Where a page starts: past `values` (AFTER) or before them (BEFORE); no values and BEFORE is the
    list's end (`tail`)."""

    values: list | None = None
    direction: str = AFTER

    @property
    def backwards(self) -> bool:
        return self.direction == BEFORE


START = Position()
END = Position(None, BEFORE)


@dataclass
class Page:
    """A page's rows, in the list's order, and whether there are rows after and before it. As DRF's cursor
    pages (and without a query more): a page reached from a position has rows on the side it came from."""

    rows: list
    has_next: bool
    has_previous: bool
    keyset: "Keyset"

    def next_cursor(self) -> str | None:
        return self.keyset.cursor(self.rows[-1]) if self.has_next and self.rows else None

    def previous_cursor(self) -> str | None:
        return self.keyset.cursor(self.rows[0], BEFORE) if self.has_previous and self.rows else None


def _field(model: type[models.Model], path: str) -> models.Field:
    """The field a column names, across relations (`service__name`). A column that can be NULL (a nullable
    field, or one reached through a nullable relation) is refused: `beyond()` compares with < and >, which
    no NULL passes, and SQLite and PostgreSQL put NULLs at opposite ends of an order."""
    *relations, name = path.split("__")
    fields = []
    for relation in relations:
        fields.append(model._meta.get_field(relation))
        model = fields[-1].related_model
    fields.append(model._meta.get_field(name))
    if any(field.null for field in fields):
        raise ValueError(f"{path} can be NULL: a keyset orders by columns that never are.")
    return fields[-1]


class Keyset:
    """A list's order and its cursors. `name` binds its cursors to the list: two lists in the same order
    (a service's releases and all releases) still refuse each other's."""

    def __init__(self, model: type[models.Model], ordering: tuple[str, ...], name: str):
        self.ordering = tuple(ordering)
        self.reversed = tuple(o[1:] if o.startswith("-") else f"-{o}" for o in self.ordering)
        self.columns = tuple(o.lstrip("-") for o in self.ordering)
        fields = {c: _field(model, c) for c in self.columns}  # each refused if it can be NULL
        self.times = {c for c, field in fields.items() if isinstance(field, models.DateTimeField)}
        self.salt = f"controlplane.cursor:{name}"

    # --- cursors ---

    def key(self, row) -> list:
        """A row's ordering values (a model instance, or a dict from values()), as a cursor holds them."""
        read = row.__getitem__ if isinstance(row, dict) else lambda column: _read(row, column)
        values = [read(c) for c in self.columns]
        # A time as a model holds it, or as the database stored it (a list read raw: controlplane.api.base).
        return [rfc3339(v) if c in self.times else v for c, v in zip(self.columns, values, strict=True)]

    def cursor(self, row, direction: str = AFTER) -> str:
        """The signed cursor of the rows past `row` (or, BEFORE, of those before it)."""
        # Without a time in it (signing.dumps would add one): the same position is the same cursor, whenever made, so
        # a page's endCursor is its last edge's and a cached answer is the computed one, byte for byte.
        return signing.Signer(salt=self.salt).sign_object({direction: self.key(row)})

    def position(self, cursor: str, directions=(AFTER, BEFORE)) -> Position:
        """The position a cursor of this list holds, or NotACursor."""
        try:
            payload = signing.Signer(salt=self.salt).unsign_object(cursor)
            (direction, values), *others = payload.items()
            if others or direction not in directions or not isinstance(values, list):
                raise ValueError
            if len(values) != len(self.columns):
                raise ValueError
            pairs = zip(self.columns, values, strict=True)
            values = [datetime.datetime.fromisoformat(v) if c in self.times else v for c, v in pairs]
        except (signing.BadSignature, ValueError, TypeError, AttributeError):
            raise NotACursor(CURSOR_REFUSED) from None
        return Position(values, direction)

    # --- rows ---

    def beyond(self, values: list, backwards: bool = False) -> Q:
        """The rows past `values` in the list's order (before them, `backwards`): (a, b) > (x, y) as
        a > x OR (a = x AND b > y), each column in its own direction."""
        condition = None
        for column, ordering, value in reversed(list(zip(self.columns, self.ordering, values, strict=True))):
            descending = ordering.startswith("-") != backwards
            past = Q(**{f"{column}__{'lt' if descending else 'gt'}": value})
            condition = past if condition is None else past | (Q(**{column: value}) & condition)
        return condition

    def rows(self, queryset, limit: int, position: Position = START) -> list:
        """Up to `limit` rows from `position` on, in reading order (reversed, reading back). A page reads one
        more than it shows, to know whether more follow; a stream's catch-up reads batches."""
        if not isinstance(queryset, models.QuerySet):  # a statement of its own (controlplane.plain_lists)
            return queryset.rows(self, limit, position)
        if position.values is not None:
            queryset = queryset.filter(self.beyond(position.values, position.backwards))
        return list(queryset.order_by(*(self.reversed if position.backwards else self.ordering))[:limit])

    def page(self, queryset, size: int, position: Position = START) -> Page:
        """One page of `queryset` from `position`, in the list's order, in one query."""
        rows = self.rows(queryset, size + 1, position)
        more, rows = len(rows) > size, rows[:size]
        came_from = position.values is not None
        if position.backwards:
            rows.reverse()
            return Page(rows, has_next=came_from, has_previous=more, keyset=self)
        return Page(rows, has_next=more, has_previous=came_from, keyset=self)

    def page_from(self, queryset, size: int, cursor: str | None) -> tuple[Page, bool]:
        """For a page (HTML): the page a cursor names, or the first page when it names none (a link from an
        older deployment, an edited URL). Also whether the cursor was read."""
        try:
            position = self.position(cursor) if cursor else START
        except NotACursor:
            position = START
        return self.page(queryset, size, position), position is not START


def _read(row, column: str):
    for part in column.split("__"):
        row = getattr(row, part)
    return row
