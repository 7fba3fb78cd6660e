"""End to end, judged by an independent oracle. Input is refused, records are redacted: a secret typed into
an entity field (an environment's cluster, a service's name or repo, a release's version, an incident's
title or link; through the REST API or the admin) is a 400 naming the field, or a form error; a secret
reaching a run log another way (an adapter's output, a failing or crashing adapter's message, a log line) is
redacted there. Either way it occurs nowhere afterwards: not in a dump of the database, the audit and run
log tables read raw, the JSON Lines mirror, the server log, any API answer (the refusals included) or
stream, or the admin's pages and form errors."""

import io
import itertools
import logging
import re
import warnings
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings

from audit.models import AuditEvent
from controlplane.adapters import StepFailed
from controlplane.adapters.k8s import KubernetesAdapter
from controlplane.identity.context import acting_as
from releases import engine
from releases.models import RunLogEntry, WorkflowRun
from tests.api.conftest import Api
from tests.audit.leaks import FOUND, embedded, leaks, short_leaks, url
from tests.conftest import examples

_numbers = itertools.count(1)

REFUSAL = "must not contain a secret (found {}"
STORES_NO_CREDENTIALS = "the control plane stores no credentials."


@pytest.fixture
def console():
    """What the configured console handler (settings.LOGGING, with its filters) writes."""
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


@pytest.fixture
def streams_in_a_test_transaction(settings):
    # The audit stream never ends by itself, so it is cut short: read to its end, as a client would be.
    settings.CONTROLPLANE_STREAMS = {**settings.CONTROLPLANE_STREAMS, "maxSeconds": 0.3}


def read_stream(response) -> str:
    """All of a stream, read in this thread (it reads what the test's transaction holds)."""
    assert response.status_code == 200
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "StreamingHttpResponse must consume asynchronous iterators")
        return b"".join(response).decode()


def read_audit_stream(viewer, after: int, until: int) -> str:
    received = read_stream(viewer.get("/api/audit-events/stream", HTTP_LAST_EVENT_ID=str(after)))
    assert f"id: {until}\n" in received
    return received


def everything(run_id, ids, first_seq, last_seq, audit_log, console, caplog, streams) -> dict[str, str]:
    viewer, admin = Api("viewer"), Api("admin")
    places = {}
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    places["dumpdata"] = dump.getvalue()
    with connection.cursor() as cursor:
        for model in (AuditEvent, RunLogEntry):
            cursor.execute(f"SELECT * FROM {model._meta.db_table}")
            places[f"raw {model._meta.db_table}"] = repr(cursor.fetchall())
    places["JSON Lines mirror"] = audit_log.read_text()
    places["console log"] = console.getvalue()
    places["caplog"] = caplog.text
    places.update(streams)
    for path in (
        f"/api/services/{ids['service']}/",
        "/api/services/index/",
        f"/api/releases/{ids['release']}/",
        f"/api/releases/{ids['release']}/timeline/",
        f"/api/incidents/{ids['incident']}/",
        f"/api/workflow-runs/{run_id}/",
        f"/api/workflow-runs/?releaseId={ids['release']}",
        f"/api/audit-events/?serviceId={ids['service']}&pageSize=500",
    ):
        response = viewer.get(path)
        assert response.status_code == 200, (path, response.content)
        places[path] = response.content.decode()
    for path in (
        f"/admin/services/service/{ids['service']}/change/",
        f"/admin/releases/release/{ids['release']}/change/",
        f"/admin/incidents/incident/{ids['incident']}/change/",
        f"/admin/releases/workflowrun/{run_id}/change/",
        f"/admin/releases/runlogentry/?run__id__exact={run_id}",
        f"/admin/audit/auditevent/?service_id={ids['service']}",
        *(f"/admin/audit/auditevent/{seq}/change/" for seq in range(first_seq + 1, last_seq + 1)),
    ):
        response = admin.get(path)
        assert response.status_code == 200, (path, response.status_code)
        places[path] = response.content.decode()
    return places


def refused(response, field: str, leak) -> str:
    """A 400 naming `field` (and only it) with the secret refusal for `leak`; returns the body."""
    assert response.status_code == 400, (field, response.status_code, response.content)
    errors = response.json()
    assert list(errors) == [field], errors
    (message,) = [m for m in errors[field] if m.startswith("must not contain a secret")]
    assert FOUND[leak.kind] in message and message.endswith(STORES_NO_CREDENTIALS), message
    return response.content.decode()


def form_errors(response) -> str:
    """The admin's error lists in a page that refused a form (the form itself shows what was typed)."""
    assert response.status_code == 200, response.status_code
    return "\n".join(re.findall(r'<ul class="errorlist[^>]*>.*?</ul>', response.content.decode(), re.DOTALL))


@pytest.mark.parametrize("outcome", ["output", "step fails", "crash"])
@hypothesis_settings(
    max_examples=examples(6),
    phases=[Phase.explicit, Phase.generate],  # no shrinking: an example fails with a message naming the leak
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    cluster=embedded(short_leaks),
    name=embedded(short_leaks),
    repo=url,
    version=short_leaks,
    new_version=short_leaks,
    admin_version=short_leaks,
    title=embedded(),
    new_title=embedded(),
    link=url,
    message=embedded(),
    meta=embedded(),
    adapter_says=leaks,
)
def test_no_generated_secret_occurs_anywhere_afterwards(
    db,
    settings,
    audit_log,
    console,
    caplog,
    streams_in_a_test_transaction,
    django_capture_on_commit_callbacks,
    cluster,
    name,
    repo,
    version,
    new_version,
    admin_version,
    title,
    new_title,
    link,
    message,
    meta,
    adapter_says,
    outcome,
):
    settings.CONTROLPLANE_WORKFLOWS = {**settings.CONTROLPLANE_WORKFLOWS, "stepDelaySeconds": 0, "failSteps": []}
    caplog.set_level(logging.INFO)
    n = next(_numbers)
    admin, deployer, viewer = Api("admin"), Api("deployer"), Api("viewer")
    planted = [
        cluster[1],
        name[1],
        repo,
        version,
        new_version,
        admin_version,
        title[1],
        new_title[1],
        link,
        message[1],
        meta[1],
        adapter_says,
    ]
    first_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    refusals = {}

    with django_capture_on_commit_callbacks(execute=True):
        # Input: every secret typed into an entity field is refused, naming the field; the clean value is taken.
        env_body = {"name": f"oracle-{n}", "cluster": cluster[0]}
        refusals["environment cluster"] = refused(admin.post("/api/environments/", env_body), "cluster", cluster[1])
        env = admin.post("/api/environments/", {**env_body, "cluster": f"oracle-{n}"})
        assert env.status_code == 201, env.content
        service_body = {
            "name": f"oracle {n}",
            "repo": f"github.com/acme/oracle-{n}",
            "adapters": {"deployments": ["k8s"]},
            "environments": [env.json()["id"]],
        }
        refusals["service name"] = refused(
            admin.post("/api/services/", {**service_body, "name": name[0]}), "name", name[1]
        )
        refusals["service repo"] = refused(
            admin.post("/api/services/", {**service_body, "repo": repo.text}), "repo", repo
        )
        service = admin.post("/api/services/", service_body)
        assert service.status_code == 201, service.content
        ids = {"service": service.json()["id"]}
        release_body = {"serviceId": ids["service"], "envId": env.json()["id"], "sha": "4f2a9c1", "version": "v1"}
        refusals["release version"] = refused(
            deployer.post("/api/releases/", {**release_body, "version": f"v {version.text}"}), "version", version
        )
        release = deployer.post("/api/releases/", release_body)
        assert release.status_code == 201, release.content
        ids["release"] = release.json()["id"]
        refusals["release version update"] = refused(
            deployer.patch(f"/api/releases/{ids['release']}/", {"version": f"v {new_version.text}"}),
            "version",
            new_version,
        )
        admin_page = admin.client.post(
            f"/admin/releases/release/{ids['release']}/change/", {"version": f"v {admin_version.text}"}
        )
        refusals["admin form errors"] = form_errors(admin_page)
        assert FOUND[admin_version.kind] in refusals["admin form errors"], refusals["admin form errors"]
        incident_body = {
            "serviceId": ids["service"],
            "severity": "high",
            "title": "on fire",
            "link": "https://pd.example.com/i/1",
        }
        refusals["incident title"] = refused(
            deployer.post("/api/incidents/", {**incident_body, "title": title[0]}), "title", title[1]
        )
        refusals["incident link"] = refused(
            deployer.post("/api/incidents/", {**incident_body, "link": link.text}), "link", link
        )
        incident = deployer.post("/api/incidents/", incident_body)
        assert incident.status_code == 201, incident.content
        ids["incident"] = incident.json()["id"]
        refusals["incident title update"] = refused(
            deployer.patch(f"/api/incidents/{ids['incident']}/", {"title": new_title[0]}), "title", new_title[1]
        )
        assert deployer.get(f"/api/releases/{ids['release']}/").json()["version"] == "v1"  # refusals change nothing
        assert deployer.get(f"/api/incidents/{ids['incident']}/").json()["title"] == "on fire"
        deploy = deployer.post(f"/api/releases/{ids['release']}/deploy/")
        assert deploy.status_code == 202, deploy.content
        run_id = deploy.json()["id"]

    # Records: the worker's part, in process, through the real engine. An adapter logs what it was told, then
    # returns a secret in its output (the step's meta), fails with one in its message, or crashes on one.
    said = adapter_says.text
    effects = {
        "output": mock.patch.object(
            KubernetesAdapter, "perform", return_value={"stdout": said, "auth": {"token": said}}
        ),
        "step fails": mock.patch.object(KubernetesAdapter, "perform", side_effect=StepFailed(f"registry said {said}")),
        "crash": mock.patch.object(KubernetesAdapter, "perform", side_effect=RuntimeError(f"registry refused {said}")),
    }
    with django_capture_on_commit_callbacks(execute=True), acting_as("worker"):
        run = WorkflowRun.objects.get(pk=run_id)
        RunLogEntry(
            run=run, level="warning", message=message[0], meta={"output": meta[0], "registry": {"password": meta[0]}}
        ).save()
        logging.getLogger("releases.engine").warning("adapter output for %s: %s", run_id, message[0])
        with effects[outcome]:
            expected = {"output": "succeeded", "step fails": "failed", "crash": "crashed"}[outcome]
            assert engine.execute(run_id) == expected

    last_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    run_stream = viewer.get(f"/api/workflow-runs/{run_id}/logs/stream")
    streams = {
        "run log stream": read_stream(run_stream),
        "audit stream": read_audit_stream(viewer, first_seq, last_seq),
    }
    assert "event: end" in streams["run log stream"] and "[REDACTED]" in streams["run log stream"]

    places = everything(run_id, ids, first_seq, last_seq, audit_log, console, caplog, streams)
    places.update({f"refusal of the {what}": text for what, text in refusals.items()})
    for leak in planted:
        for secret in leak.vanish:
            for where, text in places.items():
                assert secret not in text, f"a {leak.kind} secret ({secret!r}) survives in {where}"


@pytest.mark.usefixtures("demo", "streams_in_a_test_transaction")
@pytest.mark.parametrize("secret", ["Bearer sekritsekrit123", "AKIAIOSFODNN7EXAMPLE"])
def test_a_secret_in_a_release_version_is_refused_and_one_in_a_run_log_redacted(
    settings, django_capture_on_commit_callbacks, secret
):
    settings.CONTROLPLANE_WORKFLOWS = {**settings.CONTROLPLANE_WORKFLOWS, "stepDelaySeconds": 0, "failSteps": []}
    deployer, admin = Api("deployer"), Api("admin")
    token = secret.split()[-1]
    found = "a bearer token" if secret.startswith("Bearer") else "an AWS access key id"
    body = {"serviceId": "svc-demo", "envId": "env-staging", "sha": "4f2a9c1", "version": f"2024.10 {secret}"}
    with django_capture_on_commit_callbacks(execute=True):
        refusal = deployer.post("/api/releases/", body)
        assert refusal.status_code == 400
        assert refusal.json() == {
            "version": [f"must not contain a secret (found {found}); the control plane stores no credentials."]
        }
        release = deployer.post("/api/releases/", {**body, "version": "2024.10"})
        assert release.status_code == 201, release.content
        page = admin.client.post(f"/admin/releases/release/{release.json()['id']}/change/", {"version": secret})
        assert f"must not contain a secret (found {found})" in form_errors(page)
        assert token not in form_errors(page)
        run_id = deployer.post(f"/api/releases/{release.json()['id']}/deploy/").json()["id"]
    with acting_as("worker"):
        RunLogEntry(run_id=run_id, message=f"registry login with {secret} ok", meta={"echo": secret}).save()
        assert engine.execute(run_id) == "succeeded"
    messages = list(RunLogEntry.objects.filter(run_id=run_id).values_list("message", flat=True))
    assert "registry login with [REDACTED] ok" in messages
    assert any("2024.10, 4f2a9c1" in m for m in messages)
    stream = read_stream(deployer.get(f"/api/workflow-runs/{run_id}/logs/stream"))
    page = admin.get(f"/admin/releases/workflowrun/{run_id}/change/").content.decode()
    answer = deployer.get(f"/api/workflow-runs/{run_id}/").content.decode()
    for text in (refusal.content.decode(), str(messages), stream, page, answer):
        assert token not in text
