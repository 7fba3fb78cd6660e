"""The path converter for an entity's id in the pages' URLs: `<id:release_id>` matches what `Entity` ids are
(`controlplane.models.ID_PATTERN`, as the REST API's `lookup_value_regex`), so anything else (a NUL byte, which
PostgreSQL refuses in a query with a 500) is a 404 before a view runs. Registered once, on import."""

from django.urls import register_converter
from django.urls.converters import StringConverter

from controlplane.models import ID_REGEX


class EntityIdConverter(StringConverter):
    regex = ID_REGEX


register_converter(EntityIdConverter, "id")
