"""The services index (docs/domain.md, "Derived views"): for each service, per environment its latest and its
current release, its open incidents by severity, and a pointer to the tail of its audit trail.

Read from the deployment-state read model (`overview.models`) in three queries for any page of services,
whatever the data's size: the services' own columns (a plain statement on REST: controlplane.plain_lists);
then, by key, their (service, environment) rows with each environment's name and the latest and current
releases, as the read model copies them; their service states with their audit tails. The database writes
each entry's JSON (controlplane.db.json_sql): REST embeds the text as it comes, and so does GraphQL when it is
asked for the same fields; no value is built in Python. Pages are cached under the audit trail's head (see
`under_head`), in Redis when REDIS_URL is set, so every web process shares them.
"""

import functools
import hashlib
import logging
import time

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from redis.exceptions import RedisError
from rest_framework import serializers

from audit.models import AuditChainHead, AuditEvent
from controlplane.api.renderers import JSONRenderer
from controlplane.db import json_sql
from incidents.models import SEVERITIES, Severity
from overview.models import DeploymentState, ServiceState
from releases.models import ReleaseStatus
from services.models import Environment, Service
from services.promotion import PROMOTION_ORDER

# A page of services is read with the services' own columns only (filtered and paged by the list's rules);
# each entry is then written by the database as JSON (controlplane.db.json_sql), in two lookups by key.
SERVICE_FIELDS = ("id", "name")  # an entry's key, and its page's bookmark (name, id)


def _release(prefix: str, status: str, when: str) -> str:
    return json_sql.when(
        f"d.{prefix}_id IS NOT NULL",
        json_sql.obj(
            ("id", f"d.{prefix}_id"),
            ("version", f"d.{prefix}_version"),
            ("sha", f"d.{prefix}_sha"),
            ("status", status),
            (when, json_sql.time(f"d.{prefix}_since")),
        ),
    )


@functools.cache
def _deployments_sql(vendor: str, count: int) -> str:
    """Per linked (service, environment), in the environments' promotion order (services.promotion: a column):
    the environment's entry, with the latest and current releases as the read model copies them (a current
    release is Active by definition)."""
    entry = json_sql.obj(
        ("id", "d.environment_id"),
        ("name", "env.name"),
        ("latestRelease", _release("latest", "d.latest_status", "createdAt")),
        ("currentRelease", _release("current", f"'{ReleaseStatus.ACTIVE.value}'", "activatedAt")),
    )
    return f"""
    SELECT d.service_id, {json_sql.text(entry)}, CASE WHEN d.latest_id IS NOT NULL THEN d.latest_status END
    FROM {DeploymentState._meta.db_table} d
    JOIN {Environment._meta.db_table} env ON env.id = d.environment_id
    WHERE d.service_id IN ({_marks(count)})
    ORDER BY {", ".join(f"env.{column}" for column in PROMOTION_ORDER)}
    """


@functools.cache
def _services_sql(vendor: str, count: int) -> str:
    """Per service, its entry in two halves, before and after its environments: its own columns; its open
    incidents by severity (0 for a service the read model does not keep yet) and its audit tail."""
    head = json_sql.obj(
        ("id", "s.id"),
        ("name", "s.name"),
        ("repo", "s.repo"),
        ("adapters", json_sql.obj(("deployments", json_sql.stored_json("s.deployment_adapters")))),
    )
    open_ = json_sql.obj(*((severity, f"COALESCE(st.open_{severity}, 0)") for severity in SEVERITIES))
    tail = json_sql.obj(
        ("incidents", json_sql.obj(("open", open_), ("highestOpenSeverity", "NULLIF(st.highest_open_severity, '')"))),
        (
            "auditTail",
            json_sql.when(
                "tail.seq IS NOT NULL",
                json_sql.obj(("seq", "tail.seq"), ("ts", json_sql.time("tail.ts")), ("action", "tail.action")),
            ),
        ),
    )
    open_total = " + ".join(f"COALESCE(st.open_{severity}, 0)" for severity in SEVERITIES)  # checked: 32-bit
    return f"""
    SELECT s.id, {json_sql.text(head)}, {json_sql.text(tail)},
           s.deployment_adapters, st.highest_open_severity, tail.seq, {open_total}
    FROM {Service._meta.db_table} s
    LEFT JOIN {ServiceState._meta.db_table} st ON st.service_id = s.id
    LEFT JOIN {AuditEvent._meta.db_table} tail ON tail.seq = st.audit_tail_seq
    WHERE s.id IN ({_marks(count)})
    """


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


HEAD_SQL = f"SELECT hash FROM {AuditChainHead._meta.db_table} WHERE id = 1"  # the trail's head, the version

CACHE_PAUSE_SECONDS = 30  # after the cache failed, pages are computed without it for this long

log = logging.getLogger(__name__)


def services(queryset):
    """The services of `queryset` as values, the columns `rendered()` pages by."""
    return queryset.values(*SERVICE_FIELDS)


# An entry's keys as the database writes them, nested: (key, its object's keys or None), for a door to compare
# with what it is asked for (GraphQL's servicesIndex splices an entry whose selection is exactly this).
_RELEASE_KEYS = (("id", None), ("version", None), ("sha", None), ("status", None))
ENTRY_KEYS = (
    ("id", None),
    ("name", None),
    ("repo", None),
    ("adapters", (("deployments", None),)),
    (
        "environments",
        (
            ("id", None),
            ("name", None),
            ("latestRelease", (*_RELEASE_KEYS, ("createdAt", None))),
            ("currentRelease", (*_RELEASE_KEYS, ("activatedAt", None))),
        ),
    ),
    ("incidents", (("open", tuple((severity, None) for severity in SEVERITIES)), ("highestOpenSeverity", None))),
    ("auditTail", (("seq", None), ("ts", None), ("action", None))),
)
_STATUSES = frozenset(ReleaseStatus.values) | {None}  # None: no latest release (its JSON is null)
_SEVERITIES = frozenset(Severity.values) | {"", None}
_INT32 = 2**31 - 1


def written(page, check: bool = False) -> tuple[list[str], bool | None]:
    """The index entries of a page of `services(...)` rows, in the page's order, each as the JSON text the
    database wrote: `{id, name, repo, adapters, environments, incidents, auditTail}` (ServiceIndexEntrySerializer).
    And, when `check`, whether every value is one its field's type takes (`ENTRY_KEYS`: statuses and severities
    the domain's, numbers 32-bit, the adapters a list of names), which the database does not enforce itself."""
    ids = [row["id"] for row in page]
    if not ids:
        return [], True
    environments: dict[str, list[str]] = {service_id: [] for service_id in ids}
    with connection.cursor() as cursor:
        cursor.execute(_deployments_sql(connection.vendor, len(ids)), ids)
        deployments = cursor.fetchall()
        cursor.execute(_services_sql(connection.vendor, len(ids)), ids)
        services = cursor.fetchall()
    for service_id, environment, _ in deployments:
        environments[service_id].append(environment)
    # Each entry spliced from its halves: `{head…` + `,"environments":[…],` + `…tail}`. (A service deleted
    # since its page was read has no halves: it is left out, as the next page's read would.)
    halves = {service_id: (head, tail) for service_id, head, tail, *_ in services}
    texts = [
        f'{halves[i][0][:-1]},"environments":[{",".join(environments[i])}],{halves[i][1][1:]}'
        for i in ids
        if i in halves
    ]
    if not check:
        return texts, None
    return texts, {status for *_, status in deployments} <= _STATUSES and all(map(_takes, services))


def _takes(row) -> bool:
    """Whether a service's own values are ones their types take (`written`)."""
    *_, adapters, severity, seq, open_ = row
    adapters = orjson.loads(adapters) if isinstance(adapters, str) else adapters
    return (
        severity in _SEVERITIES
        and (seq or 0) <= _INT32
        and open_ <= _INT32
        and isinstance(adapters, list)
        and all(isinstance(name, str) for name in adapters)
    )


def rendered(page) -> str:
    """`written(page)` as one JSON array's text."""
    return json_sql.array(written(page)[0])


def entries(page) -> list[dict]:
    """`rendered(page)` as values, for the doors that add to them (the dashboard)."""
    return orjson.loads(rendered(page))


def fragment(page) -> orjson.Fragment:
    """`rendered(page)` for a response to embed as it is (controlplane.api.renderers.JSONRenderer)."""
    return orjson.Fragment(rendered(page))


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
