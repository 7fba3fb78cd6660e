"""Limits on what one GraphQL document may ask (docs/graphql.md), checked before anything runs, each
refused with a message that names the limit and its setting:

- depth: fields nested in fields (CONTROLPLANE_GRAPHQL_MAX_DEPTH);
- cost: every field counts once for each object it may be resolved on, so a list's `first` (or `last`)
  multiplies what is under it, a connection without `first` counts its default page, and each alias counts
  on its own (CONTROLPLANE_GRAPHQL_MAX_COST);
- size: the document's bytes (CONTROLPLANE_GRAPHQL_MAX_DOCUMENT_BYTES, checked by the view).

Introspection (`__schema`, `__type`) is not counted: GraphiQL's own query is deep, and it reads no data.
"""

from dataclasses import dataclass

from django.conf import settings
from graphql import GraphQLError, ValidationRule
from graphql.execution.values import get_variable_values
from graphql.language import FieldNode, FragmentSpreadNode, InlineFragmentNode, IntValueNode, VariableNode


@dataclass
class Measure:
    cost: int = 0
    depth: int = 0


def measure(
    selection_set, fragments: dict, variables: dict, multiplier: int = 1, depth: int = 0, seen=frozenset(), known=None
):
    """The cost and depth of a selection set, fragments expanded (a fragment cycle is left to GraphQL's own
    NoFragmentCycles rule). Each fragment is measured once (`known`) and scaled where it is spread: expanding
    it at every spread would take time exponential in a document of fragments that each spread the next twice."""
    known = {} if known is None else known
    result = Measure(depth=depth)
    for selection in selection_set.selections if selection_set else ():
        inner = None
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue
            result.cost += multiplier
            result.depth = max(result.depth, depth + 1)
            if selection.selection_set:
                many = multiplier * _many(selection, variables)
                inner = measure(selection.selection_set, fragments, variables, many, depth + 1, seen, known)
        elif isinstance(selection, InlineFragmentNode):
            inner = measure(selection.selection_set, fragments, variables, multiplier, depth, seen, known)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                if name not in known:  # at multiplier 1 and depth 0: cost scales with the one, depth adds the other
                    known[name] = measure(
                        fragments[name].selection_set, fragments, variables, 1, 0, seen | {name}, known
                    )
                inner = Measure(cost=known[name].cost * multiplier, depth=depth + known[name].depth)
        if inner is not None:
            result.cost += inner.cost
            result.depth = max(result.depth, inner.depth)
    return result


def _many(field: FieldNode, variables: dict) -> int:
    """How many objects a field may give: its `first` or `last`, the page size for a connection without one."""
    for argument in field.arguments or ():
        if argument.name.value in ("first", "last"):
            value = argument.value
            if isinstance(value, IntValueNode):
                return max(int(value.value), 1)
            if isinstance(value, VariableNode):
                given = variables.get(value.name.value)
                return given if isinstance(given, int) and given > 0 else settings.API_PAGE_SIZE
    is_connection = any(isinstance(s, FieldNode) and s.name.value == "edges" for s in field.selection_set.selections)
    return settings.API_PAGE_SIZE if is_connection else 1


def limits(variables: dict | None) -> type[ValidationRule]:
    """A validation rule refusing an operation deeper than GRAPHQL_MAX_DEPTH or costlier than GRAPHQL_MAX_COST."""

    class Limits(ValidationRule):
        def enter_operation_definition(self, node, *_):
            definitions = self.context.document.definitions
            fragments = {d.name.value: d for d in definitions if hasattr(d, "type_condition")}
            # As execution will see them: a variable's default stands in when it is not sent, and 500.0 is 500.
            coerced = get_variable_values(self.context.schema, node.variable_definitions or (), variables or {})
            found = measure(node.selection_set, fragments, coerced if isinstance(coerced, dict) else {})
            name = f"operation '{node.name.value}'" if node.name else "the operation"
            if found.depth > settings.GRAPHQL_MAX_DEPTH:
                self._refuse(
                    node,
                    f"{name} nests fields {found.depth} deep, more than the limit of {settings.GRAPHQL_MAX_DEPTH} "
                    "(CONTROLPLANE_GRAPHQL_MAX_DEPTH).",
                )
            if found.cost > settings.GRAPHQL_MAX_COST:
                self._refuse(
                    node,
                    f"{name} costs {found.cost}, more than the limit of {settings.GRAPHQL_MAX_COST} "
                    "(CONTROLPLANE_GRAPHQL_MAX_COST): ask for fewer objects (a smaller first) or fewer fields.",
                )

        def _refuse(self, node, message: str):
            self.report_error(GraphQLError(message, node, extensions={"code": "LIMIT"}))

    return Limits
