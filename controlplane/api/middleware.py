from django.conf import settings
from django.http import JsonResponse


class BodySizeLimitMiddleware:
    """Refuse an oversized body with 413 before anything reads it (Django alone would answer 400)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Content-Length is not a number."}, status=400)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if length > limit:
            return JsonResponse({"detail": f"The request body is larger than {limit} bytes."}, status=413)
        return self.get_response(request)
