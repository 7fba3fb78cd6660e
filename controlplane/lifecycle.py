"""One way to move a StatusMachine: a compare-and-swap on its status field, so racing parties cannot both win.

The move and its `action_performed` signal (which the audit trail records) share one transaction. A move
without an action (a workflow run's, which is not audited row by row) sends no signal.
"""

from django.db import IntegrityError, transaction

from controlplane.errors import RACE, Conflict, is_race
from controlplane.models import StatusMachine
from controlplane.signals import action_performed


class TransitionRefused(Conflict):
    pass


def move(
    obj: StatusMachine,
    target: str,
    *,
    action: str | None,
    details: dict | None = None,
    on_integrity_error: str = "",
    **changes,
) -> StatusMachine:
    """Move `obj` to `target` from a state that leads there, setting `changes` with it, as `action`
    (recorded with `details`; `None` records nothing)."""
    model = type(obj)
    field = model.STATUS_FIELD
    sources = [state for state, targets in model.TRANSITIONS.items() if target in targets]
    with transaction.atomic():
        for source in sources:
            try:
                with transaction.atomic():
                    moved = model.objects.filter(pk=obj.pk, **{field: source}).update(**{field: target}, **changes)
            except IntegrityError as e:
                if not is_race(e):
                    raise  # a rule validation missed: a bug, not a conflict
                # A uniqueness rule on the target state (one Promoting release per environment, say).
                raise TransitionRefused(on_integrity_error or RACE) from None
            if moved:
                break
        else:
            current = model.objects.filter(pk=obj.pk).values_list(field, flat=True).first()
            raise TransitionRefused(obj.transition_refusal(current, target))
        obj.refresh_from_db()
        if action is not None:
            metadata = {"from": source, "to": target, **(details or {})}
            action_performed.send(sender=model, instance=obj, action=action, metadata=metadata)
    return obj
