"""The pages of `incidents` (docs/pages.md)."""

app_name = "incidents"
urlpatterns: list = []
