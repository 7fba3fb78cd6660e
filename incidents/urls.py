"""The pages of `incidents` (docs/pages.md)."""

from django.urls import path

from incidents import views

app_name = "incidents"
urlpatterns = [
    path("incidents/", views.incident_list, name="list"),
    path("incidents/fragment/", views.incident_fragment, name="fragment"),
    path("incidents/new/", views.incident_create, name="create"),
    path("incidents/<str:pk>/acknowledge/", views.incident_move, {"move": "acknowledge"}, name="acknowledge"),
    path("incidents/<str:pk>/resolve/", views.incident_move, {"move": "resolve"}, name="resolve"),
]
