"""The services index (RFC 0001, derived views): for each service, per environment its latest and its
current release, its open incidents by severity, and a pointer to the tail of its audit trail.

A constant number of queries for any page of services: one for the services (with their latest event
as correlated subqueries), one for their environments, one for the (service, environment) pairs with
their latest and current release ids, one for those releases, one for open incident counts.
"""

from django.db.models import Count, OuterRef, Subquery
from rest_framework import serializers

from audit.models import AuditEvent
from incidents.models import Incident, Severity
from releases.models import Release, ReleaseStatus
from services.models import Service

SEVERITIES = [s.value for s in Severity]  # low → critical
Links = Service.environments.through


def with_audit_tail(queryset):
    latest = AuditEvent.objects.filter(service_id=OuterRef("pk")).order_by("-seq")
    return queryset.annotate(
        tail_seq=Subquery(latest.values("seq")[:1]),
        tail_ts=Subquery(latest.values("ts")[:1]),
        tail_action=Subquery(latest.values("action")[:1]),
    )


def _releases_by_pair(service_ids) -> dict:
    pair = {"service": OuterRef("service_id"), "environment": OuterRef("environment_id")}
    latest = Release.objects.filter(**pair).order_by("-created_at", "-id").values("id")[:1]
    current = (
        Release.objects.filter(**pair, status=ReleaseStatus.ACTIVE).order_by("-activated_at", "-id").values("id")[:1]
    )
    pairs = list(
        Links.objects.filter(service_id__in=service_ids)
        .annotate(latest_id=Subquery(latest), current_id=Subquery(current))
        .values_list("service_id", "environment_id", "latest_id", "current_id")
    )
    ids = {i for _, _, latest_id, current_id in pairs for i in (latest_id, current_id) if i}
    releases = {r.id: r for r in Release.objects.filter(id__in=ids)}
    return {(s, e): (releases.get(latest_id), releases.get(current_id)) for s, e, latest_id, current_id in pairs}


def _open_incidents(service_ids) -> dict:
    counts = {sid: dict.fromkeys(SEVERITIES, 0) for sid in service_ids}
    rows = (
        Incident.objects.filter(service_id__in=service_ids)
        .exclude(status=Incident.Status.RESOLVED)
        .values_list("service_id", "severity")
        .annotate(n=Count("id"))
    )
    for service_id, severity, n in rows:
        counts[service_id][severity] = n
    return counts


def _release(release, when: str):
    if release is None:
        return None
    stamp = getattr(release, when)
    return {
        "id": release.id,
        "version": release.version,
        "sha": release.sha,
        "status": release.status,
        when.replace("_at", "At"): stamp,
    }


def entries(services) -> list[dict]:
    """Index entries for `services` (a page from `with_audit_tail(...)`, environments prefetched)."""
    services = list(services)
    ids = [s.id for s in services]
    releases = _releases_by_pair(ids)
    incidents = _open_incidents(ids)
    result = []
    for service in services:
        open_counts = incidents[service.id]
        highest = next((s for s in reversed(SEVERITIES) if open_counts[s]), None)
        result.append(
            {
                "id": service.id,
                "name": service.name,
                "repo": service.repo,
                "adapters": {"deployments": service.deployment_adapters},
                "environments": [
                    {
                        "id": env.id,
                        "name": env.name,
                        "latestRelease": _release(releases.get((service.id, env.id), (None, None))[0], "created_at"),
                        "currentRelease": _release(releases.get((service.id, env.id), (None, None))[1], "activated_at"),
                    }
                    for env in service.environments.all()
                ],
                "incidents": {"open": open_counts, "highestOpenSeverity": highest},
                "auditTail": {"seq": service.tail_seq, "ts": service.tail_ts, "action": service.tail_action}
                if service.tail_seq
                else None,
            }
        )
    return result


# --- the shape, for the OpenAPI schema ---


class _IndexRelease(serializers.Serializer):
    id = serializers.CharField()
    version = serializers.CharField()
    sha = serializers.CharField()
    status = serializers.ChoiceField(choices=ReleaseStatus.choices)
    createdAt = serializers.DateTimeField(required=False)
    activatedAt = serializers.DateTimeField(required=False)


class _IndexEnvironment(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    latestRelease = _IndexRelease(allow_null=True)
    currentRelease = _IndexRelease(allow_null=True)


class _OpenIncidents(serializers.Serializer):
    open = serializers.DictField(child=serializers.IntegerField())
    highestOpenSeverity = serializers.ChoiceField(choices=Severity.choices, allow_null=True)


class _AuditTail(serializers.Serializer):
    seq = serializers.IntegerField()
    ts = serializers.DateTimeField()
    action = serializers.CharField()


class ServiceIndexEntrySerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    repo = serializers.CharField()
    adapters = serializers.DictField()
    environments = _IndexEnvironment(many=True)
    incidents = _OpenIncidents()
    auditTail = _AuditTail(allow_null=True)
