from django.conf import settings
from rest_framework.pagination import CursorPagination


class CursorPage(CursorPagination):
    """Cursor pages: stable under inserts, and as fast on the last page as on the first."""

    page_size_query_param = "pageSize"

    def __init__(self):
        self.page_size, self.max_page_size = settings.API_PAGE_SIZE, settings.API_MAX_PAGE_SIZE

    def get_ordering(self, request, queryset, view):
        return tuple(getattr(view, "ordering", ("-pk",)))
