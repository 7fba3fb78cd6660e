from django.contrib import admin
from django.urls import include, path

from controlplane import views
from controlplane.graphql.schema import schema
from controlplane.graphql.view import GraphQLView
from controlplane.identity import views as identity
from overview import services_index

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("login/", identity.sign_in, name="login"),
    path("logout/", identity.sign_out, name="logout"),
    path("oidc/authenticate/", identity.oidc_authenticate, name="oidc_authentication_init"),
    path("oidc/callback/", identity.oidc_callback, name="oidc_authentication_callback"),
    path("api/", include("controlplane.api.urls")),
    path(
        "graphql/",
        # servicesIndex answers are cached under the audit trail's head, like REST's index pages.
        GraphQLView.as_view(schema=schema, response_cache=services_index.cached_body, cached_fields={"servicesIndex"}),
        name="graphql",
    ),
    path("admin/", admin.site.urls),
    # The dashboard's pages, each app its own (docs/pages.md).
    path("", include("overview.urls")),
    path("", include("releases.urls")),
    path("", include("incidents.urls")),
    path("", include("audit.urls")),
    path("", include("tokens.urls")),
    path("", include("integrations.urls")),
]

handler400 = views.bad_request
handler404 = views.not_found
handler500 = views.server_error
