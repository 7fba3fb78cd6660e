"""The pages of `overview` (docs/pages.md): those that cross apps. A service's page lives here, not in
`services`, because it shows releases, incidents and the audit trail (tests/test_layers.py)."""

from django.urls import path

from controlplane import converters  # noqa: F401 - registers <id:…>
from overview import views

app_name = "overview"
urlpatterns: list = [
    path("", views.index, name="index"),
    path("services/<id:service_id>/", views.service_detail, name="service"),
    path("environments/", views.environments, name="environments"),
    path("metrics/", views.dora_metrics, name="metrics"),
    path("environments/<id:environment_id>/", views.environment_detail, name="environment"),
    # "Check now": ask the environment's platform what runs there (POST; releases.drift.check).
    path("environments/<id:environment_id>/drift/", views.environment_drift_check, name="drift-check"),
]

# Deploy and promote behind their confirmations (overview/actions.py).
from overview import actions  # noqa: E402

urlpatterns += actions.urlpatterns
