"""Limits on what one GraphQL document may ask (docs/graphql.md, settings GRAPHQL_*): its depth, and its
cost, which counts every field once for each object it may be resolved on, so `first` multiplies what
is under it and each alias counts on its own. Checked before anything runs, with a message that names
the limit and its setting."""

from django.conf import settings
from graphql import GraphQLError, ValidationRule
from graphql.language import FieldNode, FragmentSpreadNode, InlineFragmentNode, IntValueNode, VariableNode

COST_SETTING = "CONTROLPLANE_GRAPHQL_MAX_COST"


def cost_of(selection_set, fragments, variables, multiplier: int = 1, seen: frozenset = frozenset()) -> int:
    total = 0
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            total += multiplier
            if selection.selection_set:
                inner = multiplier * _first(selection, variables)
                total += cost_of(selection.selection_set, fragments, variables, inner, seen)
        elif isinstance(selection, InlineFragmentNode):
            total += cost_of(selection.selection_set, fragments, variables, multiplier, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:  # a cycle is the validator's NoFragmentCycles error
                total += cost_of(fragments[name].selection_set, fragments, variables, multiplier, seen | {name})
    return total


def _first(field: FieldNode, variables: dict) -> int:
    """How many objects a list field's `first` (or `last`) asks for: the page size when not given."""
    for argument in field.arguments or ():
        if argument.name.value in ("first", "last"):
            value = argument.value
            if isinstance(value, IntValueNode):
                return max(int(value.value), 1)
            if isinstance(value, VariableNode):
                given = (variables or {}).get(value.name.value)
                return given if isinstance(given, int) and given > 0 else settings.API_PAGE_SIZE
    return settings.API_PAGE_SIZE if _is_connection(field) else 1


def _is_connection(field: FieldNode) -> bool:
    return any(
        isinstance(s, FieldNode) and s.name.value in ("edges", "pageInfo") for s in field.selection_set.selections
    )


def cost_limit(variables: dict | None):
    """A validation rule refusing operations that cost more than settings.GRAPHQL_MAX_COST."""

    class CostLimit(ValidationRule):
        def enter_operation_definition(self, node, *_):
            fragments = {f.name.value: f for f in self.context.document.definitions if hasattr(f, "type_condition")}
            cost = cost_of(node.selection_set, fragments, variables)
            limit = settings.GRAPHQL_MAX_COST
            if cost > limit:
                name = f"'{node.name.value}'" if node.name else "The operation"
                self.report_error(
                    GraphQLError(
                        f"{name} costs {cost}, more than the limit of {limit} ({COST_SETTING}): ask for fewer "
                        "objects (a smaller `first`) or fewer fields.",
                        node,
                        extensions={"code": "LIMIT"},
                    )
                )

    return CostLimit
