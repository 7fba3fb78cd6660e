"""The audit writer: one event per change of a domain entity, in the change's own transaction.

- saves of services, environments, releases, incidents, change windows and freezes: `<noun>.create`,
  `.update` (with the changed fields), `.archive`, `.restore` (`changewindow.create`, `freeze.update`, ...);
- linking services and environments, from either side: `service.link` / `service.unlink`;
- domain actions, which change state with `QuerySet.update()` and so send no save signal, announce
  themselves with `controlplane.signals.action_performed` (`deploy.create`, `release.activate`, ...);
- a fixture load (`controlplane.signals.fixture_loaded`) is one `fixture.load` event; its objects are a restore.

Workflow runs and their logs are not audited row by row: they are the record of a deploy or promotion,
whose start and end the actions above record.
"""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from audit import mirror
from audit.api import AuditEventSerializer
from audit.models import AuditEvent
from controlplane.identity.context import current_actor
from controlplane.signals import action_performed, fixture_loaded
from incidents.models import Incident
from integrations import outbox
from releases.models import Release, WorkflowRun
from services.models import ChangeWindow, Environment, Freeze, Service

AUDITED = (Service, Environment, Release, Incident, ChangeWindow, Freeze)
# What identifies a subject beyond its id, repeated in every event about it (the RFC's example shape).
CONTEXT_FIELDS = {Release: ("service_id", "environment_id", "sha", "version"), Incident: ("service_id", "severity")}
API_NAMES = {"environment_id": "envId", "deployment_adapters": "adapters"}
# Derived columns (which release is current, an environment's place in promotion order) are not part of what
# was written: the activation records them; promotion order follows from the fields recorded.
NOT_RECORDED = {"id", "created_at", "archived_at", "is_current", "superseded_by_id", "superseded_at", "promotion_rank"}


def api_name(attname: str) -> str:
    if attname in API_NAMES:
        return API_NAMES[attname]
    head, *rest = attname.split("_")
    return head + "".join(part.title() for part in rest)


def jsonable(value):
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def record(
    action: str, subject_type: str, subject_id: str, metadata: dict, service_id: str = "", subject=None
) -> AuditEvent:
    event = AuditEvent(
        actor=current_actor(),
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        service_id=service_id,
        metadata=jsonable(metadata),
    )
    event.save()
    # Webhooks out: the deliveries it owes are written in this transaction too (integrations.outbox).
    outbox.enqueue(
        action,
        lambda: AuditEventSerializer(event).data,
        lambda: {"type": subject_type, "id": subject_id, **(_fields(subject) if type(subject) in AUDITED else {})},
    )
    # robust: should the mirror ever raise, Django logs it; a committed change never becomes an error answer.
    # (A lambda, not functools.partial: Django names the failed callback by its __qualname__.)
    transaction.on_commit(lambda: mirror.mirror_quietly(event), robust=True)
    return event


def _service_of(instance) -> str:
    if isinstance(instance, WorkflowRun):
        return instance.release.service_id
    return instance.pk if isinstance(instance, Service) else getattr(instance, "service_id", "")


def _context(instance) -> dict:
    return {api_name(name): getattr(instance, name) for name in CONTEXT_FIELDS.get(type(instance), ())}


def _fields(instance) -> dict:
    return {
        api_name(f.attname): getattr(instance, f.attname)
        for f in instance._meta.concrete_fields
        if f.attname not in NOT_RECORDED
    }


def _changes(instance) -> dict:
    changes = {}
    for f in instance._meta.concrete_fields:
        before, after = instance.stored(f.attname), getattr(instance, f.attname)
        if before != after:
            changes[api_name(f.attname)] = [before, after]
    return changes


def on_save(sender, instance, created, raw, **kwargs):
    if raw:
        return  # a restore: recorded once, as fixture.load
    noun = sender._meta.model_name
    if created:
        record(f"{noun}.create", sender.__name__, instance.pk, _fields(instance), _service_of(instance), instance)
        return
    changes = _changes(instance)
    if not changes:
        return  # saved without a change: nothing happened
    verb = "update"
    if set(changes) == {"archivedAt"}:
        verb = "archive" if instance.archived_at else "restore"
    metadata = {**_context(instance), "changes": changes}
    record(f"{noun}.{verb}", sender.__name__, instance.pk, metadata, _service_of(instance), instance)


def on_delete(sender, instance, **kwargs):
    # Every domain model refuses deletion today; should a path ever get through, it is still recorded.
    record(f"{sender._meta.model_name}.delete", sender.__name__, instance.pk, _fields(instance), _service_of(instance))


def on_environment_links(sender, instance, action, reverse, pk_set, **kwargs):
    if instance.restoring:
        return  # a fixture setting the links of the object it restores
    if action == "pre_clear":
        related = instance.services if reverse else instance.environments
        instance._audit_clearing = set(related.values_list("pk", flat=True))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if action == "post_clear":
        pk_set = instance.__dict__.pop("_audit_clearing", set())
    if not pk_set:
        return  # nothing was actually linked or unlinked
    verb = "link" if action == "post_add" else "unlink"
    if reverse:  # environment.services.add(...): one event per service whose environments changed
        for service_id in sorted(pk_set):
            record(f"service.{verb}", "Service", service_id, {"environments": [instance.pk]}, service_id)
    else:
        record(f"service.{verb}", "Service", instance.pk, {"environments": sorted(pk_set)}, instance.pk)


def on_action(sender, instance, action, metadata, **kwargs):
    record(action, sender.__name__, instance.pk, {**_context(instance), **metadata}, _service_of(instance), instance)


def on_fixture(sender, fixtures, objects, **kwargs):
    record("fixture.load", "Fixture", ",".join(fixtures)[:100], {"fixtures": fixtures, "objects": objects})


RECEIVERS = [
    *((post_save, on_save, model, f"audit.save.{model.__name__}") for model in AUDITED),
    *((post_delete, on_delete, model, f"audit.delete.{model.__name__}") for model in AUDITED),
    (m2m_changed, on_environment_links, Service.environments.through, "audit.links"),
    (action_performed, on_action, None, "audit.action"),
    (fixture_loaded, on_fixture, None, "audit.fixture"),
]


def connect():
    for signal, receiver, sender, uid in RECEIVERS:
        signal.connect(receiver, sender=sender, dispatch_uid=uid)


def disconnect():
    """For the benchmark's baseline only: the same changes without their trail."""
    for signal, receiver, sender, uid in RECEIVERS:
        signal.disconnect(receiver, sender=sender, dispatch_uid=uid)
