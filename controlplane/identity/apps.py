from django.conf import settings
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    default_site = "controlplane.identity.admin_site.ControlPlaneAdminSite"

    def ready(self):
        super().ready()  # autodiscovers every app's admin, django.contrib.auth's among them
        if "django.contrib.auth.backends.ModelBackend" not in settings.AUTHENTICATION_BACKENDS:
            # Nobody signs in with a password (OIDC and tokens only): Users and Groups would be forms for nothing.
            from django.contrib import admin
            from django.contrib.auth.models import Group, User

            for model in (User, Group):
                if admin.site.is_registered(model):
                    admin.site.unregister(model)
