"""The pages of `incidents` (docs/pages.md)."""

from django.urls import path

from controlplane import converters  # noqa: F401 - registers <id:…>
from incidents import views

app_name = "incidents"
urlpatterns = [
    path("incidents/", views.incident_list, name="list"),
    path("incidents/fragment/", views.incident_fragment, name="fragment"),
    path("incidents/new/", views.incident_create, name="create"),
    path("incidents/<id:pk>/acknowledge/", views.incident_move, {"move": "acknowledge"}, name="acknowledge"),
    path("incidents/<id:pk>/resolve/", views.incident_move, {"move": "resolve"}, name="resolve"),
]
