"""Keeping the deployment-state read model (`overview.models`) equal to what history says, in each change's
own transaction.

One definition serves everything: what a row should hold is a SQL query over the domain's tables (a
recomputation, from the key down: links, releases, runs, incidents, the audit trail). A change refreshes
the rows it touches by running that query for their key and upserting the result: a handful of index
seeks, whatever the data's size. `rebuild` runs it for every key; `differences` compares the stored rows
with it. Which release is current, and what superseded each, are the releases' own columns, kept by
`releases.lifecycle.activate`; here they are recomputed (`SUCCESSION`) and checked.

What refreshes what:
- a release created, edited, moved (deploy, promote, activate, fail), or a run started: its (service,
  environment);
- a service created, an incident created, edited or moved: the service;
- a link made or removed, from either side: those (service, environment) rows;
- an audit event about a service: the service's tail pointer;
- a fixture loaded (a restore writes raw, without these signals): everything; `manage.py seed` likewise.
"""

from collections.abc import Iterator

from django.db import connection, transaction
from django.db.models.signals import m2m_changed, post_save

from audit.models import AuditChainHead, AuditEvent
from controlplane.signals import action_performed, fixture_loaded
from incidents.models import OPEN, SEVERITIES, Incident
from overview.models import DeploymentState, ServiceState
from releases.models import Release, ReleaseStatus, WorkflowRun
from services.models import Service

LINKS = Service.environments.through._meta.db_table
RELEASES = Release._meta.db_table
ACTIVE, PROMOTING = ReleaseStatus.ACTIVE.value, ReleaseStatus.PROMOTING.value

# Each Active release with the one activated next in its (service, environment): activation order, ids
# breaking ties. The last has none: it is current.
SUCCESSION = f"""
SELECT id, LEAD(id) OVER w AS next_id, LEAD(activated_at) OVER w AS next_at
FROM {RELEASES} WHERE status = '{ACTIVE}'
WINDOW w AS (PARTITION BY service_id, environment_id ORDER BY activated_at, id)
"""

_PICK = f"SELECT r.id FROM {RELEASES} r WHERE r.service_id = link.service_id AND r.environment_id = link.environment_id"
DEPLOYMENT_COLUMNS = (
    "service_id",
    "environment_id",
    "current_id",
    "current_since",
    "latest_id",
    "latest_since",
    "promoting_id",
    "promoting_since",
    "current_version",
    "current_sha",
    "latest_version",
    "latest_sha",
    "latest_status",
)
DEPLOYMENTS = f"""
SELECT link.service_id, link.environment_id, cur.id, cur.activated_at, lat.id, lat.created_at, pro.id,
       (SELECT run.started_at FROM {WorkflowRun._meta.db_table} run WHERE run.release_id = pro.id
        ORDER BY run.started_at DESC LIMIT 1),
       COALESCE(cur.version, ''), COALESCE(cur.sha, ''), COALESCE(lat.version, ''), COALESCE(lat.sha, ''),
       COALESCE(lat.status, '')
FROM {LINKS} link
LEFT JOIN {RELEASES} cur ON cur.id = (
    {_PICK} AND r.status = '{ACTIVE}' ORDER BY r.activated_at DESC, r.id DESC LIMIT 1)
LEFT JOIN {RELEASES} lat ON lat.id = ({_PICK} ORDER BY r.created_at DESC, r.id DESC LIMIT 1)
LEFT JOIN {RELEASES} pro ON pro.id = ({_PICK} AND r.status = '{PROMOTING}' LIMIT 1)
WHERE {{where}}
"""

SERVICE_COLUMNS = (
    "service_id",
    *(f"open_{s}" for s in SEVERITIES),
    "highest_open_severity",
    "audit_tail_seq",
)
INCIDENTS = Incident._meta.db_table
# `{open}`: `incidents.models.OPEN` compiled to SQL (`_open_incidents`), so the counts mean what "open" means
# everywhere else rather than a copy of the rule.
_OPEN = ",\n".join(
    f"(SELECT COUNT(*) FROM {INCIDENTS} WHERE {INCIDENTS}.service_id = s.id "
    f"AND {{open}} AND {INCIDENTS}.severity = '{severity}') AS open_{severity}"
    for severity in SEVERITIES
)
_HIGHEST = " ".join(f"WHEN open_{s} > 0 THEN '{s}'" for s in reversed(SEVERITIES))
SERVICES = f"""
SELECT id, {", ".join(f"open_{s}" for s in SEVERITIES)}, CASE {_HIGHEST} ELSE '' END, tail
FROM (
    SELECT s.id, {_OPEN},
           (SELECT MAX(a.seq) FROM {AuditEvent._meta.db_table} a WHERE a.service_id = s.id) AS tail
    FROM {Service._meta.db_table} s WHERE {{where}}
) counted
WHERE 1 = 1
"""  # the outer WHERE: SQLite parses `INSERT … SELECT … ON CONFLICT` only with one


def _open_incidents() -> tuple[str, list]:
    """`incidents.models.OPEN` as a condition on the incidents table, with its parameters."""
    query = Incident.objects.filter(OPEN).query
    return query.get_compiler(connection=connection).compile(query.where)


def _services(where: str, params) -> tuple[str, list]:
    """SERVICES for the services `where` selects, and its parameters (the open condition's, once per severity)."""
    condition, condition_params = _open_incidents()
    return SERVICES.format(where=where, open=condition), [*condition_params * len(SEVERITIES), *params]


def _upsert(model, columns, key, select: str, params) -> None:
    if connection.features.has_select_for_update:
        # Every change that refreshes a row is audited in its own transaction, which holds the trail's head
        # locked until it commits (taken again here, one more round trip, so the order of receivers cannot
        # matter). Two changes to the same rows thus refresh one after the other, and on PostgreSQL the
        # second statement sees the first's commit. (SQLite serialises writing transactions by itself.)
        AuditChainHead.locked()
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) {select} "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def refresh_deployments(service_id: str, environment_ids=None) -> None:
    """Recompute the rows of `service_id` (in `environment_ids`, or all its environments)."""
    where, params = "link.service_id = %s", [service_id]
    if environment_ids is not None:
        environment_ids = list(environment_ids)
        if not environment_ids:
            return
        where += f" AND link.environment_id IN ({', '.join(['%s'] * len(environment_ids))})"
        params += environment_ids
    _upsert_deployments(where, params)


def refresh_service(service_id: str) -> None:
    _upsert_services("s.id = %s", [service_id])


def _upsert_deployments(where: str, params) -> None:
    key = ("service_id", "environment_id")
    _upsert(DeploymentState, DEPLOYMENT_COLUMNS, key, DEPLOYMENTS.format(where=where), params)


def _upsert_services(where: str, params) -> None:
    _upsert(ServiceState, SERVICE_COLUMNS, ("service_id",), *_services(where, params))


@transaction.atomic
def rebuild() -> dict[str, int]:
    """Recompute everything from history: which release is current and what superseded each, every
    (service, environment) row and every service row. Returns how many rows of each it wrote."""
    # The trail's head first, as every change takes it before the rows it refreshes: no deadlock with them.
    AuditChainHead.locked()
    with connection.cursor() as cursor:
        # Cleared first, so that no moment holds two current releases of one (service, environment).
        cursor.execute(
            f"UPDATE {RELEASES} SET is_current = %s, superseded_by_id = NULL, superseded_at = NULL "
            f"WHERE is_current = %s OR superseded_by_id IS NOT NULL",
            [False, True],
        )
        cursor.execute(
            f"UPDATE {RELEASES} SET is_current = (succession.next_id IS NULL), "
            f"superseded_by_id = succession.next_id, superseded_at = succession.next_at "
            f"FROM ({SUCCESSION}) succession WHERE {RELEASES}.id = succession.id"
        )
        releases = cursor.rowcount
    DeploymentState.objects.all().delete()
    ServiceState.objects.all().delete()
    _upsert_deployments("1 = 1", [])
    _upsert_services("1 = 1", [])
    return {
        "releases in a succession": releases,
        "deployment states": DeploymentState.objects.count(),
        "service states": ServiceState.objects.count(),
    }


# --- checking ---


def _rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _stored(model, columns) -> list[tuple]:
    # Read as raw rows, like the recomputation, so both sides come back in the same types.
    return _rows(f"SELECT {', '.join(columns)} FROM {model._meta.db_table}")


def _compare(noun: str, columns, key_length: int, stored: list[tuple], expected: list[tuple]) -> Iterator[str]:
    stored_by_key = {row[:key_length]: row for row in stored}
    expected_by_key = {row[:key_length]: row for row in expected}
    for key in sorted(stored_by_key.keys() | expected_by_key.keys()):
        name = f"{noun} {' in '.join(key)}"
        have, want = stored_by_key.get(key), expected_by_key.get(key)
        if have is None:
            yield f"{name}: missing from the stored state"
        elif want is None:
            yield f"{name}: stored, but history has no such {noun} (not linked, or unknown)"
        else:
            for column, h, w in zip(columns[key_length:], have[key_length:], want[key_length:], strict=True):
                if h != w:
                    yield f"{name}: {column} is {h!r} in the stored state, {w!r} recomputed from history"


def _succession_differences() -> Iterator[str]:
    current = "(succession.id IS NOT NULL AND succession.next_id IS NULL)"
    differ = "IS NOT" if connection.vendor == "sqlite" else "IS DISTINCT FROM"  # null-safe; SQLite's older spelling
    rows = _rows(
        f"SELECT r.id, r.is_current, r.superseded_by_id, r.superseded_at, {current}, succession.next_id, "
        f"succession.next_at FROM {RELEASES} r LEFT JOIN ({SUCCESSION}) succession ON succession.id = r.id "
        f"WHERE r.is_current <> {current} OR r.superseded_by_id {differ} succession.next_id "
        f"OR r.superseded_at {differ} succession.next_at ORDER BY r.id"
    )
    for release_id, *stored_and_expected in rows:
        have, want = stored_and_expected[:3], stored_and_expected[3:]
        for column, h, w in zip(("is_current", "superseded_by", "superseded_at"), have, want, strict=True):
            if column == "is_current":
                h, w = bool(h), bool(w)
            if h != w:
                yield f"release {release_id}: {column} is {h!r} in the stored state, {w!r} recomputed from history"


def differences() -> list[str]:
    """Every way the stored read model differs from a recomputation from history, in a stable order:
    releases' succession, then (service, environment) rows, then service rows. Read in one snapshot, so
    changes committed meanwhile cannot show as differences (on SQLite the read holds the write lock)."""
    outermost = not connection.in_atomic_block  # inside a caller's transaction, its isolation holds
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return [
            *_succession_differences(),
            *_compare(
                "deployment",
                DEPLOYMENT_COLUMNS,
                2,
                _stored(DeploymentState, DEPLOYMENT_COLUMNS),
                _rows(DEPLOYMENTS.format(where="1 = 1")),
            ),
            *_compare(
                "service",
                SERVICE_COLUMNS,
                1,
                _stored(ServiceState, SERVICE_COLUMNS),
                _rows(*_services("1 = 1", [])),
            ),
        ]


# --- kept by the changes ---


def on_release_saved(sender, instance, created, raw, **kwargs):
    if not raw:  # created, or its version edited while Draft (the rows show it)
        refresh_deployments(instance.service_id, [instance.environment_id])


def on_run_saved(sender, instance, created, raw, **kwargs):
    if created and not raw:  # a rollout's run: when its release began promoting
        release = instance.release
        refresh_deployments(release.service_id, [release.environment_id])


def on_action(sender, instance, **kwargs):
    if sender is Release:
        refresh_deployments(instance.service_id, [instance.environment_id])
    elif sender is Incident:
        refresh_service(instance.service_id)


def on_service_saved(sender, instance, created, raw, **kwargs):
    if created and not raw:
        refresh_service(instance.pk)


def on_incident_saved(sender, instance, created, raw, **kwargs):
    if not raw:  # created, or its severity edited
        refresh_service(instance.service_id)


def on_links(sender, instance, action, reverse, pk_set, **kwargs):
    if instance.restoring or action not in ("post_add", "post_remove", "post_clear"):
        return  # a restore's links are recomputed with the rest of it
    rows = DeploymentState.objects.filter(**{"environment" if reverse else "service": instance.pk})
    if action == "post_clear":
        rows.delete()
    elif action == "post_remove":
        rows.filter(**{"service__in" if reverse else "environment__in": pk_set}).delete()
    elif reverse:
        for service_id in sorted(pk_set):
            refresh_deployments(service_id, [instance.pk])
    else:
        refresh_deployments(instance.pk, sorted(pk_set))


def on_audit_event(sender, instance, created, raw, **kwargs):
    if created and not raw and instance.service_id:
        ServiceState.objects.filter(service_id=instance.service_id).update(audit_tail=instance.seq)


def on_fixture(sender, **kwargs):
    rebuild()


RECEIVERS = [
    (post_save, on_release_saved, Release),
    (post_save, on_run_saved, WorkflowRun),
    (post_save, on_service_saved, Service),
    (post_save, on_incident_saved, Incident),
    (post_save, on_audit_event, AuditEvent),
    (m2m_changed, on_links, Service.environments.through),
    (action_performed, on_action, None),
    (fixture_loaded, on_fixture, None),
]


def connect():
    for signal, receiver, sender in RECEIVERS:
        signal.connect(receiver, sender=sender, dispatch_uid=f"deployment_state.{receiver.__name__}.{sender}")
