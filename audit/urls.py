"""The pages of `audit` (docs/pages.md)."""

app_name = "audit"
urlpatterns: list = []
