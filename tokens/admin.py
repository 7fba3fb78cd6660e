from django.contrib import admin

from controlplane.admin import ReadOnlyAdmin, lifecycle_action
from tokens import lifecycle
from tokens.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Tokens are issued on /tokens/ (or the APIs), where the secret is shown once; here they are seen and revoked."""

    list_display = ["id", "name", "role", "owner", "prefix", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["role"]
    search_fields = ["id", "name", "owner", "prefix"]
    exclude = ["digest"]
    actions = [lifecycle_action(lifecycle.revoke, "Revoke selected")]
