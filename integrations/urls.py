"""The pages of `integrations` (docs/pages.md, "Integrations")."""

from django.urls import path

from controlplane import converters  # noqa: F401 - registers <id:…>
from integrations import views

app_name = "integrations"
urlpatterns = [
    path("integrations/", views.integration_list, name="list"),
    path("integrations/new/", views.integration_create, name="create"),
    path("integrations/<id:pk>/", views.integration_detail, name="integration"),
    path("integrations/<id:pk>/edit/", views.integration_edit, name="edit"),
    path("integrations/<id:pk>/rotate/", views.integration_rotate, name="rotate"),
    path("webhooks/new/", views.webhook_create, name="webhook-create"),
    path("webhooks/<id:pk>/", views.webhook_detail, name="webhook"),
    path("webhooks/<id:pk>/disable/", views.webhook_switch, {"enable": False}, name="webhook-disable"),
    path("webhooks/<id:pk>/enable/", views.webhook_switch, {"enable": True}, name="webhook-enable"),
    path("webhooks/<id:pk>/rotate/", views.webhook_rotate, name="webhook-rotate"),
    path("webhooks/<id:pk>/ping/", views.webhook_ping, name="webhook-ping"),
    path("webhooks/<id:pk>/deliveries/<id:delivery_pk>/", views.delivery_detail, name="delivery"),
    path("webhooks/<id:pk>/deliveries/<id:delivery_pk>/redeliver/", views.delivery_redeliver, name="redeliver"),
]
