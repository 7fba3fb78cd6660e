from django.apps import AppConfig
from django.db.models.signals import pre_save


def validate_raw_save(sender, instance, raw, using, **kwargs):
    """Fixture loading saves with raw=True and skips Model.save(): validate it here instead."""
    from controlplane.models import DomainModel

    if raw and isinstance(instance, DomainModel):
        instance.prepare_raw_save(using)
        instance.full_clean()


class ControlPlaneConfig(AppConfig):
    name = "controlplane"
    verbose_name = "Control plane"

    def ready(self):
        from controlplane.identity import checks  # noqa: F401 - registers the identity system checks

        pre_save.connect(validate_raw_save, dispatch_uid="controlplane.validate_raw_save")
