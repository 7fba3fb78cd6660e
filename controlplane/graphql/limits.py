"""Limits on what one GraphQL document may ask (docs/graphql.md), checked before anything runs, each
refused with a message that names the limit and its setting:

- depth: fields nested in fields (CONTROLPLANE_GRAPHQL_MAX_DEPTH);
- cost: every field counts once for each object it may be resolved on, so a list's `first` (or `last`)
  multiplies what is under it, a connection without `first` counts its default page, and each alias counts
  on its own; a field that computes rather than reads counts as its weight (`weigh`)
  (CONTROLPLANE_GRAPHQL_MAX_COST);
- size: the document's bytes (CONTROLPLANE_GRAPHQL_MAX_DOCUMENT_BYTES, checked by the view).

The document is measured against the schema's types, so a field is what its type says wherever it is
written: a connection is a connection inside an inline or named fragment too.

Introspection (`__schema`, `__type`) counts towards the cost, not the depth: GraphiQL's own query nests a
type reference eight deep, but a document that repeats it under aliases asked for as much as it liked of a
schema that is the same on every request (GraphQL's own rule refuses `fields { type { fields … } } }` nested
three deep). Its lists count the schema's own average lengths (a type's fields, a field's arguments), which
makes the standard introspection query's cost the number of values in its answer; `__type(name:)` counts
the lists of the type it names.
"""

import functools
import math
from dataclasses import dataclass

from django.conf import settings
from graphql import (
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    GraphQLWrappingType,
    get_named_type,
)
from graphql.execution.values import get_variable_values
from graphql.language import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    VariableNode,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef

INTROSPECTION_ROOTS = {"__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef}
# Fields that compute rather than read, by (type, field name): each counts as this many fields.
WEIGHTS: dict[tuple[str, str], int] = {}


def weigh(type_name: str, field_name: str, weight: int) -> None:
    """Let `type_name.field_name` count as `weight` fields wherever it is asked (an app declares it with the
    field: `Environment.policy` runs a policy decision, its queries and Cedar's, for each environment)."""
    WEIGHTS[(type_name, field_name)] = weight


@dataclass
class Measure:
    cost: int = 0
    depth: int = 0


class Measuring:
    """One operation's walk: `fragments` by name, `variables` as execution will see them. Each fragment is
    measured once per place kind (data or introspection) and scaled where it is spread: expanding it at every
    spread would take time exponential in a document of fragments that each spread the next twice. A fragment
    cycle is left to GraphQL's own NoFragmentCycles rule."""

    def __init__(self, schema: GraphQLSchema, fragments: dict, variables: dict):
        self.schema, self.fragments, self.variables = schema, fragments, variables
        self.known: dict[tuple, Measure] = {}

    def measure(
        self, selection_set, parent, multiplier=1, depth=0, seen=frozenset(), introspection=False, described=None
    ) -> Measure:
        """`described`: the type a `__type(name:)` just above describes, whose own lists are then counted."""
        result = Measure(depth=depth)
        for selection in selection_set.selections if selection_set else ():
            inner = None
            if isinstance(selection, FieldNode):
                definition = _field(parent, selection.name.value)
                result.cost += multiplier * WEIGHTS.get((getattr(parent, "name", None), selection.name.value), 1)
                inside = introspection or selection.name.value in INTROSPECTION_ROOTS
                if not inside:  # introspection counts towards the cost only
                    result.depth = max(result.depth, depth + 1)
                if selection.selection_set and definition is not None:
                    if inside:
                        many = multiplier * _listed(self.schema, parent, selection.name.value, described)
                    else:
                        many = multiplier * self.many(selection, definition)
                    below = depth if inside else depth + 1
                    field_type = get_named_type(definition.type)
                    named = self.named(selection) if selection.name.value == "__type" else None
                    inner = self.measure(selection.selection_set, field_type, many, below, seen, inside, named)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                on = self.schema.get_type(condition.name.value) if condition else parent
                if on is not None:
                    inner = self.measure(selection.selection_set, on, multiplier, depth, seen, introspection, described)
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.spread(selection.name.value, multiplier, depth, seen, introspection, described)
            if inner is not None:
                result.cost += inner.cost
                result.depth = max(result.depth, inner.depth)
        return result

    def spread(self, name: str, multiplier, depth: int, seen, introspection: bool, described) -> Measure | None:
        fragment = self.fragments.get(name)
        on = self.schema.get_type(fragment.type_condition.name.value) if fragment is not None else None
        if on is None or name in seen:
            return None
        key = (name, introspection, getattr(described, "name", None))
        if key not in self.known:  # at multiplier 1 and depth 0: cost scales with the one, depth adds the other
            self.known[key] = self.measure(fragment.selection_set, on, 1, 0, seen | {name}, introspection, described)
        known = self.known[key]
        return Measure(cost=known.cost * multiplier, depth=depth + known.depth)

    def named(self, node: FieldNode):
        """The type `__type(name: …)` describes, when the schema has it."""
        for argument in node.arguments or ():
            if argument.name.value == "name":
                value = argument.value
                name = (
                    self.variables.get(value.name.value)
                    if isinstance(value, VariableNode)
                    else getattr(value, "value", None)
                )
                return self.schema.get_type(name) if isinstance(name, str) else None
        return None

    def many(self, node: FieldNode, definition) -> int:
        """How many objects a field may give: its `first` or `last`, the page size for a connection without one."""
        for argument in node.arguments or ():
            if argument.name.value in ("first", "last"):
                value = argument.value
                if isinstance(value, IntValueNode):
                    return max(int(value.value), 1)
                if isinstance(value, VariableNode):
                    given = self.variables.get(value.name.value)
                    return given if isinstance(given, int) and given > 0 else settings.API_PAGE_SIZE
        named = get_named_type(definition.type)
        is_connection = isinstance(named, GraphQLObjectType) and "edges" in named.fields
        return settings.API_PAGE_SIZE if is_connection else 1


def measure(schema: GraphQLSchema, operation, fragments: dict, variables: dict) -> Measure:
    """The cost and depth of an operation (its definition node), fragments expanded."""
    root = schema.get_root_type(operation.operation)
    found = Measuring(schema, fragments, variables).measure(operation.selection_set, root)
    return Measure(cost=math.ceil(found.cost), depth=found.depth)  # introspection's averages are fractions


def _field(parent, name: str):
    """The definition of field `name` on `parent`, the introspection fields included; None when unknown (the
    document is then refused by GraphQL's own validation)."""
    if name == "__typename":
        return TypeNameMetaFieldDef
    if name in INTROSPECTION_ROOTS:
        return INTROSPECTION_ROOTS[name]
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return parent.fields.get(name)
    return None


def _listed(schema: GraphQLSchema, parent, name: str, described=None) -> float:
    """How many objects an introspection field gives: for a list, the described type's own length when it is
    known (`__type(name:)`), else the schema's average; otherwise one."""
    key = (getattr(parent, "name", None), name)
    if described is not None and key in _OWN_LISTS:
        return len(getattr(described, _OWN_LISTS[key], None) or ())
    return _introspection_lists(schema).get(key, 1)


# A `__Type`'s lists, as the attributes of the type it describes.
_OWN_LISTS = {
    ("__Type", "fields"): "fields",
    ("__Type", "inputFields"): "fields",
    ("__Type", "enumValues"): "values",
    ("__Type", "interfaces"): "interfaces",
    ("__Type", "possibleTypes"): "types",
}


@functools.cache
def _introspection_lists(schema: GraphQLSchema) -> dict[tuple[str, str], int]:
    """Each introspection list's average length in this schema, rounded up, by (type, field)."""
    types = list(schema.type_map.values())
    fielded = [t for t in types if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)]
    fields = [f for t in fielded for f in t.fields.values()]
    directives = list(schema.directives)
    inputs = [f for t in types if isinstance(t, GraphQLInputObjectType) for f in t.fields.values()]
    arguments = [a for f in fields for a in f.args.values()] + [a for d in directives for a in d.args.values()]
    # A type reference (`[String!]!`) is a chain of wrappers ending in a named type: `ofType` gives one object
    # for each wrapper, none for the named type at the end.
    wrappers = [_wrappers(r.type) for r in fields + inputs + arguments]

    def average(total: int, over: int) -> float:
        return total / over if over else 0

    return {
        ("__Schema", "types"): len(types),
        ("__Schema", "directives"): len(directives),
        ("__Type", "fields"): average(len(fields), len(types)),
        ("__Type", "inputFields"): average(
            sum(len(t.fields) for t in types if isinstance(t, GraphQLInputObjectType)), len(types)
        ),
        ("__Type", "enumValues"): average(sum(len(getattr(t, "values", None) or ()) for t in types), len(types)),
        ("__Type", "interfaces"): average(sum(len(getattr(t, "interfaces", ())) for t in fielded), len(types)),
        ("__Type", "possibleTypes"): average(
            sum(len(t.types) for t in types if isinstance(t, GraphQLUnionType)), len(types)
        ),
        ("__Field", "args"): average(sum(len(f.args) for f in fields), len(fields)),
        ("__Directive", "args"): average(sum(len(d.args) for d in directives), len(directives)),
        ("__Type", "ofType"): average(sum(wrappers), sum(wrappers) + len(wrappers)),
    }


def _wrappers(reference) -> int:
    count = 0
    while isinstance(reference, GraphQLWrappingType):
        reference, count = reference.of_type, count + 1
    return count


def refusals(schema: GraphQLSchema, document, variables: dict | None, runs=None) -> list[GraphQLError]:
    """The document's operations deeper than GRAPHQL_MAX_DEPTH or costlier than GRAPHQL_MAX_COST, refused:
    `runs`, the operation that will run, when there is one; else (no operation named in a document of
    several, or a name none has: execution refuses it) each of them. Read from the operations' nodes, not by
    a validation rule: a rule's visit of every node of the document cost the services index page 0.3 ms."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    errors = []
    for node in document.definitions:
        if not isinstance(node, OperationDefinitionNode) or (runs is not None and node is not runs):
            continue  # another operation of the document (GraphiQL sends the editor's whole text): never run
        if schema.get_root_type(node.operation) is None:
            continue  # refused by GraphQL's own validation (a subscription: this schema has none)
        # As execution will see them: a variable's default stands in when it is not sent, and 500.0 is 500.
        coerced = get_variable_values(schema, node.variable_definitions or (), variables or {})
        found = measure(schema, node, fragments, coerced if isinstance(coerced, dict) else {})
        name = f"operation '{node.name.value}'" if node.name else "the operation"
        if found.depth > settings.GRAPHQL_MAX_DEPTH:
            message = (
                f"{name} nests fields {found.depth} deep, more than the limit of {settings.GRAPHQL_MAX_DEPTH} "
                "(CONTROLPLANE_GRAPHQL_MAX_DEPTH)."
            )
            errors.append(GraphQLError(message, node, extensions={"code": "LIMIT"}))
        if found.cost > settings.GRAPHQL_MAX_COST:
            message = (
                f"{name} costs {found.cost}, more than the limit of {settings.GRAPHQL_MAX_COST} "
                "(CONTROLPLANE_GRAPHQL_MAX_COST): ask for fewer objects (a smaller first) or fewer fields."
            )
            errors.append(GraphQLError(message, node, extensions={"code": "LIMIT"}))
    return errors
