"""The services index (RFC 0001, derived views): for each service, per environment its latest and its
current release, its open incidents by severity, and a pointer to the tail of its audit trail.

A read model, built from plain values (no model instances, no serializer), in four queries for any
page of services: the services with the sequence number of their latest audit event; those events;
the (service, environment) links with each environment's name and its latest and current release;
open incident counts. Every correlated subquery is answered from an index. Pages are cached under
the audit trail's head (see `cached`), in Redis when REDIS_URL is set, so every web process shares them.
"""

import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, OuterRef, Subquery
from redis.exceptions import RedisError
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from audit.models import AuditChainHead, AuditEvent
from controlplane.timestamps import rfc3339
from incidents.models import Incident, Severity
from releases.models import ReleaseStatus
from services.models import Service

SEVERITIES = [s.value for s in Severity]  # low → critical
Links = Service.environments.through
SERVICE_FIELDS = ("id", "name", "repo", "deployment_adapters", "tail_seq")
CACHE_PAUSE_SECONDS = 30  # after the cache failed, pages are computed without it for this long

log = logging.getLogger(__name__)


def services(queryset):
    """The services of `queryset` as values, each with the sequence number of its latest audit event."""
    latest = AuditEvent.objects.filter(service_id=OuterRef("pk")).order_by("-seq").values("seq")[:1]
    return queryset.annotate(tail_seq=Subquery(latest)).values(*SERVICE_FIELDS)


def _audit_tails(page) -> dict[int, dict]:
    seqs = [row["tail_seq"] for row in page if row["tail_seq"]]
    return {
        seq: {"seq": seq, "ts": rfc3339(ts), "action": action}
        for seq, ts, action in AuditEvent.objects.filter(seq__in=seqs).values_list("seq", "ts", "action")
    }


PAIRS_SQL = """
SELECT link.service_id, link.environment_id, env.name,
       latest.id, latest.version, latest.sha, latest.status, latest.created_at,
       curr.id, curr.version, curr.sha, curr.status, curr.activated_at
FROM services_service_environments link
JOIN services_environment env ON env.id = link.environment_id
LEFT JOIN releases_release latest ON latest.id = (
    SELECT r.id FROM releases_release r
    WHERE r.service_id = link.service_id AND r.environment_id = link.environment_id
    ORDER BY r.created_at DESC, r.id DESC LIMIT 1)
LEFT JOIN releases_release curr ON curr.id = (
    SELECT r.id FROM releases_release r
    WHERE r.service_id = link.service_id AND r.environment_id = link.environment_id AND r.status = %s
    ORDER BY r.activated_at DESC, r.id DESC LIMIT 1)
WHERE link.service_id IN ({ids})
ORDER BY env.name
"""


def _environments(service_ids) -> dict[str, list]:
    """Per service, its environments in name order, each with its latest and current release.

    One query; each correlated subquery is answered from a covering index on releases."""
    result: dict[str, list] = {sid: [] for sid in service_ids}
    if not service_ids:
        return result
    sql = PAIRS_SQL.format(ids=", ".join(["%s"] * len(service_ids)))
    with connection.cursor() as cursor:
        cursor.execute(sql, [ReleaseStatus.ACTIVE, *service_ids])
        for row in cursor.fetchall():
            result[row[0]].append(
                {
                    "id": row[1],
                    "name": row[2],
                    "latestRelease": _release(row[3:8], "createdAt"),
                    "currentRelease": _release(row[8:13], "activatedAt"),
                }
            )
    return result


def _release(columns, when: str):
    release_id, version, sha, status, stamp = columns
    if release_id is None:
        return None
    return {"id": release_id, "version": version, "sha": sha, "status": status, when: rfc3339(stamp)}


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


def entries(page) -> list[dict]:
    """Index entries for a page of `services(...)` rows, in the page's order."""
    ids = [row["id"] for row in page]
    environments = _environments(ids)
    incidents = _open_incidents(ids)
    tails = _audit_tails(page)
    result = []
    for row in page:
        open_counts = incidents[row["id"]]
        result.append(
            {
                "id": row["id"],
                "name": row["name"],
                "repo": row["repo"],
                "adapters": {"deployments": row["deployment_adapters"]},
                "environments": environments[row["id"]],
                "incidents": {
                    "open": open_counts,
                    "highestOpenSeverity": next((s for s in reversed(SEVERITIES) if open_counts[s]), None),
                },
                "auditTail": tails.get(row["tail_seq"]),
            }
        )
    return result


def cached(key: str, build) -> bytes:
    """A page of the index as rendered JSON, cached under the audit trail's head. Every change to what
    the index shows writes an audit event in the change's own transaction, so the head's hash is an
    exact version: a change makes every cached page stale the moment it commits. (The head is read
    before the data, so a page is never older than the version it is stored under.)"""
    if not settings.INDEX_CACHE:
        return JSONRenderer().render(build())
    head = AuditChainHead.objects.filter(pk=1).values_list("hash", flat=True).first()
    versioned = "services-index:" + hashlib.sha256(f"{head}|{key}".encode()).hexdigest()
    body = _from_cache(cache.get, versioned)
    if body is None:
        body = JSONRenderer().render(build())
        _from_cache(cache.set, versioned, body, timeout=settings.INDEX_CACHE_SECONDS)
    return body


_cache_paused_until = 0.0  # time.monotonic()


def _from_cache(operation, *args, **kwargs):
    """`operation` on the cache, or None when the cache (Redis, shared) is down or slow: the index then
    computes its pages, never a 500. One warning per failure, and no cache for a pause after it, so that
    requests do not each wait out the socket timeout while Redis is away."""
    global _cache_paused_until
    if time.monotonic() < _cache_paused_until:
        return None
    try:
        return operation(*args, **kwargs)
    except RedisError as e:
        _cache_paused_until = time.monotonic() + CACHE_PAUSE_SECONDS
        log.warning(
            "services index cache unavailable (%s: %s); pages are computed without it for %d s",
            type(e).__name__,
            e,
            CACHE_PAUSE_SECONDS,
        )
        return None


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
