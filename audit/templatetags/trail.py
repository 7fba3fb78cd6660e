"""What the audit trail recorded, for any page's template (`{% load trail %}`): a page of a lower app (a
release's) shows the trail's record of an outcome without importing the audit app."""

from django import template

from audit.models import AuditEvent

register = template.Library()

OUTCOMES = ("release.activate", "release.fail")


@register.simple_tag
def outcome(release):
    """The audit event that recorded how the release's rollout ended (activated or failed), or None while
    it has not ended."""
    if release.status not in ("Active", "Failed"):
        return None
    return AuditEvent.objects.filter(subject_id=release.pk, action__in=OUTCOMES).order_by("-seq").first()
