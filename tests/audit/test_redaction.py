"""Redaction (controlplane/redaction.py), judged by an independent oracle: the secrets hypothesis generates
must not survive, whatever the redactor's own patterns say. Spans are replaced, the rest of a text is kept."""

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from controlplane.redaction import REDACTED, redact, redact_text
from releases.models import RunLogEntry, WorkflowRun
from tests.audit.leaks import CONFIGURED, embedded

# The key names decisions.md lists, written out here rather than taken from the implementation.
SECRET_KEY_NAMES = re.compile(
    r"secret|token|password|passwd|pwd|api[-_]?key|access[-_]?key|private[-_]?key|credential|authorization|cookie|session",
    re.IGNORECASE,
)
secret_key_names = st.sampled_from(
    [
        "password",
        "api_key",
        "apiKey",
        "AWS_SECRET_ACCESS_KEY",
        "private-key",
        "Authorization",
        "session_id",
        "db_passwd",
        "pwd",
        "Cookie",
        "credentials",
        "x-access-key",
        "github_token",
    ]
)
plain_keys = st.text(alphabet="abcdefghijklmnopqrsuvwxyz_", min_size=1, max_size=10).filter(
    lambda k: not SECRET_KEY_NAMES.search(k)
)


@st.composite
def documents(draw):
    """A JSON document with leaks at any depth, in values and in keys; returns (document, leaks)."""
    planted = []

    def leak_text():
        text, leak = draw(embedded())
        planted.append(leak)
        return text

    def node(depth):
        choice = draw(st.integers(0, 5 if depth < 3 else 2))
        if choice == 0:
            return leak_text()
        if choice == 1:
            return draw(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)))
        if choice == 2:
            return draw(secret_key_names)  # a key name as a value is harmless text
        if choice == 3:
            return [node(depth + 1) for _ in range(draw(st.integers(0, 3)))]
        result = {}
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.integers(0, 2))
            key = draw(plain_keys) if kind == 0 else draw(secret_key_names) if kind == 1 else leak_text()
            result[key] = node(depth + 1)
        return result

    return {"root": node(0)}, planted


def walk(value, key=None):
    yield key, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item, key)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(documents())
def test_no_planted_secret_survives_and_secret_named_keys_lose_their_values(planted):
    document, planted_leaks = planted
    redacted = redact(document, secrets=[CONFIGURED])
    dumped = json.dumps(redacted, ensure_ascii=False)
    for leak in planted_leaks:
        for secret in leak.vanish:
            assert secret not in dumped, (leak.kind, secret, dumped)
    for key, value in walk(redacted):
        if isinstance(key, str) and SECRET_KEY_NAMES.search(key) and not key.startswith(REDACTED):
            assert value == REDACTED, (key, value)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(embedded())
def test_only_the_secret_span_is_replaced(case):
    text, leak = case
    redacted = redact_text(text, secrets=[CONFIGURED])
    assert not any(secret in redacted for secret in leak.vanish), (leak.kind, redacted)
    assert REDACTED in redacted or "REDACTED@" in redacted
    if leak.kind in ("aws", "jwt", "configured"):
        # A self-contained token: the text around it is kept as it was.
        assert redacted == text.replace(leak.text, REDACTED, 1)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    st.dictionaries(plain_keys, st.one_of(st.integers(), st.booleans(), st.text(alphabet="abc xyz-_.:/", max_size=20)))
)
def test_harmless_documents_come_through_unchanged(document):
    assert redact(document, secrets=[CONFIGURED]) == document


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deploying Bearer abc to prod", "deploying [REDACTED] to prod"),
        ("key AKIAIOSFODNN7EXAMPLE used", "key [REDACTED] used"),
        (f"echo {CONFIGURED}!", "echo [REDACTED]!"),
        ("a eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl b", "a [REDACTED] b"),
        (
            "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nxyz\n-----END RSA PRIVATE KEY----- (rotated)",
            "key: [REDACTED] (rotated)",
        ),
        ("cut short: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\nAAAA", "cut short: [REDACTED]"),
        (
            "see https://alice:pw@grafana.example.com/d/x?token=abc&password=p%40ss&orgId=1 now",
            "see https://REDACTED@grafana.example.com/d/x?token=[REDACTED]&password=[REDACTED]&orgId=1 now",
        ),
        (
            '"GET /api/me/?access_token=abc123 HTTP/1.1" 401 91',
            '"GET /api/me/?access_token=[REDACTED] HTTP/1.1" 401 91',
        ),
        ("https://ghp_abcdef@github.com/acme/x.git", "https://REDACTED@github.com/acme/x.git"),
        # Not secrets: left alone.
        ("region asia-southeast1, mail bob@example.com", "region asia-southeast1, mail bob@example.com"),
        ("https://example.com/search?q=token&type=code", "https://example.com/search?q=token&type=code"),
    ],
)
def test_span_examples(text, expected):
    assert redact_text(text, secrets=[CONFIGURED]) == expected
    assert redact_text(expected, secrets=[CONFIGURED]) == expected  # redacting twice changes nothing


def test_examples_from_decisions_md():
    document = {
        "serviceId": "svc-demo",
        "adapter": {"response": {"Token": "t0ps3cret", "headers": {"authorization": "Bearer abc.def"}}},
        "steps": [{"note": "used AKIAIOSFODNN7EXAMPLE"}, {"ok": True}],
        "API-Key": 42,
        "Bearer abc": "a secret as a key takes its value with it",
    }
    assert redact(document, secrets=[]) == {
        "serviceId": "svc-demo",
        "adapter": {"response": {"Token": REDACTED, "headers": {"authorization": REDACTED}}},
        "steps": [{"note": f"used {REDACTED}"}, {"ok": True}],
        "API-Key": REDACTED,
        f"{REDACTED}#4": REDACTED,
    }


def test_configured_tokens_are_redacted_in_audit_metadata(db):
    e = AuditEvent(actor="a", action="x.y", subject_type="T", subject_id="1", metadata={"echo": f"got {CONFIGURED}"})
    e.save()
    assert AuditEvent.objects.get(seq=e.seq).metadata == {"echo": f"got {REDACTED}"}


@pytest.mark.django_db
def test_the_same_rule_redacts_workflow_log_meta_and_message(make_release):
    run = WorkflowRun(kind="Deploy", release=make_release(), actor="alice")
    run.save()
    entry = RunLogEntry(
        run=run,
        message="pushed with Bearer sekritsekrit123 to registry",
        meta={"registry": {"password": "hunter2"}, "n": 1, "note": "key AKIAIOSFODNN7EXAMPLE"},
    )
    entry.save()
    stored = RunLogEntry.objects.get(pk=entry.pk)
    assert stored.message == f"pushed with {REDACTED} to registry"
    assert stored.meta == {"registry": {"password": REDACTED}, "n": 1, "note": f"key {REDACTED}"}


@pytest.mark.usefixtures("demo")
def test_url_credentials_reach_neither_the_audit_trail_nor_its_mirror(audit_log, django_capture_on_commit_callbacks):
    from tests.api.conftest import Api

    link = "https://ops:hunter2hunter2@pd.example.com/i/9?token=abc123abc123&password=pw123456&view=full"
    kept = "https://REDACTED@pd.example.com/i/9?token=[REDACTED]&password=[REDACTED]&view=full"
    with django_capture_on_commit_callbacks(execute=True):
        response = Api("deployer").post(
            "/api/incidents/", {"serviceId": "svc-demo", "severity": "low", "link": link, "title": "see link"}
        )
    assert response.status_code == 201, response.content
    assert response.json()["link"] == kept  # still a link to the incident, without its credentials
    event = AuditEvent.objects.get(action="incident.create", subject_id=response.json()["id"])
    assert event.metadata["link"] == kept
    mirrored = [json.loads(line) for line in audit_log.read_text().splitlines()]
    assert mirrored[-1]["seq"] == event.seq and mirrored[-1]["metadata"]["link"] == kept
    for secret in ("ops:hunter2hunter2", "hunter2hunter2", "abc123abc123", "pw123456"):
        assert secret not in audit_log.read_text() and secret not in json.dumps(event.metadata)
