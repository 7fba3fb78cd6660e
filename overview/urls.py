"""The pages of `overview` (docs/pages.md)."""

app_name = "overview"
urlpatterns: list = []
