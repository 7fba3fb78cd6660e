from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate, pre_save


def validate_raw_save(sender, instance, raw, using, **kwargs):
    """Fixture loading saves with raw=True and skips Model.save(): validate it here instead."""
    from controlplane.models import DomainModel

    if raw and isinstance(instance, DomainModel):
        instance.prepare_raw_save(using)
        instance.full_clean()


def ensure_append_only_triggers(sender, using, **kwargs):
    """After every migrate (and flush): a migration that rebuilds a table on SQLite drops its triggers."""
    from controlplane import triggers

    triggers.ensure(connections[using])


class ControlPlaneConfig(AppConfig):
    name = "controlplane"
    verbose_name = "Control plane"

    def ready(self):
        from controlplane.identity import checks  # noqa: F401 - registers the identity system checks

        pre_save.connect(validate_raw_save, dispatch_uid="controlplane.validate_raw_save")
        post_migrate.connect(ensure_append_only_triggers, sender=self, dispatch_uid="controlplane.append_only")
