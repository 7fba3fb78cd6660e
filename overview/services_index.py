"""The services index (docs/domain.md, "Derived views"): for each service, per environment its latest and its
current release, its open incidents by severity, and a pointer to the tail of its audit trail.

Read from the deployment-state read model (`overview.models`), as plain values (no model instances, no
serializer), in three queries for any page of services, whatever the data's size: the services' own
columns (a plain statement on REST: controlplane.plain_lists); their (service, environment) rows with each
environment's name and the latest and current releases, as the read model copies them; their service states
with their audit tails, by key. Pages are cached under the audit trail's head (see `under_head`), in Redis
when REDIS_URL is set, so every web process shares them.
"""

import hashlib
import json
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from redis.exceptions import RedisError
from rest_framework import serializers

from audit.models import AuditChainHead, AuditEvent
from controlplane.api.renderers import JSONRenderer
from controlplane.timestamps import rfc3339
from incidents.models import SEVERITIES, Severity
from overview.models import DeploymentState, ServiceState
from releases.models import ReleaseStatus
from services.models import Environment

# A page of services is read with the services' own columns only: the ORM's joins to their state and its
# audit tail cost the page more than the two lookups by key below (STATES_SQL).
SERVICE_FIELDS = ("id", "name", "repo", "deployment_adapters")
# Per service: its open incidents by severity, the highest, and its audit tail (with the tail's actor,
# which the dashboard shows).
STATES_SQL = f"""
SELECT st.service_id, {", ".join(f"st.open_{severity}" for severity in SEVERITIES)}, st.highest_open_severity,
       tail.seq, {{tail_ts}}, tail.action, tail.actor
FROM {ServiceState._meta.db_table} st
LEFT JOIN {AuditEvent._meta.db_table} tail ON tail.seq = st.audit_tail_seq
WHERE st.service_id IN ({{ids}})
"""
# Per (service, environment): the environment's name and the latest and current releases, as the read
# model copies them (a current release is Active by definition). Raw SQL, read as it comes: the ORM's
# per-row conversions (times parsed only to be printed again) cost the page more than the query.
DEPLOYMENTS_SQL = f"""
SELECT d.service_id, d.environment_id, env.name,
       d.latest_id, d.latest_version, d.latest_sha, d.latest_status, {{latest_created}},
       d.current_id, d.current_version, d.current_sha, '{ReleaseStatus.ACTIVE.value}', {{current_activated}}
FROM {DeploymentState._meta.db_table} d
JOIN {Environment._meta.db_table} env ON env.id = d.environment_id
WHERE d.service_id IN ({{ids}})
ORDER BY env.name
"""


def _time(column: str) -> str:
    # SQLite stores times as UTC text, which its driver would parse only for rfc3339 to print it again.
    return f"CAST({column} AS TEXT)" if connection.vendor == "sqlite" else column


HEAD_SQL = f"SELECT hash FROM {AuditChainHead._meta.db_table} WHERE id = 1"  # the trail's head, the version

CACHE_PAUSE_SECONDS = 30  # after the cache failed, pages are computed without it for this long

log = logging.getLogger(__name__)


def services(queryset):
    """The services of `queryset` as values, each with its service state."""
    return queryset.values(*SERVICE_FIELDS)


def states(service_ids) -> dict[str, dict]:
    """Per service: `open` (by severity), `highest` (or None) and `tail` (seq, ts, action, actor; or None)."""
    found = {}
    if service_ids:
        with connection.cursor() as cursor:
            ids = ", ".join(["%s"] * len(service_ids))
            cursor.execute(STATES_SQL.format(ids=ids, tail_ts=_time("tail.ts")), list(service_ids))
            rows = cursor.fetchall()
        counts = len(SEVERITIES)
        for service_id, *row in rows:
            seq, ts, action, actor = row[counts + 1 :]
            found[service_id] = {
                "open": dict(zip(SEVERITIES, row[:counts], strict=True)),
                "highest": row[counts] or None,
                "tail": {"seq": seq, "ts": rfc3339(ts), "action": action, "actor": actor} if seq else None,
            }
    return found


_NO_STATE = {"open": dict.fromkeys(SEVERITIES, 0), "highest": None, "tail": None}  # a service not yet kept


def _environments(service_ids) -> dict[str, list]:
    """Per service, its environments in name order, each with its latest and current release."""
    result: dict[str, list] = {sid: [] for sid in service_ids}
    if not service_ids:
        return result
    with connection.cursor() as cursor:
        sql = DEPLOYMENTS_SQL.format(
            ids=", ".join(["%s"] * len(service_ids)),
            latest_created=_time("d.latest_since"),
            current_activated=_time("d.current_since"),
        )
        cursor.execute(sql, service_ids)
        rows = cursor.fetchall()
    for row in rows:
        result[row[0]].append(
            {
                "id": row[1],
                "name": row[2],
                "latestRelease": _release(row[3:8], "createdAt"),
                "currentRelease": _release(row[8:13], "activatedAt"),
            }
        )
    return result


def _json(value):
    return json.loads(value) if isinstance(value, str) else value  # as stored, or as the ORM decodes it


def _release(columns, when: str):
    release_id, version, sha, status, stamp = columns
    if release_id is None:
        return None
    return {"id": release_id, "version": version, "sha": sha, "status": status, when: rfc3339(stamp)}


def entries(page) -> list[dict]:
    """Index entries for a page of `services(...)` rows, in the page's order."""
    ids = [row["id"] for row in page]
    environments, found = _environments(ids), states(ids)
    result = []
    for row in page:
        state = found.get(row["id"], _NO_STATE)
        tail = state["tail"]
        result.append(
            {
                "id": row["id"],
                "name": row["name"],
                "repo": row["repo"],
                "adapters": {"deployments": _json(row["deployment_adapters"])},
                "environments": environments[row["id"]],
                "incidents": {"open": dict(state["open"]), "highestOpenSeverity": state["highest"]},
                "auditTail": {"seq": tail["seq"], "ts": tail["ts"], "action": tail["action"]} if tail else None,
            }
        )
    return result


def cached(key: str, build) -> bytes:
    """A page of the index as rendered JSON, cached under the audit trail's head (see `cached_body`)."""
    return cached_body(key, lambda: (JSONRenderer().render(build()), True))


def cached_body(key: str, render) -> bytes:
    """What `render()` gives, `(body, keep)`, cached under the audit trail's head and `key` when `keep`, unless
    CONTROLPLANE_INDEX_CACHE is off. REST's pages and GraphQL's servicesIndex answers both live here."""
    return under_head(key, render, enabled=settings.INDEX_CACHE)


def under_head(key: str, render, *, enabled: bool):
    """What `render()` gives, `(value, keep)`, cached under the audit trail's head and `key`: for
    INDEX_CACHE_SECONDS when `keep` is True, for `keep` seconds when it is a number (what time alone leaves the
    value good for, capped likewise), not at all when it is False or under a second. Every change to what the
    index shows writes an audit event in the change's own transaction, so the head's hash is an exact version:
    a change makes every cached value stale the moment it commits. (The head is read before the data, so a
    value is never older than the version it is stored under.) The API's index (`cached_body`) and the
    dashboard's (overview/views.py) both live here, each with its own setting."""
    if not enabled:
        return render()[0]
    with connection.cursor() as cursor:  # a cache hit is little more than this read: no ORM to compile it
        cursor.execute(HEAD_SQL)
        row = cursor.fetchone()
    head = row[0] if row else None
    versioned = "services-index:" + hashlib.sha256(f"{head}|{key}".encode()).hexdigest()
    value = _from_cache(cache.get, versioned)
    if value is None:
        value, keep = render()
        seconds = settings.INDEX_CACHE_SECONDS if keep is True else min(int(keep), settings.INDEX_CACHE_SECONDS)
        if seconds >= 1:
            _from_cache(cache.set, versioned, value, timeout=seconds)
    return value


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
