"""Idempotency-Key on every POST and PATCH under /api/ and on /graphql/ (idempotency.keys)."""

from django.http import HttpResponse, JsonResponse

from idempotency import keys

WRITES = frozenset({"POST", "PATCH"})
PATHS = ("/api/", "/graphql/")


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        header = request.headers.get(keys.HEADER)
        principal = getattr(request, "principal", None)
        if header is None or request.method not in WRITES or principal is None or not request.path.startswith(PATHS):
            return self.get_response(request)
        try:
            attempt = keys.Request.of(
                principal.actor, keys.parse(header), request.method, request.get_full_path(), request.body
            )
            kept = keys.claim(attempt)
        except keys.Refused as refused:
            return JsonResponse(refused.body, status=refused.status)
        if kept is not None:
            return replayed(kept)
        try:
            response = self.get_response(request)
        except BaseException:
            keys.release(attempt)
            raise
        if response.status_code >= 500 or response.streaming:
            keys.release(attempt)
        else:
            keys.keep(
                attempt,
                response.status_code,
                response.get("Content-Type", ""),
                response.get("Location", ""),
                response.content,
            )
        return response


def replayed(kept) -> HttpResponse:
    response = HttpResponse(bytes(kept.body), status=kept.status, content_type=kept.content_type or None)
    if kept.location:
        response["Location"] = kept.location
    response["Idempotent-Replayed"] = "true"
    return response
