from django.apps import AppConfig
from django.db.models.signals import post_save


def advance_head_on_restore(sender, instance, raw, **kwargs):
    """A restored (fixture) event was validated against the chain head; move the head past it."""
    if raw:
        from audit.models import AuditChainHead

        AuditChainHead.advance(instance)


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        from audit import writer
        from audit.models import AuditEvent

        writer.connect()
        post_save.connect(advance_head_on_restore, sender=AuditEvent, dispatch_uid="audit.restore_head")
