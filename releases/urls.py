"""The pages of `releases` (docs/pages.md)."""

from django.urls import path

from releases import views

app_name = "releases"
urlpatterns: list = [
    path("releases/new/", views.release_new, name="new"),
    path("releases/<str:release_id>/", views.release_detail, name="release"),
    path("releases/<str:release_id>/summary", views.release_summary, name="summary"),
    path("releases/<str:release_id>/timeline", views.release_timeline, name="timeline"),
    path("runs/<str:run_id>/", views.run_detail, name="run"),
]
