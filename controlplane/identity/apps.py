from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    default_site = "controlplane.identity.admin_site.ControlPlaneAdminSite"
