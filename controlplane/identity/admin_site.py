from urllib.parse import urlencode

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse

from controlplane.identity.roles import can


class ControlPlaneAdminSite(admin.AdminSite):
    """The Django admin, for principals with the admin role; sign-in and sign-out are the app's own."""

    site_header = "Control plane"
    site_title = "Control plane admin"
    index_title = "Services, releases, incidents and the audit trail"

    def has_permission(self, request):
        return can(getattr(request, "principal", None), "admin.access") and request.user.is_active

    def login(self, request, extra_context=None):
        return redirect(f"{reverse('login')}?{urlencode({'next': request.GET.get('next', reverse('admin:index'))})}")

    def logout(self, request, extra_context=None):
        return redirect(reverse("login"))
