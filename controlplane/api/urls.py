from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from audit.api import AuditEventViewSet
from controlplane import (
    converters,  # noqa: F401 - registers <id:…>
    views,
)
from controlplane.api import schema  # noqa: F401 - registers the OpenAPI extensions
from controlplane.identity.views import MeView
from incidents.api import IncidentViewSet
from integrations.api import DeliveryViewSet, IntegrationViewSet, ReceivedEventViewSet, WebhookViewSet, receive_event
from overview import streams
from overview.api import DeployPreviewView, DoraMetricsView, PromotePreviewView, ServicesIndexView
from policies.api import EnvironmentPolicyView
from releases.api import EnvironmentDriftView, ReleaseViewSet, ServiceRollbackView, WorkflowRunViewSet
from services.api import ChangeWindowViewSet, EnvironmentViewSet, FreezeViewSet, ServiceViewSet
from tokens.api import TokenViewSet

router = DefaultRouter()
router.include_root_view = False
router.register("services", ServiceViewSet)
router.register("environments", EnvironmentViewSet)
router.register("change-windows", ChangeWindowViewSet)
router.register("freezes", FreezeViewSet)
router.register("releases", ReleaseViewSet)
router.register("workflow-runs", WorkflowRunViewSet)
router.register("incidents", IncidentViewSet)
router.register("audit-events", AuditEventViewSet)
router.register("tokens", TokenViewSet)
router.register("integrations", IntegrationViewSet)
router.register("webhooks", WebhookViewSet)

urlpatterns = [
    path("me/", MeView.as_view(), name="me"),
    # Before the router, whose service detail route would otherwise take "index" for an id.
    path("services/index/", ServicesIndexView.as_view(), name="services-index"),
    # A service's action that belongs to releases (which services may not import): wired here, under services.
    path("services/<id:id>/rollback/", ServiceRollbackView.as_view(), name="service-rollback"),
    # What …/deploy/ and …/promote/ would do (overview.previews): reads, with those actions' permissions.
    path("releases/<id:id>/deploy-preview/", DeployPreviewView.as_view(), name="deploy-preview"),
    path("releases/<id:id>/promote-preview/", PromotePreviewView.as_view(), name="promote-preview"),
    # "Why not, and until when?" (policies.explain): a read for every role.
    path("environments/<id:id>/policy/", EnvironmentPolicyView.as_view(), name="environment-policy"),
    # What runs there (releases.drift): an environment's read and action that belong to releases.
    path("environments/<id:id>/drift/", EnvironmentDriftView.as_view(), name="environment-drift"),
    # DORA metrics from our own records (overview.dora, docs/metrics.md): a read for every role.
    path("metrics/dora/", DoraMetricsView.as_view(), name="metrics-dora"),
    # Integrations' logs, and where their sources post (docs/integrations.md).
    path("integrations/<id:id>/events/", receive_event, name="integration-events"),
    path(
        "integrations/<id:id>/deliveries/",
        ReceivedEventViewSet.as_view({"get": "list"}),
        name="integration-deliveries",
    ),
    path("webhooks/<id:id>/deliveries/", DeliveryViewSet.as_view({"get": "list"}), name="webhook-deliveries"),
    path(
        "webhooks/<id:id>/deliveries/<id:deliveryId>/",
        DeliveryViewSet.as_view({"get": "retrieve"}, detail=True),
        name="webhook-delivery",
    ),
    path(
        "webhooks/<id:id>/deliveries/<id:deliveryId>/redeliver/",
        DeliveryViewSet.as_view({"post": "redeliver"}, detail=True),
        name="webhook-redeliver",
    ),
    # Streams are plain Django views (Server-Sent Events), before the router's detail routes.
    path("workflow-runs/<id:id>/logs/stream", streams.run_log, name="run-log-stream"),
    path("audit-events/stream", streams.audit_events, name="audit-stream"),
    path("streams/", streams.status, name="streams"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its initialiser as a script file, so the page needs no inline script (CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("", include(router.urls)),
    # Whatever else is under /api/ (an id outside the id pattern, say): the API's JSON 404, in DEBUG too, where
    # Django's own 404 for a path that matches nothing is an HTML page.
    re_path(r"", views.api_not_found, name="not-found"),
]
