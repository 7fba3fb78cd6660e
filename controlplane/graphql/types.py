"""What every app's schema shares: scalars, errors as data, mutations as thin doors onto the domain,
connections (GraphQL's door onto the one pagination, controlplane.keyset), and relations loaded in batches
(docs/graphql.md).

Nothing here knows an entity: each domain app's `schema.py` builds its types from these pieces, and
`controlplane/graphql/schema.py` composes them.
"""

import datetime
import enum
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, NoReturn

import graphene
from django.db import models, transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.shortcuts import get_object_or_404
from graphene.types.utils import yank_fields_from_attrs
from graphene.utils.str_converters import to_camel_case, to_snake_case
from graphql import GraphQLError, Undefined
from graphql.language import StringValueNode
from graphql.utilities import value_from_ast_untyped
from rest_framework.exceptions import APIException

from controlplane.api.base import named_by_body
from controlplane.api.errors import PolicyConflict, api_exception
from controlplane.api.params import EMPTY
from controlplane.governance import PolicyDenied
from controlplane.graphql.plain import Plain, plain_connection
from controlplane.identity.context import current_principal
from controlplane.identity.roles import can, refusal
from controlplane.keyset import AFTER as AFTER_KEY
from controlplane.keyset import CURSOR_REFUSED, START, Keyset, NotACursor, Position
from controlplane.keyset import page_size as keyset_page_size
from controlplane.models import ID_PATTERN
from controlplane.timestamps import rfc3339

# --- scalars ---


class JSON(graphene.Scalar):
    """Any JSON value: audit metadata, a log entry's meta (redacted as stored)."""

    @staticmethod
    def serialize(value):
        return value

    @staticmethod
    def parse_value(value):
        return value

    @staticmethod
    def parse_literal(node, _variables=None):
        return value_from_ast_untyped(node, _variables)


class DateTime(graphene.Scalar):
    """RFC 3339. Read in UTC with `Z`; written with an offset (a date alone or a time without an offset is
    refused), by the same parser and with the same message as REST: the domain checks it, not GraphQL."""

    strings_as_they_are = True  # serialize gives a string back as it is (controlplane.graphql.plain relies on it)

    @staticmethod
    def serialize(value):
        return rfc3339(value) if isinstance(value, datetime.datetime) else value

    @staticmethod
    def parse_value(value):
        if not isinstance(value, str):
            raise GraphQLError("DateTime must be an RFC 3339 string.")
        return value

    @staticmethod
    def parse_literal(node, _variables=None):
        return node.value if isinstance(node, StringValueNode) else Undefined


def enum_of(choices: type[models.TextChoices], description: str) -> type[graphene.Enum]:
    """A GraphQL enum whose values are the domain's own words (`Draft`, `critical`), as REST spells them."""
    return graphene.Enum(choices.__name__, [(value, value) for value in choices.values], description=description)


def choice(enum_type: type[graphene.Enum], attname: str, **kwargs) -> graphene.Field:
    """A field of `enum_type` showing the model's `attname`: a value the model was just given is a
    TextChoices member, which graphene would not match to the enum's value."""

    def resolve(obj, info):
        value = getattr(obj, attname)
        return getattr(value, "value", value)

    return graphene.Field(enum_type, resolver=resolve, **kwargs)


def plain(value):
    """An argument as REST's query string would carry it: enums by value, booleans as true/false."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def extend(object_type: type[graphene.ObjectType], extension: type) -> None:
    """GraphQL's `extend type`: an app adds fields to a type of an app below it (releases adds
    `Service.releases`), so no app imports upward. Called when the app's schema module is imported, before
    the schema is built."""
    object_type._meta.fields.update(yank_fields_from_attrs(extension.__dict__, _as=graphene.Field))
    for name, value in extension.__dict__.items():
        if name.startswith("resolve_"):
            setattr(object_type, name, value)


# --- entities by id ---


def lookup(model: type[models.Model], id: str) -> models.QuerySet:
    """The entity with this id, as a queryset: empty, without asking the database, when the id cannot be one
    (outside the entity id pattern: a NUL byte, which PostgreSQL refuses in a query, or a lone surrogate,
    which no database takes), as REST's URLs answer 404 for it."""
    return model.objects.filter(pk=id) if ID_PATTERN.fullmatch(id) else model.objects.none()


def by_id(object_type: type[graphene.ObjectType], model: type[models.Model]) -> graphene.Field:
    """A root field `…(id: ID!)`: the entity with that id, or null."""
    return graphene.Field(
        object_type, id=graphene.ID(required=True), resolver=lambda root, info, id: lookup(model, id).first()
    )


def found(model: type[models.Model], id: str) -> models.Model:
    """The entity a mutation acts on, or NOT_FOUND with REST's message for it."""
    return get_object_or_404(lookup(model, id))


# --- errors as data ---


class ErrorCode(graphene.Enum):
    """What REST answers with 400, 404, 409 and 403; POLICY_DENIED is REST's 409 with a `decision`."""

    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    FORBIDDEN = "FORBIDDEN"
    POLICY_DENIED = "POLICY_DENIED"


CODES = {400: "INVALID", 413: "INVALID", 404: "NOT_FOUND", 409: "CONFLICT", 403: "FORBIDDEN"}
NON_FIELD = "nonFieldErrors"


class Error(graphene.ObjectType):
    field = graphene.String(description="The input field, as REST names it; null when the rule is the whole input's.")
    code = graphene.NonNull(ErrorCode)
    message = graphene.String(required=True, description="The text REST gives for the same violation.")


def errors_of(refused: APIException) -> list[dict]:
    """REST's answer (`controlplane.api.errors.api_exception`) as `errors` entries: the same messages."""
    if isinstance(refused, PolicyConflict):  # REST's 409 {"detail": sentence, "decision": …}
        return [{"field": None, "code": "POLICY_DENIED", "message": str(refused.detail["detail"])}]
    code = CODES.get(refused.status_code, "INVALID")
    detail = refused.detail
    if not isinstance(detail, dict):
        return [{"field": None, "code": code, "message": str(message)} for message in _as_list(detail)]
    return [
        {"field": None if field == NON_FIELD else field, "code": code, "message": str(message)}
        for field, messages in detail.items()
        for message in _as_list(messages)
    ]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# --- policy decisions ---


class PolicyDenial(graphene.ObjectType):
    policy = graphene.String(
        required=True,
        description="The ref (policy:change-window:weekday), the freeze (freeze:frz-…), or a Cedar policy.",
    )
    reason = graphene.String(required=True)


class PolicyVerdict:
    """What a decision says, read from its JSON form (`policies.gate.Decision.as_json`), as REST returns it."""

    allowed = graphene.Boolean(required=True)
    denied_by = graphene.List(
        graphene.NonNull(PolicyDenial), required=True, source="deniedBy", description="Empty when allowed."
    )
    next_allowed_at = DateTime(
        source="nextAllowedAt",
        description="When it would next be allowed; null when allowed, or when no time alone allows it.",
    )


class PolicyDecision(PolicyVerdict, graphene.ObjectType):
    """A policy's refusal of a deploy or promotion: who denied it, why, and when it would next be allowed."""


class BreakGlassInput(graphene.InputObjectType):
    """Override the windows, freezes, incident gates and promotion order (never roles or an operator's
    policies): for the roles in CONTROLPLANE_BREAK_GLASS_ROLES, audited as `policy.override`."""

    reason = graphene.String(required=True, description="Why, 10-500 characters.")


class DomainMutation(graphene.Mutation):
    """A write, as REST does it: the permission table first, then `perform` in one transaction. A broken
    rule comes back as `errors` (and nothing is written), with REST's message for it."""

    class Meta:
        abstract = True

    errors = graphene.List(graphene.NonNull(Error), required=True)

    permission: ClassVar[str]  # an action of controlplane.identity.roles.PERMISSIONS
    serializer_class: ClassVar[type | None] = None  # whose field names a model rule is reported under
    body_class: ClassVar[type | None] = None  # REST's body for the action: a rule on one of its fields is named so

    @classmethod
    def __init_subclass_with_meta__(cls, name=None, arguments=None, **options):
        if arguments is None and not hasattr(cls, "Arguments"):
            arguments = cls.arguments()
        super().__init_subclass_with_meta__(name=name or f"{cls.__name__}Payload", arguments=arguments, **options)

    @classmethod
    def arguments(cls) -> dict:
        return {}

    @classmethod
    def entity(cls) -> str:
        """The payload's field: the model's name (`service`, `incident`, `change_window`)."""
        return to_snake_case(cls.serializer_class.Meta.model.__name__)

    @classmethod
    def perform(cls, **arguments) -> dict:
        """The payload's fields other than `errors`."""
        raise NotImplementedError

    @classmethod
    def mutate(cls, root, info, **arguments):
        principal = current_principal()
        if not can(principal, cls.permission):
            return cls(errors=[{"field": None, "code": "FORBIDDEN", "message": refusal(principal, cls.permission)}])
        try:
            with transaction.atomic():
                return cls(errors=[], **cls.perform(**arguments))
        except Exception as exc:
            # After the transaction rolled back: a policy's refusal writes its `policy.deny` event here.
            refused = api_exception(named_by_body(exc, cls.body_class), cls.serializer_class)
            if refused is None:
                raise  # a bug: the view logs it and answers without its details
            decided = isinstance(exc, PolicyDenied) and "decision" in cls._meta.fields
            return cls(errors=errors_of(refused), **({"decision": exc.decision} if decided else {}))


class Create(DomainMutation):
    """REST's POST by another door: `input` (of `input_type`) through `serializer_class`."""

    class Meta:
        abstract = True

    input_type: ClassVar[type[graphene.InputObjectType]]

    @classmethod
    def arguments(cls):
        return {"input": cls.input_type(required=True)}

    @classmethod
    def perform(cls, input):
        return {cls.entity(): save(cls.serializer_class, given(input))}


class Update(Create):
    """REST's PATCH by another door: the fields `input` gives, on the entity with that id."""

    class Meta:
        abstract = True

    @classmethod
    def arguments(cls):
        return {"id": graphene.ID(required=True), **super().arguments()}

    @classmethod
    def perform(cls, id, input):
        entity = found(cls.serializer_class.Meta.model, id)
        return {cls.entity(): save(cls.serializer_class, given(input), entity)}


class Move(DomainMutation):
    """A lifecycle move (`move`: archive, restore, acknowledge, resolve) on the entity with that id."""

    class Meta:
        abstract = True

    move: ClassVar[Callable]

    @classmethod
    def arguments(cls):
        return {"id": graphene.ID(required=True)}

    @classmethod
    def perform(cls, id):
        entity = found(cls.serializer_class.Meta.model, id)
        return {cls.entity(): cls.move(entity) or entity}


def given(input_object) -> dict:
    """The fields an input object was sent with (an omitted field is not a null one: a partial update
    changes only those), named as REST names them."""
    return {to_camel_case(key): _given(value) for key, value in dict(input_object).items()}


def _given(value):
    if isinstance(value, dict):
        return given(value)
    if isinstance(value, list):
        return [_given(item) for item in value]
    return plain(value)


def checked(serializer_class, data: dict) -> dict:
    """An action's arguments as REST's body for the action (`action_bodies`): the same rules, the same words."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def arguments_of(serializer_class, data: dict) -> dict:
    """A field's arguments checked by REST's serializer for the same query string: its rules and words, a
    refusal a top-level INVALID error naming each argument (as `filtered` does)."""
    serializer = serializer_class(data={key: plain(value) for key, value in data.items() if value is not None})
    if not serializer.is_valid():
        invalid_arguments(serializer.errors)
    return serializer.validated_data


def invalid_arguments(problems: dict) -> NoReturn:
    """A query's arguments refused, as REST's 400 names them: `{name: [messages]}`."""
    problems = {name: [str(m) for m in _as_list(messages)] for name, messages in problems.items()}
    text = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in problems.items())
    raise GraphQLError(text, extensions={"code": "INVALID", "fields": problems})


def save(serializer_class, data: dict, instance=None):
    """Create or update through the REST serializer: the same checks, messages and save path as REST."""
    serializer = serializer_class(instance, data=data, partial=instance is not None)
    serializer.is_valid(raise_exception=True)
    return serializer.save()


# --- relations loaded in batches ---


class Siblings(list):
    """Objects resolved together: a page's nodes, or every parent's children of one relation. A relation
    asked of one of them is loaded for all of them at once, so a page costs a query per relation, not one
    per object (a DataLoader, batched by what was resolved together rather than by waiting)."""

    def __init__(self, objects: Iterable):
        super().__init__(objects)
        self.loaded: dict[str, dict] = {}
        for obj in self:
            obj._siblings = self


def batched(obj, key: str, load: Callable[[list], dict], default=None):
    """`load(siblings)[obj.pk]`, with `load` called once for all of `obj`'s siblings. `key` names the
    relation and its arguments. The objects it returns are siblings in turn."""
    group = obj.__dict__.get("_siblings") or Siblings([obj])
    results = group.loaded.get(key)
    if results is None:
        results = group.loaded[key] = load(group)
        children = [child for value in results.values() for child in _objects(value)]
        if children:
            Siblings(children)
    return results.get(obj.pk, default)


def _objects(value) -> list:
    if isinstance(value, models.Model):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, models.Model)]
    if isinstance(value, dict):  # a connection
        return [edge.node for edge in value["edges"] if isinstance(edge.node, models.Model)]
    return []


def key_of(name: str, arguments: dict) -> str:
    return f"{name}:{sorted((k, repr(v)) for k, v in arguments.items())}"


# --- connections ---

FIRST = graphene.Int(description="How many, from 1 to the maximum (500); 50 when omitted.")
AFTER = graphene.String(description="An `endCursor` this list issued: the page after it.")


def connection(node: type[graphene.ObjectType], description: str = "") -> type[graphene.relay.Connection]:
    """A connection of `node`s; of a Plain node, plain itself (controlplane.graphql.plain)."""
    connection_type = graphene.relay.Connection.create_type(
        f"{node._meta.name}Connection", node=node, description=description
    )
    if issubclass(node, Plain):
        plain_connection(connection_type)
    return connection_type


class _Edge:
    """An edge whose cursor is signed only if asked for."""

    __slots__ = ("_keyset", "node")

    def __init__(self, node, keyset):
        self.node, self._keyset = node, keyset

    @property
    def cursor(self) -> str:
        return self._keyset.cursor(self.node)


def _after(keyset: Keyset, cursor: str) -> Position:
    """The position an `after` cursor names; GraphQL pages are read forwards only."""
    try:
        return keyset.position(cursor, directions=(AFTER_KEY,))
    except NotACursor:
        raise GraphQLError(f"after: {CURSOR_REFUSED}", extensions={"code": "INVALID", "field": "after"}) from None


def connection_of(keyset: Keyset, rows: list, first: int, build: Callable[[list], list] | None = None) -> dict:
    """A connection of the first `first` of `rows` (read one beyond, to know whether more follow), each node
    made by `build` when given."""
    nodes = rows[:first]
    return {
        "edges": [_Edge(node, keyset) for node in (build(nodes) if build else nodes)],
        "page_info": _PageInfo(keyset, nodes, len(rows) > first),
    }


class _PageInfo:
    __slots__ = ("_keyset", "_nodes", "has_next_page")
    has_previous_page = False  # pages are read forwards only (`first`/`after`)

    def __init__(self, keyset, nodes, has_next_page):
        self._keyset, self._nodes, self.has_next_page = keyset, nodes, has_next_page

    @property
    def start_cursor(self):
        return self._keyset.cursor(self._nodes[0]) if self._nodes else None

    @property
    def end_cursor(self):
        return self._keyset.cursor(self._nodes[-1]) if self._nodes else None


def page_size(first) -> int:
    try:
        return keyset_page_size(first)
    except ValueError as exc:
        raise GraphQLError(f"first: {exc}", extensions={"code": "INVALID", "field": "first"}) from None


def paginate(queryset, keyset: Keyset, first=None, after=None, build=None) -> dict:
    """One page of `queryset` in the keyset's order, its nodes siblings (or made by `build` from rows)."""
    size = page_size(first)
    rows = keyset.rows(queryset, size + 1, START if after is None else _after(keyset, after))
    if rows and isinstance(rows[0], models.Model):
        Siblings(rows[:size])
    return connection_of(keyset, rows, size, build)


def paginate_each(queryset, keyset: Keyset, parent: str, parents: list, first=None, after=None) -> dict:
    """A page of `queryset` per parent (`parent` is the lookup to its key: `service_id`, or
    `environments__id` across a many-to-many), all in one query: the first rows of each parent by a window
    function. For a relation that grows without bound (a service's releases, an environment's services)."""
    size = page_size(first)
    queryset = queryset.filter(**{f"{parent}__in": [p.pk for p in parents]}).annotate(_parent=F(parent))
    if after is not None:
        queryset = queryset.filter(keyset.beyond(_after(keyset, after).values))
    ranked = queryset.annotate(
        _rank=Window(RowNumber(), partition_by=F("_parent"), order_by=[_order(o) for o in keyset.ordering])
    )
    rows: dict[Any, list] = {p.pk: [] for p in parents}
    for row in ranked.filter(_rank__lte=size + 1).order_by("_parent", *keyset.ordering):
        rows[row._parent].append(row)
    return {pk: connection_of(keyset, found, size) for pk, found in rows.items()}


def _order(field: str):
    return F(field[1:]).desc() if field.startswith("-") else F(field).asc()


def filtered(filterset_class, queryset, arguments: dict):
    """`queryset` narrowed by REST's FilterSet for the list: the same filters (`env_id` is `envId`), the same
    messages."""
    return valid_filterset(filterset_class, queryset, arguments).qs


def valid_filterset(filterset_class, queryset, arguments: dict):
    """REST's FilterSet for the list over `queryset`, given the field's arguments, checked (a GraphQL error
    naming each refused argument, in REST's words)."""
    data = {to_camel_case(name): plain(value) for name, value in arguments.items() if value is not None}
    filterset = filterset_class(data=data, queryset=queryset)
    # As REST's query check: an empty (or whitespace) text filter is refused, not read as no filter at all.
    problems = {name: [EMPTY] for name, value in data.items() if isinstance(value, str) and not value.strip()}
    if problems or not filterset.is_valid():
        invalid_arguments(problems | dict(filterset.errors))
    return filterset
