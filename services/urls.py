"""The pages of `services` (docs/pages.md)."""

app_name = "services"
urlpatterns: list = []
