"""The permission model in Django REST Framework: the middleware identifies, these enforce."""

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from controlplane.identity.roles import can, refusal
from controlplane.identity.sessions import csrf_refusal


class PrincipalAuthentication(BaseAuthentication):
    """The principal the middleware found; session callers must also pass the CSRF check."""

    def authenticate(self, request):
        principal = getattr(request._request, "principal", None)
        if principal is None:
            return None
        if principal.via_session:
            self.enforce_csrf(request)
        return (request._request.user, principal)

    def enforce_csrf(self, request):
        # Check the Django request: reading a DRF request's POST would parse the body first (a 415 for forms).
        reason = csrf_refusal(request._request)
        if reason:
            raise PermissionDenied(f"CSRF failed: {reason}")

    def authenticate_header(self, request):
        return 'Bearer realm="controlplane"'


class RolePermission(BasePermission):
    """A view names the action it performs: `action_permissions = {"create": "release.create"}` per
    viewset action or HTTP method, falling back to `permission_action` (default "read")."""

    def has_permission(self, request, view):
        principal = request.auth
        if principal is None:
            return False  # DRF answers 401 with the authenticate header
        mapping = getattr(view, "action_permissions", {})
        action = mapping.get(getattr(view, "action", None)) or mapping.get(request.method)
        action = action or getattr(view, "permission_action", "read")
        if can(principal, action):
            return True
        self.message = refusal(principal, action)
        return False
