"""No secret-shaped key or value survives redaction, at any depth (property tests with hypothesis)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.redaction import REDACTED, SECRET_KEY_NAME, SECRET_SHAPES, redact
from releases.models import RunLogEntry, WorkflowRun
from tests.conftest import TOKENS

CONFIGURED = TOKENS["admin"]

aws_key = st.from_regex(r"(AKIA|ASIA)[A-Z0-9]{16}", fullmatch=True)
bearer = st.from_regex(r"Bearer [A-Za-z0-9._~+/-]{8,40}", fullmatch=True)
b64 = st.from_regex(r"[A-Za-z0-9_-]{4,30}", fullmatch=True)
jwt = st.builds(lambda a, b, c: f"eyJ{a}.eyJ{b}.{c}", b64, b64, b64)
pem = st.just("-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----")
secret_values = st.one_of(aws_key, bearer, jwt, pem, st.just(CONFIGURED))
# A secret may stand alone or inside other text.
embedded = st.builds(
    lambda before, s, after: f"{before}{s}{after}", st.text(max_size=8), secret_values, st.text(max_size=8)
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
    lambda k: not SECRET_KEY_NAME.search(k)
)
leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20), embedded)
documents = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(plain_keys, secret_key_names, secret_values), children, max_size=4),
    ),
    max_leaves=30,
)


def walk(value, key=None):
    yield key, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, k
            yield from walk(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item, key)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(documents)
def test_nothing_secret_shaped_survives(document):
    redacted = redact(document, secrets=[CONFIGURED])
    for key, value in walk(redacted):
        if isinstance(value, str):
            assert not SECRET_SHAPES.search(value) and CONFIGURED not in value, value
        if isinstance(key, str) and SECRET_KEY_NAME.search(key) and not key.startswith(REDACTED):
            assert value in (REDACTED, key)
    assert CONFIGURED not in json.dumps(redacted)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.dictionaries(plain_keys, st.one_of(st.integers(), st.booleans(), st.text(alphabet="abc xyz-_.:/", max_size=20)))
)
def test_harmless_documents_come_through_unchanged(document):
    assert redact(document, secrets=[CONFIGURED]) == document


def test_examples_from_decisions_md():
    document = {
        "serviceId": "svc-demo",
        "adapter": {"response": {"Token": "t0ps3cret", "headers": {"authorization": "Bearer abc.def"}}},
        "steps": [{"note": "used AKIAIOSFODNN7EXAMPLE"}, {"ok": True}],
        "API-Key": 42,
    }
    assert redact(document, secrets=[]) == {
        "serviceId": "svc-demo",
        "adapter": {"response": {"Token": REDACTED, "headers": {"authorization": REDACTED}}},
        "steps": [{"note": REDACTED}, {"ok": True}],
        "API-Key": REDACTED,
    }


def test_configured_tokens_are_redacted_in_audit_metadata(db):
    from audit.models import AuditEvent

    e = AuditEvent(actor="a", action="x.y", subject_type="T", subject_id="1", metadata={"echo": f"got {CONFIGURED}"})
    e.save()
    assert AuditEvent.objects.get(seq=e.seq).metadata == {"echo": REDACTED}


@pytest.mark.django_db
def test_the_same_rule_redacts_workflow_log_meta(make_release):
    run = WorkflowRun(kind="Deploy", release=make_release(), actor="alice")
    run.save()
    entry = RunLogEntry(run=run, message="pushed image", meta={"registry": {"password": "hunter2"}, "n": 1})
    entry.save()
    assert RunLogEntry.objects.get(pk=entry.pk).meta == {"registry": {"password": REDACTED}, "n": 1}
