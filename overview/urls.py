"""The pages of `overview` (docs/pages.md)."""

app_name = "overview"
urlpatterns: list = []

# Deploy and promote behind their confirmations (overview/actions.py).
from overview import actions  # noqa: E402

urlpatterns += actions.urlpatterns
