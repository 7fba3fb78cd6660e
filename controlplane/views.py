from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.http import require_safe


@require_safe
def healthz(request):
    """Liveness and database reachability, without authentication (for load balancers and probes)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def _api_or_page(request, status: int, detail: str, page_view, **kwargs):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail}, status=status)
    return page_view(request, **kwargs)


def api_not_found(request):
    """The end of the API's routes: JSON whatever DEBUG says. A path a slash would complete is said to be one
    (CommonMiddleware's redirect never comes for a path that resolves); so is a stream's path given with one
    (streams end without: `/api/audit-events/stream`)."""
    detail, path = "Not found.", request.path_info
    if not path.endswith("/") and _is_route(f"{path}/"):
        detail = f"Not found; API paths end in a slash: {request.path}/."
    elif path.endswith("/") and _is_route(path[:-1]):
        detail = f"Not found; a stream's path ends without a slash: {request.path[:-1]}."
    return JsonResponse({"detail": detail}, status=404)


def _is_route(path: str) -> bool:
    try:
        return resolve(path).func is not api_not_found
    except Resolver404:
        return False


def not_found(request, exception=None):
    """API clients get JSON for a path that matches nothing; people get the usual page."""
    return _api_or_page(request, 404, "Not found.", defaults.page_not_found, exception=exception)


def bad_request(request, exception=None):
    return _api_or_page(request, 400, "Bad request.", defaults.bad_request, exception=exception)


def server_error(request):
    return _api_or_page(request, 500, "Server error; it has been logged.", defaults.server_error)
