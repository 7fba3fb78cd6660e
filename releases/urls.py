"""The pages of `releases` (docs/pages.md)."""

app_name = "releases"
urlpatterns: list = []
