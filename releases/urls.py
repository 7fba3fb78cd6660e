"""The pages of `releases` (docs/pages.md)."""

from django.urls import path

from controlplane import converters  # noqa: F401 - registers <id:…>
from releases import approval_views, views

app_name = "releases"
urlpatterns: list = [
    path("releases/new/", views.release_new, name="new"),
    path("releases/<id:release_id>/", views.release_detail, name="release"),
    path("releases/<id:release_id>/summary", views.release_summary, name="summary"),
    path("releases/<id:release_id>/timeline", views.release_timeline, name="timeline"),
    path("runs/<id:run_id>/", views.run_detail, name="run"),
    # Approvals (releases/approval_views.py).
    path("approvals/", approval_views.queue, name="approvals"),
    path("approvals/count", approval_views.count, name="approvals-count"),
    path("runs/<id:run_id>/approve/", approval_views.decide, {"action": "approve"}, name="approve"),
    path("runs/<id:run_id>/reject/", approval_views.decide, {"action": "reject"}, name="reject"),
    path("runs/<id:run_id>/cancel/", approval_views.decide, {"action": "cancel"}, name="cancel"),
]
