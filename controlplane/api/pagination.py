from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.utils.urls import replace_query_param

from controlplane.api.params import whole_number
from controlplane.keyset import CURSOR_REFUSED, END, START, Keyset, NotACursor

__all__ = ["CURSOR_REFUSED", "CursorPage"]

TAIL = "tail"


class CursorPage(CursorPagination):
    """REST's door onto the one pagination (controlplane.keyset): `{next, previous, results}`, each link a
    signed cursor bound to the list that issued it (its path), so a cursor the API did not issue, or issued
    for another list, is a 400 naming `cursor`, whatever it holds. `pageSize` is a whole number from 1 to the
    maximum; `tail=true` starts at the list's end. DRF's CursorPagination is kept for its response and
    schema only: its offset-and-position cursors are not used."""

    page_size_query_param = "pageSize"

    def __init__(self):
        self.page_size, self.max_page_size = settings.API_PAGE_SIZE, settings.API_MAX_PAGE_SIZE

    def query_parameters(self) -> tuple[str, ...]:
        return (self.cursor_query_param, self.page_size_query_param, TAIL)

    def get_ordering(self, request, queryset, view):
        return tuple(getattr(view, "ordering", ("-pk",)))

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        return whole_number(raw, self.page_size_query_param, 1, self.max_page_size)

    def keyset(self, request, queryset, view) -> Keyset:
        return Keyset(queryset.model, self.get_ordering(request, queryset, view), f"api:{request.path}")

    def paginate_queryset(self, queryset, request, view=None):
        size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.keyset_ = self.keyset(request, queryset, view)
        self.current = self.keyset_.page(queryset, size, self.position(request))
        return self.current.rows

    def position(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        # Checked whether or not a cursor is given (the links a tail page issues keep its `tail=true`).
        tail = self._tail(request)
        if encoded is None:
            # `tail=true`: the list's last page first, still in the list's order, with `previous` to read back
            # (`cpctl audit` shows the newest events of an oldest-first trail).
            return END if tail else START
        try:
            return self.keyset_.position(encoded)
        except NotACursor:
            raise ValidationError({self.cursor_query_param: [CURSOR_REFUSED]}) from None

    def _tail(self, request) -> bool:
        raw = request.query_params.get(TAIL, "false")
        if raw not in ("true", "false"):
            raise ValidationError({TAIL: ["must be true or false."]})
        return raw == "true"

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        return replace_query_param(self.base_url, self.cursor_query_param, cursor)

    def get_next_link(self):
        return self._link(self.current.next_cursor())

    def get_previous_link(self):
        return self._link(self.current.previous_cursor())

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
                parameter["description"] = f"Results per page: a whole number from 1 to {self.max_page_size}."
            elif parameter["name"] == self.cursor_query_param:
                parameter["description"] = "A `next` or `previous` link's cursor; the API refuses any other."
        parameters.append(
            {
                "name": TAIL,
                "required": False,
                "in": "query",
                "description": "`true`: start at the end of the list (its last page, in the list's order).",
                "schema": {"type": "boolean"},
            }
        )
        return parameters
