"""Response headers for browsers beyond what Django and django-csp send."""

from django.conf import settings


class PermissionsPolicyMiddleware:
    """`Permissions-Policy`: the browser features no page here uses (settings.PERMISSIONS_POLICY_DENIED) are
    denied to the page and to anything it embeds."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.header = ", ".join(f"{feature}=()" for feature in settings.PERMISSIONS_POLICY_DENIED)

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", self.header)
        return response
