"""What every resource shares: strict serializers over the domain models, cursor pages, thin viewsets."""

from collections.abc import Callable, Mapping
from itertools import chain
from types import SimpleNamespace

import orjson
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, transaction
from django.db.models.query import ValuesIterable
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from rest_framework import mixins, serializers, viewsets
from rest_framework.fields import SkipField, get_attribute
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import SAFE_METHODS

from controlplane.api import params
from controlplane.db import json_sql
from controlplane.errors import race_conflict
from controlplane.governance import Forbidden
from controlplane.models import ID_REGEX
from controlplane.plain_lists import AS_STORED, BLANK_AS_NULL, BOOLEAN, TIME, WRITTEN, PlainQuery
from controlplane.timestamps import parse_rfc3339, rfc3339

NOT_A_STRING = "must be a string."
UNKNOWN_FIELD = "is not a field of this resource."
# JSON's names for what a body can be, for "the body must be a JSON object, not an array."
_JSON_TYPES = {"list": "an array", "str": "a string", "int": "a number", "float": "a number", "bool": "a boolean"}


class OnlyStrings:
    """For a field that takes only a JSON string: 123, 1.5 and true are refused, never turned into text
    (DRF would store 123 as "123" and match 1 to the choice "1")."""

    default_error_messages = {"not_a_string": NOT_A_STRING}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class String(OnlyStrings, serializers.CharField):
    """Every string field of the API is one (tests/api/test_strict_input.py checks)."""


class Choice(OnlyStrings, serializers.ChoiceField):
    """One of fixed strings."""


class StrictSerializer(serializers.Serializer):
    """A request body: a JSON object whose every key is a field. Unknown keys are refused by name, so a
    misspelt field is an error rather than silently ignored; a body that is not an object is refused."""

    default_error_messages = {"invalid": "the body must be a JSON object, not {datatype}."}

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            kind = _JSON_TYPES.get(type(data).__name__, "null" if data is None else type(data).__name__)
            raise serializers.ValidationError(
                {
                    settings.REST_FRAMEWORK["NON_FIELD_ERRORS_KEY"]: [
                        self.error_messages["invalid"].format(datatype=kind)
                    ]
                }
            )
        errors = self.refusals(data)
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)

    def refusals(self, data: Mapping) -> dict[str, list[str]]:
        return {key: [UNKNOWN_FIELD] for key in data if key not in self.fields}


def saved_from_form(serializer) -> tuple[models.Model | None, dict[str, list[str]]]:
    """A page's form saved through its REST serializer: (the object, {}), or (None, every error, keyed by the
    API's field names and worded as the API words them). A rule about who (Forbidden) and a write that lost a
    race are form errors too; any other database error is a bug."""
    if not serializer.is_valid():
        return None, {name: [str(m) for m in messages] for name, messages in serializer.errors.items()}
    other = settings.REST_FRAMEWORK["NON_FIELD_ERRORS_KEY"]
    try:
        return serializer.save(), {}
    except DjangoValidationError as error:
        return None, serializer.api_errors(error)
    except Forbidden as refusal:
        return None, {other: [str(refusal)]}
    except IntegrityError as error:
        race = race_conflict(error)
        if race is None:
            raise
        return None, {other: [str(race)]}


class NoBody(StrictSerializer):
    """An action that takes no input: an empty body or `{}`."""


class DomainSerializer(StrictSerializer):
    """A serializer over a domain model. The model's own validation runs on save; its errors come back
    as 400s keyed by this serializer's (camelCase) field names. Unknown keys are refused, and so are
    read-only ones that would change something, so a client never believes it set what it did not."""

    m2m_fields: tuple[str, ...] = ()

    class Meta:
        model = None

    @classmethod
    def plain_columns(cls) -> tuple[tuple[str, str, Callable | None], ...] | None:
        """`(key, column, to_representation)` for each field shown, when every one shows a column of the
        model through a plain field (String, Choice, Timestamp, BlankAsNullField, BooleanField): such a
        resource is read from values as the database stores them (StoredValues), not model instances, and
        without DRF's per-field lookups. `to_representation` is None where the stored value is shown as it
        is (text shown as text). None when any field needs more (a relation, a list, a method, an
        annotation). Worked out once per class."""
        if "_plain_columns" not in cls.__dict__:
            columns = {f.attname: f for f in cls.Meta.model._meta.concrete_fields}
            shown = [field for field in cls().fields.values() if not field.write_only]
            plain = all(type(f) in _PLAIN_FIELDS and f.source in columns for f in shown)
            # The fields' to_representation use nothing of the (throwaway) serializer they are bound to.
            cls._plain_columns = (
                tuple((f.field_name, f.source, _shown_by(f, columns[f.source])) for f in shown) if plain else None
            )
        return cls._plain_columns

    @classmethod
    def written_columns(cls) -> tuple[tuple[str, str, str], ...] | None:
        """`(key, column, how)` for each field shown, when the database can write the resource as its
        to_representation would (controlplane.plain_lists.PlainQuery.writing): every field a plain column shown
        as stored, as a time, "" as null, or as a boolean. None otherwise. Worked out once per class."""
        if "_written_columns" not in cls.__dict__:
            columns = cls.plain_columns()
            fields = cls().fields if columns is not None else {}
            written = [(key, column, _written_as(fields[key], show)) for key, column, show in columns or ()]
            cls._written_columns = tuple(written) if columns and all(how for *_, how in written) else None
        return cls._written_columns

    def to_representation(self, instance):
        columns = self.plain_columns()
        if columns is None:
            return super().to_representation(instance)
        # What DRF's Serializer.to_representation gives, None kept as None, from a row or an instance.
        read = instance.__getitem__ if isinstance(instance, dict) else instance.__getattribute__
        return {
            key: value if (value := read(column)) is None or show is None else show(value)
            for key, column, show in columns
        }

    def refusals(self, data: Mapping) -> dict[str, list[str]]:
        errors = super().refusals(data)
        errors.update(
            {
                key: [getattr(self.fields[key], "read_only_reason", "is read-only.")]
                for key in data
                if key in self.fields and self.fields[key].read_only and not self._unchanged(key, data[key])
            }
        )
        return errors

    def _unchanged(self, key, value) -> bool:
        if self.instance is None:
            return False
        field = self.fields[key]
        try:
            stored = get_attribute(self.instance, field.source_attrs)
        except (AttributeError, KeyError, SkipField):
            return False
        # As the API shows it: an empty value is null (DRF's String would show it as "None"); 1 is not true.
        shown = None if stored is None else field.to_representation(stored)
        return shown == value and isinstance(shown, bool) == isinstance(value, bool)

    def api_errors(self, error: DjangoValidationError) -> dict:
        names = {}
        for name, field in self.fields.items():
            names[field.source] = names[field.source.removesuffix("_id")] = name
        names[NON_FIELD_ERRORS] = settings.REST_FRAMEWORK["NON_FIELD_ERRORS_KEY"]
        errors = getattr(error, "message_dict", None) or {NON_FIELD_ERRORS: error.messages}
        result: dict[str, list[str]] = {}
        for key, messages in errors.items():
            api_key = names.get(key, key)
            # A rule on a field this resource does not show names it in the message.
            shown = messages if key in names else [f"{key}: {m}" for m in messages]
            result.setdefault(api_key if key in names else names[NON_FIELD_ERRORS], []).extend(shown)
        return result

    def save(self, **kwargs):
        # One transaction: a rule broken by a related write (an environment link) undoes the whole save.
        # The model's ValidationError becomes a 400 in controlplane.api.errors, through api_errors().
        with transaction.atomic():
            return super().save(**kwargs)

    def create(self, validated_data):
        related = {name: validated_data.pop(name) for name in self.m2m_fields if name in validated_data}
        obj = self.Meta.model(**validated_data)
        obj.save()
        for name, value in related.items():
            getattr(obj, name).set(value)
        return obj

    def update(self, instance, validated_data):
        related = {name: validated_data.pop(name) for name in self.m2m_fields if name in validated_data}
        for name, value in validated_data.items():
            setattr(instance, name, value)
        instance.save()
        for name, value in related.items():
            getattr(instance, name).set(value)
        return instance


class EntitySerializer(DomainSerializer):
    """For entities with typed string ids: a client may choose the id on create (else the server
    generates one), and it never changes after. `read_only_reasons` explains a refused read-only field."""

    id = String(
        required=False,
        help_text="Type prefix and lower-case letters, digits, dashes; generated when omitted. Immutable.",
    )
    read_only_reasons: dict[str, str] = {}

    def get_fields(self):
        # When the fields are first needed (a read of plain columns never needs them): a list's serializer
        # does not copy its fields only to mark them.
        fields = super().get_fields()
        for name, reason in self.read_only_reasons.items():
            fields[name].read_only_reason = reason
        if self.instance is not None:
            fields["id"].read_only = True
        return fields


class _RFC3339(serializers.DateTimeField):
    """Written times go through the one RFC 3339 parser (controlplane.timestamps), the filters' too."""

    def to_internal_value(self, value):
        try:
            return parse_rfc3339(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from None


class Timestamp(OnlyStrings, _RFC3339):
    """RFC 3339: read in UTC with `Z`; written with any offset (a date alone or a time without an offset
    is refused), through the same parser as the time filters."""

    def to_representation(self, value):
        return rfc3339(value)


class BlankAsNullField(String):
    """Stored as an empty string, shown as null (region and cluster when the adapter's default applies)."""

    def __init__(self, **kwargs):
        super().__init__(allow_null=True, allow_blank=True, required=False, **kwargs)

    def to_representation(self, value):
        return value or None

    def to_internal_value(self, data):
        return "" if data is None else super().to_internal_value(data)

    def validate_empty_values(self, data):
        if data is None:
            return (True, "")
        return super().validate_empty_values(data)


# Fields that show a stored value as it is (or None as None), whatever serializer they belong to.
_PLAIN_FIELDS = (String, Choice, Timestamp, BlankAsNullField, serializers.BooleanField)
_TEXT = (models.CharField, models.TextField)


def _shown_by(field: serializers.Field, column: models.Field) -> Callable | None:
    """How a plain field shows a stored value: None when as it is (text through String or Choice), else its
    to_representation, which takes the value as the database returns it (a time as SQLite's text, a boolean
    as 0 or 1)."""
    stored = column.target_field if column.is_relation else column
    if type(field) in (String, Choice) and isinstance(stored, _TEXT):
        return None
    return field.to_representation


def _written_as(field: serializers.Field, show: Callable | None) -> str | None:
    """How the database writes what `field` shows (a plain field, `show` its _shown_by), or None."""
    if show is None:
        return AS_STORED
    if type(field) is Timestamp:
        return TIME
    if type(field) is BlankAsNullField:
        return BLANK_AS_NULL
    if type(field) is serializers.BooleanField:
        return BOOLEAN
    return None  # text shown from another type (a number as a string): left to the serializer


class StoredValues(ValuesIterable):
    """values() as the database returns them, without Django's conversions (SQLite's times parsed, only to
    be printed again): for resources whose every field is a plain column, whose fields show such values
    (DomainSerializer.plain_columns). A long list spent a fifth of its time converting."""

    def __iter__(self):
        query = self.queryset.query
        names = [*query.extra_select, *query.values_select, *query.annotation_select]
        compiler = query.get_compiler(self.queryset.db)
        results = compiler.execute_sql(chunked_fetch=self.chunked_fetch, chunk_size=self.chunk_size)
        for row in chain.from_iterable(results):
            yield dict(zip(names, row, strict=False))


class _NoFormatParameter(DefaultContentNegotiation):
    """DRF's negotiation without its `?format=` override: `format` is a query parameter like any other, refused by
    name as one the endpoint does not take, rather than a 404 "Not found." for a resource that exists
    (`?format=xml`) before the query is checked. The answer is JSON either way."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)


class StrictQuery:
    """For every API view: its query parameters are each one it takes, given once, not empty
    (`controlplane.api.params`), checked after authentication and permissions, before anything reads them. A
    list takes its filters and its pages' parameters; anything else takes `takes`, by default none."""

    content_negotiation_class = _NoFormatParameter
    takes: tuple[str, ...] = ()
    where = "this endpoint"
    blank = False  # True where another rule of the view's own says what an empty value is

    def query_parameters(self) -> tuple[str, ...]:
        names = list(self.takes)
        # A viewset's list (its detail routes and actions neither filter nor page), or a plain list view.
        if getattr(self, "action", "list") == "list":
            if getattr(self, "filterset_class", None) is not None:
                names += self.filterset_class.base_filters
            if getattr(self, "paginator", None) is not None:
                names += self.paginator.query_parameters()
        return tuple(names)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        params.checked(request.query_params, self.query_parameters(), self.where, self.blank)


def named_by_body(exc: Exception, body: type[StrictSerializer] | None) -> Exception:
    """A domain rule about a field of an action's body (break-glass's reason) named as the body names it, not
    as a rule of the resource. REST's actions and GraphQL's mutations both ask here."""
    named = isinstance(exc, DjangoValidationError) and body is not None and hasattr(exc, "error_dict")
    if named and set(exc.error_dict) <= set(body().fields):
        return serializers.ValidationError(exc.message_dict)
    return exc


class DomainViewSet(StrictQuery, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Read access for viewers; subclasses add write mixins and name their actions' permissions.

    Every write that is not a create or an update (`…/deploy/`, `…/promote/`, `…/resolve/`, DELETE, …)
    has its body checked here, after authentication and permissions: against `action_bodies[action]`
    (a StrictSerializer), or NoBody when the action takes none, so no action ignores what it is sent.
    The action reads the checked body from `self.body`."""

    lookup_value_regex = ID_REGEX  # anything else is a 404 before a query (a NUL byte would be a 500 on PostgreSQL)
    action_bodies: dict[str, type[StrictSerializer]] = {}
    _SERIALIZER_ACTIONS = frozenset({"create", "update", "partial_update"})  # their serializer checks the body

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.body = {}
        # No action: the method is not allowed here, and the 405 comes next.
        if request.method not in SAFE_METHODS and self.action and self.action not in self._SERIALIZER_ACTIONS:
            body = self.action_bodies.get(self.action, NoBody)(data=request.data)
            body.is_valid(raise_exception=True)
            self.body = body.validated_data

    def handle_exception(self, exc):
        return super().handle_exception(named_by_body(exc, self.action_bodies.get(getattr(self, "action", None))))

    def filter_queryset(self, queryset):
        # Filters narrow lists; a resource fetched by id is found whatever the list's defaults.
        return queryset if self.detail else super().filter_queryset(queryset)

    def list(self, request, *args, **kwargs):
        # ListModelMixin.list, but a resource whose every field is a plain column (plain_columns) is read as
        # values as stored: a dict per row, not a model instance built, tracked and converted back field by
        # field; by a statement written once per shape when its filters are plain (controlplane.plain_lists).
        columns = getattr(self.get_serializer_class(), "plain_columns", lambda: None)()
        if columns is None or self.paginator is None:
            return super().list(request, *args, **kwargs)
        queryset = self.get_queryset()
        keys = [o.lstrip("-") for o in self.paginator.get_ordering(request, queryset, self)]  # a page's bookmark
        names = tuple(dict.fromkeys([column for _, column, _ in columns] + keys))
        rows = self.stored_values(queryset, names)
        written = self.get_serializer_class().written_columns()
        if written is not None and isinstance(rows, PlainQuery):
            # Each row written in JSON by the database, as the serializer would show it, and embedded as it is.
            page = self.paginate_queryset(rows.writing(written, tuple(keys)))
            return self.get_paginated_response(orjson.Fragment(json_sql.array(row[WRITTEN] for row in page)))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def stored_values(self, queryset, names: tuple[str, ...]):
        return stored_values(self, queryset, names)


def stored_values(view, queryset, names: tuple[str, ...]):
    """A list view's rows of `queryset`, narrowed by its filters (checked: a 400 naming the filter), with the
    columns `names` as the database stores them (filtered_rows)."""
    if view.filter_backends == [DjangoFilterBackend]:
        filterset = DjangoFilterBackend().get_filterset(view.request, queryset, view)
        if filterset is not None:
            if not filterset.is_valid():
                raise translate_validation(filterset.errors)
            return filtered_rows(filterset, names)
    return as_stored(view.filter_queryset(queryset).values(*names))


def filtered_rows(filterset, names: tuple[str, ...]):
    """A valid filterset's rows with the columns `names` as the database stores them: a PlainQuery when its
    filters are plain, else the ORM's values() as StoredValues. Either pages with controlplane.keyset. REST's
    lists and GraphQL's services index read their rows here."""
    conditions = filterset.conditions()
    plain = PlainQuery.of(filterset.queryset, names, conditions) if conditions is not None else None
    return plain if plain is not None else as_stored(filterset.qs.values(*names))


def as_stored(rows):
    rows._iterable_class = StoredValues  # no public way to say "as stored" to values()
    return rows
