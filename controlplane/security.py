"""Response headers for browsers beyond what Django and django-csp send, and what pages take."""

from django.conf import settings
from django.shortcuts import render

from controlplane.api import params


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


class PageFormsMiddleware:
    """A page's query parameters and form fields are each given once (`controlplane.api.params.refusals`, the
    API's own check, with empty values let be: an HTML form sends its empty fields). A name given twice is
    a 400 page naming it, never silently its last value. Checked after CSRF, before the view. The API's views
    and streams check their queries themselves (JSON, with the parameters each takes); the admin's
    multi-selects send a name once per choice, and GraphQL reads its own."""

    UNCHECKED = ("/api/", "/admin/", "/graphql/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(self.UNCHECKED):
            return None
        errors = params.refusals(request.GET, blank=True)
        if request.method == "POST":
            errors |= params.refusals(request.POST, blank=True)
        if not errors:
            return None
        context = {"principal": getattr(request, "principal", None), "errors": errors}
        return render(request, "bad_request.html", context, status=400)
