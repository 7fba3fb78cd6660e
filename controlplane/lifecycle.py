"""One way to move a StatusMachine: a compare-and-swap on its status, so racing requests cannot both win."""

from django.db import IntegrityError, transaction

from controlplane.errors import Conflict
from controlplane.models import StatusMachine


class TransitionRefused(Conflict):
    pass


def move(obj: StatusMachine, target: str, *, on_integrity_error: str = "", **changes) -> StatusMachine:
    """Move `obj` to `target` from the one state that leads there, setting `changes` with it."""
    model = type(obj)
    sources = [state for state, targets in model.TRANSITIONS.items() if target in targets]
    try:
        with transaction.atomic():
            moved = model.objects.filter(pk=obj.pk, status__in=sources).update(status=target, **changes)
    except IntegrityError:
        # A uniqueness rule on the target state (one Promoting release per environment, say).
        raise TransitionRefused(on_integrity_error or f"{obj} cannot move to {target} now.") from None
    if not moved:
        current = model.objects.filter(pk=obj.pk).values_list("status", flat=True).first()
        raise TransitionRefused(obj.transition_refusal(current, target))
    obj.refresh_from_db()
    return obj
