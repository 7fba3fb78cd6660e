"""Answers made of plain values, completed without resolving each field (docs/graphql.md, "Plain answers").

graphql-core completes a value field by field: per field a resolve info, the arguments, the resolver, then
`complete_value`, about 4 µs each. The services index page is 3,000 such fields over dicts that REST renders
as they are. For an object type whose fields only read their value (graphene's default or `source=` resolver:
a dict's key, else an attribute; no arguments, no `is_type_of`), that walk is a projection, and
`PlainExecutionContext` does it in one pass: graphql-core collects the fields (aliases, fragments, `@skip` and
`@include` with the variables, merged selections), then each value is read as graphene's resolver reads it and
serialized as graphql-core would serialize it. It goes column by column (a field of all the objects of a list
at once: a page's 50 entries, their 150 environments, the environments' 300 releases), so that the checks a
value must pass are made on a whole column at a time.

The answer is the same, byte for byte, as graphql-core's own completion (tests/graphql/test_plain.py): whenever
a value would make graphql-core do anything but serialize it (null in a non-null field, a value a scalar does
not serialize, an exception or Undefined, an awaitable, an iterable other than a list, a function the
`source=` resolver would call), the projection gives up on the whole value and graphql-core completes it, errors and
all. Only types that say their values are plain take this path (`Plain`, the connections of Plain nodes and
their page info), so a model instance's attributes are never read twice.
"""

import sys
import threading
import types
from collections import OrderedDict
from functools import partial
from itertools import chain
from operator import itemgetter

import graphene
import orjson
from graphene.types import field as graphene_field
from graphene.types.resolver import dict_or_attr_resolver
from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
)
from graphql.execution import ExecutionContext
from graphql.pyutils import UndefinedType
from graphql.type import is_leaf_type
from graphql.type.scalars import GRAPHQL_MAX_INT, GRAPHQL_MIN_INT

from controlplane.db import json_sql


class Plain(graphene.ObjectType):
    """An object type whose values are plain: dicts (or simple objects) whose keys are its fields' names, as
    `source=` names them. Its fields read their value and nothing else: no resolver of its own, no arguments."""

    class Meta:
        abstract = True


def plain_connection(connection_type: type[graphene.relay.Connection]) -> None:
    """Mark a connection of a Plain node (`controlplane.graphql.types.connection`) and its edge as plain: their
    values are `connection_of`'s dict and edges."""
    connection_type.plain_values = connection_type.Edge.plain_values = True


def _is_marked(graphene_type) -> bool:
    return isinstance(graphene_type, type) and (
        issubclass(graphene_type, Plain)
        or graphene_type is graphene.relay.PageInfo
        or graphene_type.__dict__.get("plain_values", False)
    )


class Rendered:
    """A plain object's answer written already: its JSON `text` (as the database writes it) and its keys, nested
    (`((key, its object's keys or None), …)`). Answered as its text when the document asks for exactly those keys,
    in that order, with no alias, `__typename` or directive changing them; otherwise as its values, as any plain
    dict is (graphql-core's own completion reads them too). Whoever makes one vouches that each value is one its
    field's type serializes as itself (overview.services_index.written checks the index's)."""

    __slots__ = ("_values", "keys", "text")

    def __init__(self, text: str, keys: tuple):
        self.text, self.keys, self._values = text, keys, None

    @property
    def values(self) -> dict:
        if self._values is None:
            self._values = orjson.loads(self.text)
        return self._values

    def __getattr__(self, name):  # graphene's default resolver reads an attribute of a value that is not a dict
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


class NotPlain(Exception):
    """A field whose value is not only read, or a type not marked plain."""


def reader(field) -> tuple[str, object]:
    """What a GraphQL field of a plain type reads, (name, default): graphene's default resolver (a dict's key,
    else an attribute) or its `source=` resolver; anything else is not plain."""
    resolve = field.resolve
    if field.args or not isinstance(resolve, partial) or resolve.keywords:
        raise NotPlain("a field with arguments or a resolver of its own")
    if resolve.func is dict_or_attr_resolver and len(resolve.args) == 2:
        return resolve.args
    if (
        resolve.func is graphene_field.source_resolver
        and len(resolve.args) == 1
        and graphene_field.default_resolver is dict_or_attr_resolver
    ):
        return resolve.args[0], None  # a function found there is called: left to graphql-core (_REFUSED)
    raise NotPlain("a field with a resolver of its own")


def check(graphql_type: GraphQLObjectType) -> None:
    """Raise NotPlain unless every field of `graphql_type` only reads its value."""
    if graphql_type.is_type_of is not None:
        raise NotPlain(f"{graphql_type.name} has is_type_of")
    for name, field in graphql_type.fields.items():
        try:
            reader(field)
        except NotPlain as exc:
            raise NotPlain(f"{graphql_type.name}.{name}: {exc}") from None


class _Unplain(Exception):
    """The projection gives up: graphql-core completes the value itself."""


# How a value is completed.
_STRING, _INT, _BOOLEAN, _ENUM, _TEXT, _LEAF, _LIST, _OBJECT, _TYPENAME = range(9)
_AS_ITSELF = {GraphQLString: _STRING, GraphQLID: _STRING, GraphQLInt: _INT, GraphQLBoolean: _BOOLEAN}
_STR, _INTEGER, _BOOL, _DICT, _SEQUENCES, _NULL = {str}, {int}, {bool}, {dict}, {list, tuple}, type(None)
_RENDERED = {Rendered}
# What graphql-core raises rather than completes (Undefined is a ValueError), and what graphene's source
# resolver calls.
_REFUSED = (Exception, types.FunctionType, types.MethodType)


def _in_int_range(low: int, high: int) -> bool:
    return low >= GRAPHQL_MIN_INT and high <= GRAPHQL_MAX_INT  # GraphQL's Int: 32 bits, signed


class _Plan:
    """An object type's selection: the response keys in order, and per key what to read and how to complete it.
    `as_read`: each key reads the key of its own name (no alias, no `__typename`), so a dict with exactly these
    keys, in this order, whose values complete as themselves, is its own answer."""

    __slots__ = ("as_read", "fields", "key_list", "keys", "tree")

    def __init__(self, keys: tuple, fields: tuple):
        self.keys, self.fields, self.key_list = keys, fields, list(keys)
        self.as_read = all(key == attname for key, (attname, *_) in zip(keys, fields, strict=True)) and not any(
            completion[1] == _TYPENAME for *_, completion in fields
        )
        # Its keys nested as Rendered's are, when every object under it is read as it is; else None.
        trees = [_tree(completion) for *_, completion in fields]
        self.tree = tuple(zip(keys, trees, strict=True)) if self.as_read and False not in trees else None


def _tree(completion: tuple):
    """The keys nested under a completion: its plan's tree for an object (False when it has none), None for a leaf."""
    kind, detail = completion[1:]
    if kind == _LIST:
        return _tree(detail)
    if kind == _OBJECT:
        return False if detail.tree is None else detail.tree
    return None


_SHARED_PLANS: OrderedDict = OrderedDict()  # (type, ids of field nodes, variables) -> (_Plan or None, the nodes)
_SHARED_PLANS_KEPT = 1024
_SHARED_LOCK = threading.Lock()


class PlainExecutionContext(ExecutionContext):
    """graphql-core's execution, with values of plain types completed in one pass (see the module)."""

    _marked: dict = {}  # GraphQLObjectType -> whether it is marked plain and its fields only read

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._plans: dict = {}  # (type, ids of field nodes) -> _Plan, or None when it cannot be projected
        self._enums: dict = {}  # enum type -> {value: serialized}
        try:  # what keeps this request's plans apart from other variables' (_SHARED_PLANS)
            self._variables_key = orjson.dumps(self.variable_values, option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONEncodeError, TypeError):
            self._variables_key = None  # values JSON does not hold: plans kept for this request only

    def complete_object_value(self, return_type, field_nodes, info, path, result):
        if not (self.middleware_manager and self.middleware_manager.middlewares) and self._is_plain(return_type):
            plan = self._plan(return_type, field_nodes)
            if plan is not None:
                try:
                    return self._objects(plan, [result], {type(result)})[0]
                except _Unplain:
                    pass
        return super().complete_object_value(return_type, field_nodes, info, path, result)

    @classmethod
    def _is_plain(cls, graphql_type) -> bool:
        known = cls._marked.get(graphql_type)
        if known is None:
            known = isinstance(graphql_type, GraphQLObjectType) and _is_marked(
                getattr(graphql_type, "graphene_type", None)
            )
            if known:
                try:
                    check(graphql_type)
                except NotPlain:
                    known = False
            cls._marked[graphql_type] = known
        return known

    # --- the plan: per object type and selection, what to read and how to complete it ---

    def _plan(self, object_type: GraphQLObjectType, field_nodes) -> _Plan | None:
        key = (object_type, *map(id, field_nodes))
        try:
            return self._plans[key]
        except KeyError:
            pass
        # Kept across requests too: a document's text is parsed once (GraphQLView), so the same text asks with
        # the same nodes; the key holds the variables, which @skip and @include read, and the entry the nodes,
        # so that no other node takes one of their ids while the plan is kept.
        shared = None if self._variables_key is None else (*key, self._variables_key)
        kept = _SHARED_PLANS.get(shared) if shared is not None else None
        if kept is not None:
            plan = kept[0]
        else:
            try:
                plan = self._compile(object_type, field_nodes)
            except NotPlain:
                plan = None
            if shared is not None:
                with _SHARED_LOCK:
                    _SHARED_PLANS[shared] = (plan, tuple(field_nodes))
                    while len(_SHARED_PLANS) > _SHARED_PLANS_KEPT:
                        _SHARED_PLANS.popitem(last=False)
        self._plans[key] = plan
        return plan

    def _compile(self, object_type: GraphQLObjectType, field_nodes) -> _Plan:
        keys, fields = [], []
        for response_key, nodes in self.collect_subfields(object_type, field_nodes).items():
            name = nodes[0].name.value
            if name in ("__schema", "__type") and object_type is self.schema.query_type:
                raise NotPlain("introspection")
            if name == "__typename":
                keys.append(response_key)
                fields.append((object_type.name, None, None, (False, _TYPENAME, None)))
                continue
            field = object_type.fields.get(name)
            if field is None:  # graphql-core leaves it out (validation refuses it first)
                continue
            attname, default = reader(field)
            keys.append(sys.intern(response_key))  # compared with a source's own keys, most often the same string
            fields.append((attname, default, itemgetter(attname), self._completion(field.type, nodes)))
        return _Plan(tuple(keys), tuple(fields))

    def _completion(self, graphql_type, nodes) -> tuple:
        """(nullable, kind, detail) for a value of `graphql_type`."""
        nullable = not isinstance(graphql_type, GraphQLNonNull)
        if not nullable:
            graphql_type = graphql_type.of_type
        if isinstance(graphql_type, GraphQLList):
            return nullable, _LIST, self._completion(graphql_type.of_type, nodes)
        if isinstance(graphql_type, GraphQLEnumType):
            return nullable, _ENUM, graphql_type
        if is_leaf_type(graphql_type):
            if getattr(getattr(graphql_type, "graphene_type", None), "strings_as_they_are", False):
                return nullable, _TEXT, graphql_type  # a custom scalar whose serialize gives a string back
            return nullable, _AS_ITSELF.get(graphql_type, _LEAF), graphql_type
        if isinstance(graphql_type, GraphQLObjectType) and self._is_plain(graphql_type):
            plan = self._plan(graphql_type, nodes)
            if plan is not None:
                return nullable, _OBJECT, plan
        raise NotPlain(f"{graphql_type} is not a plain object type")

    # --- the projection, column by column ---

    def _objects(self, plan: _Plan, sources: list, found: set) -> list:
        """`sources`, objects of one type whose types are `found`, each completed by `plan`: `sources` itself when
        each is its own answer (the index's entries are, for a document that asks for them as REST renders them)."""
        if found == _RENDERED:
            shapes = {id(source.keys): source.keys for source in sources}.values()  # one, compared once
            if plan.tree is not None and all(keys == plan.tree for keys in shapes):
                return [orjson.Fragment(source.text) for source in sources]  # asked for exactly what it holds
            sources, found = orjson.loads(json_sql.array(s.text for s in sources)), _DICT
        dicts = found <= _DICT
        if not dicts:
            for source in sources:
                if not isinstance(source, dict) and (isinstance(source, _REFUSED) or self.is_awaitable(source)):
                    raise _Unplain
        if not plan.fields:
            return [{} for _ in sources]
        columns, as_read = [], plan.as_read and dicts
        for attname, default, item, completion in plan.fields:
            if completion[1] == _TYPENAME:
                columns.append([attname] * len(sources))
                continue
            # As graphene's default resolver reads: a dict's key (the default when it is missing), else an attribute.
            if dicts:
                try:
                    values = list(map(item, sources))
                except KeyError:
                    values = [source.get(attname, default) for source in sources]
            else:
                values = [
                    s.get(attname, default) if isinstance(s, dict) else getattr(s, attname, default) for s in sources
                ]
            completed = self._column(completion, values)
            as_read = as_read and completed is values
            columns.append(completed)
        # Each source has the plan's keys in the plan's order when, all its keys strung together, they are the
        # plan's keys over and over (no dict holds a key twice); in one pass rather than one per source. (And
        # they are str itself: the response encoder takes no other key.)
        if as_read:
            keys = list(chain.from_iterable(sources))
            if keys == plan.key_list * len(sources) and set(map(type, keys)) <= _STR:
                return sources
        results = [{} for _ in sources]
        for key, column in zip(plan.keys, columns, strict=True):
            for result, value in zip(results, column, strict=True):
                result[key] = value
        return results

    def _column(self, completion: tuple, values: list) -> list:
        """`values` of one field (or the items of one list field), completed together: `values` itself when each
        completes as itself. Nulls stay null where the type allows them; the others are completed as a column."""
        found = set(map(type, values))
        if _NULL in found:
            if not completion[0]:
                raise _Unplain  # graphql-core's "Cannot return null for non-nullable field"
            present = [value for value in values if value is not None]
            done = self._present(completion, present, found - {_NULL})
            if done is present:
                return values
            done = iter(done)
            return [None if value is None else next(done) for value in values]
        return self._present(completion, values, found)

    def _present(self, completion: tuple, values: list, found: set) -> list:
        """`values`, none of them null, whose types are `found`, completed: checked a column at a time."""
        kind, detail = completion[1:]
        if kind == _OBJECT:
            return self._objects(detail, values, found)
        if kind == _LIST:
            if not found <= _SEQUENCES:  # graphql-core takes other iterables too: its own path
                raise _Unplain
            items = [item for value in values for item in value]
            completed = self._column(detail, items)
            if completed is items and found <= {list}:
                return values
            done, start = [], 0
            for value in values:
                done.append(completed[start : start + len(value)])
                start += len(value)
            return done
        if kind in (_STRING, _TEXT) and found <= _STR:
            return values
        if kind == _INT and found <= _INTEGER and (not values or _in_int_range(min(values), max(values))):
            return values
        if kind == _BOOLEAN and found <= _BOOL:
            return values
        if kind == _ENUM and found <= _STR:  # the page's 300 release statuses are a handful of values
            known = self._enums.setdefault(detail, {})
            distinct = set(values)
            for value in distinct.difference(known):
                known[value] = self._serialized(detail, value)
            if all(type(known[value]) is str and known[value] == value for value in distinct):
                return values  # the domain's words are the enum's names (controlplane.graphql.types.enum_of)
            return list(map(known.__getitem__, values))
        if kind == _LEAF and found <= _STR:  # a custom scalar: its serialize, as graphql-core calls it
            try:
                serialized = list(map(detail.serialize, values))
            except Exception:
                raise _Unplain from None
            found = set(map(type, serialized))
            if found <= _STR:
                return values if serialized == values else serialized
            if _NULL in found or UndefinedType in found:  # graphql-core refuses a null serialization
                raise _Unplain
            return serialized
        return [self._value(completion, value) for value in values]

    def _value(self, completion: tuple, value):
        """One leaf (not null) that its column's check did not pass."""
        kind, detail = completion[1:]
        if isinstance(value, _REFUSED):
            raise _Unplain
        value_type = type(value)
        if kind == _STRING and value_type is str:
            return value
        if kind == _INT and value_type is int and _in_int_range(value, value):
            return value
        if kind == _BOOLEAN and value_type is bool:
            return value
        if kind in (_ENUM, _TEXT, _LEAF):
            return self._serialized(detail, value)
        raise _Unplain  # graphql-core's serialize would convert it, or refuse it

    def _serialized(self, leaf_type, value):
        """`leaf_type.serialize(value)`, as graphql-core's complete_leaf_value calls it."""
        if type(value) is not str and self.is_awaitable(value):
            raise _Unplain
        try:
            serialized = leaf_type.serialize(value)
        except Exception:
            raise _Unplain from None
        if serialized is None or isinstance(serialized, UndefinedType):
            raise _Unplain
        return serialized
