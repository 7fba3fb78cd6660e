from django.contrib.auth import get_user_model

from controlplane.identity.context import Principal
from controlplane.identity.roles import can


def username_for(principal: Principal) -> str:
    # Prefixed by method, so an OIDC subject can never take over a dev token's account or the reverse.
    return f"{principal.auth_method}:{principal.actor}"[:150]


def user_for(principal: Principal):
    """The Django user behind a principal (the admin and sessions need one), kept in step with the role."""
    user_model = get_user_model()
    is_admin = can(principal, "admin.access")
    user, created = user_model.objects.get_or_create(
        username=username_for(principal), defaults={"is_staff": is_admin, "is_superuser": is_admin}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    elif (user.is_staff, user.is_superuser) != (is_admin, is_admin):
        user.is_staff = user.is_superuser = is_admin
        user.save(update_fields=["is_staff", "is_superuser"])
    user.principal = principal
    return user
