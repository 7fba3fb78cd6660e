from django.contrib import admin
from django.urls import path

from controlplane import views

admin.site.site_header = "Control plane"
admin.site.site_title = "Control plane admin"
admin.site.index_title = "Services, releases, incidents and the audit trail"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
