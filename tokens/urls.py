"""The pages of `tokens` (docs/pages.md)."""

from django.urls import path

from controlplane import converters  # noqa: F401 - registers <id:…>
from tokens import views

app_name = "tokens"
urlpatterns = [
    path("tokens/", views.token_list, name="list"),
    path("tokens/<id:pk>/revoke/", views.token_revoke, name="revoke"),
]
