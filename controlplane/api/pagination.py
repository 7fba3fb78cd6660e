from django.conf import settings
from django.core import signing
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.utils.urls import replace_query_param

from controlplane.api.params import whole_number

CURSOR_REFUSED = "is not a cursor this API issued."
TAIL = "tail"


class CursorPage(CursorPagination):
    """Cursor pages: stable under inserts, and as fast on the last page as on the first.

    Cursors are signed (django.core.signing, with the SECRET_KEY) and bound to the list that issued them,
    so a cursor the API did not issue, or issued for another list, is a 400 naming `cursor`, whatever it
    holds; no forged position ever reaches a query. `pageSize` is a whole number from 1 to the maximum.
    """

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

    def _salt(self) -> str:
        return f"controlplane.api.cursor:{self.request.path}"

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            # `tail=true`: the list's last page first, still in the list's order, with `previous` to read back
            # (`cpctl audit` shows the newest events of an oldest-first trail).
            return Cursor(offset=0, reverse=True, position=None) if self._tail(request) else None
        try:
            offset, reverse, position = signing.loads(encoded, salt=self._salt())
        except (signing.BadSignature, ValueError, TypeError):
            raise ValidationError({self.cursor_query_param: [CURSOR_REFUSED]}) from None
        return Cursor(offset=offset, reverse=reverse, position=position)

    def _tail(self, request) -> bool:
        raw = request.query_params.get(TAIL, "false")
        if raw not in ("true", "false"):
            raise ValidationError({TAIL: ["must be true or false."]})
        return raw == "true"

    def encode_cursor(self, cursor):
        token = signing.dumps([cursor.offset, cursor.reverse, cursor.position], salt=self._salt())
        return replace_query_param(self.base_url, self.cursor_query_param, token)

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
