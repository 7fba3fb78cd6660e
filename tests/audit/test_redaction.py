"""Redaction (controlplane/redaction.py), judged by an independent oracle: the secrets hypothesis generates
must not survive, whatever the redactor's own patterns say. Spans are replaced, the rest of a text is kept.
Detection (`secrets_in`) finds exactly what redaction would replace, and names it without echoing it:
entities refuse such input, records are redacted."""

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from audit.writer import record
from controlplane.identity.context import acting_as
from controlplane.redaction import REDACTED, is_secret_shaped, redact, redact_text, refusal, secrets_in
from releases.lifecycle import begin_rollout
from releases.models import RunLogEntry, WorkflowRun
from tests.audit.leaks import CONFIGURED, FOUND, embedded
from tests.conftest import examples
from tests.environment import cost_ratio

# The key names the spec lists (README, "Audit trail"), written out here rather than taken from the implementation.
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


@settings(max_examples=examples(150))
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


@settings(max_examples=examples(100))
@given(embedded())
def test_only_the_secret_span_is_replaced(case):
    text, leak = case
    redacted = redact_text(text, secrets=[CONFIGURED])
    assert not any(secret in redacted for secret in leak.vanish), (leak.kind, redacted)
    assert REDACTED in redacted or "REDACTED@" in redacted
    if leak.kind in ("aws", "jwt", "configured"):
        # A self-contained token: the text around it is kept as it was.
        assert redacted == text.replace(leak.text, REDACTED, 1)


@settings(max_examples=examples(100))
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
        # A kubeconfig's credentials, as YAML and as JSON, and AWS secret keys under their names.
        (
            "users:\n- name: ci\n  user:\n    token: sha256~0123456789abcdefABCDEF",
            "users:\n- name: ci\n  user:\n    [REDACTED]",
        ),
        ('{"client-key-data": "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo="}', '{"[REDACTED]"}'),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "[REDACTED]"),
        ('"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}', '"[REDACTED]"}'),
        # Not secrets: left alone.
        (
            "the token: short; a token bucket; secretAccessKey: none",
            "the token: short; a token bucket; secretAccessKey: none",
        ),
        ("region asia-southeast1, mail bob@example.com", "region asia-southeast1, mail bob@example.com"),
        ("https://example.com/search?q=token&type=code", "https://example.com/search?q=token&type=code"),
    ],
)
def test_span_examples(text, expected):
    assert redact_text(text, secrets=[CONFIGURED]) == expected
    assert redact_text(expected, secrets=[CONFIGURED]) == expected  # redacting twice changes nothing


def test_examples_from_the_spec():
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
    run = WorkflowRun(kind="Deploy", release=begin_rollout(make_release()), actor="alice")
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


LINK = "https://ops:hunter2hunter2@pd.example.com/i/9?token=abc123abc123&password=pw123456&view=full"
LINK_SECRETS = ("ops:hunter2hunter2", "hunter2hunter2", "abc123abc123", "pw123456")


@pytest.mark.usefixtures("demo")
def test_url_credentials_in_an_incident_link_are_refused_and_reach_no_audit_event(
    audit_log, django_capture_on_commit_callbacks
):
    from tests.api.conftest import Api

    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    with django_capture_on_commit_callbacks(execute=True):
        response = Api("deployer").post(
            "/api/incidents/", {"serviceId": "svc-demo", "severity": "low", "link": LINK, "title": "see link"}
        )
    assert response.status_code == 400, response.content
    assert response.json() == {
        "link": [
            "must not contain a secret (found credentials in a URL and a secret-named query parameter); "
            "the control plane stores no credentials."
        ]
    }
    assert not AuditEvent.objects.filter(seq__gt=last).exists()  # a refused request changes nothing
    mirror = audit_log.read_text() if audit_log.exists() else ""
    for secret in LINK_SECRETS:
        assert secret not in response.content.decode() and secret not in mirror


def test_url_credentials_in_audit_metadata_are_redacted_and_the_link_stays_a_link(
    db, audit_log, django_capture_on_commit_callbacks
):
    kept = "https://REDACTED@pd.example.com/i/9?token=[REDACTED]&password=[REDACTED]&view=full"
    with django_capture_on_commit_callbacks(execute=True), acting_as("sync"):
        event = record("incident.mirror", "Incident", "inc-9", {"link": LINK})  # written by the system
    assert AuditEvent.objects.get(seq=event.seq).metadata["link"] == kept
    mirrored = [json.loads(line) for line in audit_log.read_text().splitlines()]
    assert mirrored[-1]["seq"] == event.seq and mirrored[-1]["metadata"]["link"] == kept
    for secret in LINK_SECRETS:
        assert secret not in audit_log.read_text()


# --- detection: what entities refuse ---


@settings(max_examples=examples(100))
@given(embedded())
def test_detection_names_what_it_found_and_never_echoes_it(case):
    text, leak = case
    found = secrets_in(text, secrets=[CONFIGURED])
    assert FOUND[leak.kind] in found, (leak.kind, found)
    message = refusal(found)
    assert message.startswith("must not contain a secret (found ")
    assert message.endswith("); the control plane stores no credentials.")
    assert not any(secret in message for secret in leak.vanish)


@settings(max_examples=examples(150))
@given(st.one_of(documents(), st.text(max_size=40).map(lambda t: (t, [])), embedded().map(lambda c: (c[0], [c[1]]))))
def test_detection_finds_exactly_what_redaction_replaces(case):
    value, _ = case
    assert bool(secrets_in(value, secrets=[CONFIGURED])) == (redact(value, secrets=[CONFIGURED]) != value)
    if isinstance(value, str):
        assert bool(secrets_in(value, secrets=[CONFIGURED])) == is_secret_shaped(value, secrets=[CONFIGURED])


# What a reader of a run log or an audit event sees, written out by hand: each kind of secret in the shape it
# arrives in, and what is left of the text. (Judged against these strings, not the redactor's own detector,
# which would agree with whatever the redactor does.)
SEEN_AFTER_REDACTION = [
    ("pushed ASIAY34FZKBOKMUTVV7A to the bucket", "pushed [REDACTED] to the bucket"),
    ("auth with bearer t0k3n-abc then done", "auth with [REDACTED] then done"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "Authorization: [REDACTED]"),
    ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA\n-----END EC PRIVATE KEY-----\nnext line", "[REDACTED]\nnext line"),
    ("git clone ssh://git:ghp_x1y2@github.com/a/b.git", "git clone ssh://REDACTED@github.com/a/b.git"),
    ('curl "https://h.example.com/x?a=1;sig=abc123&b=2"', 'curl "https://h.example.com/x?a=1;sig=[REDACTED]&b=2"'),
    (f"token={CONFIGURED}; retrying", "token=[REDACTED]; retrying"),
]


@pytest.mark.parametrize(("text", "expected"), SEEN_AFTER_REDACTION)
def test_what_a_reader_sees_once_a_secret_is_redacted(text, expected):
    assert redact_text(text, secrets=[CONFIGURED]) == expected


def test_secret_named_keys_lose_their_values_whatever_the_values_are():
    document = {
        "tokens": ["a", "b"],
        "db": {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI", "host": "db.internal", "port": 5432},
        "Set-Cookie": {"sid": "x"},
        "note": "password rotation done",
    }
    assert redact(document, secrets=[]) == {
        "tokens": REDACTED,
        "db": {"AWS_SECRET_ACCESS_KEY": REDACTED, "host": "db.internal", "port": 5432},
        "Set-Cookie": REDACTED,
        "note": "password rotation done",
    }


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("Bearer sekrit123", ["a bearer token"]),
        ("key AKIAIOSFODNN7EXAMPLE used", ["an AWS access key id"]),
        ("a eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl b", ["a JWT"]),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA", ["a private key"]),
        (f"echo {CONFIGURED}", ["a configured secret"]),
        ("https://user:pw@github.com/a/b", ["credentials in a URL"]),
        ("https://pd.example.com/i/1?token=abc", ["a secret-named query parameter"]),
        ("    token: sha256~0123456789abcdefABCDEF", ["a kubeconfig credential"]),
        ("aws_session_token=IQoJb3JpZ2luX2VjEJr//////////wEaCXVz", ["an AWS secret key"]),
        (
            "Bearer x and https://u:p@h/?sig=y",
            ["a bearer token", "credentials in a URL", "a secret-named query parameter"],
        ),
        # In JSON: values under secret-named keys, and secrets in keys.
        ({"registry": {"password": "hunter2"}}, ["a value under a secret-named key"]),
        ({"token_ttl": 300}, ["a value under a secret-named key"]),
        ([{"Bearer abc": 1}], ["a bearer token"]),
        # Nothing to find.
        ("2024.10.02", []),
        ("https://pd.example.com/i/1?view=full", []),
        ("https://example.com/search?q=token&type=code", []),
        ({"note": "password rotation done", "steps": ["token", 1]}, []),
        # Already redacted: nothing left to find.
        ("https://REDACTED@pd.example.com/i/1?token=[REDACTED]", []),
        ({"password": REDACTED}, []),
    ],
)
def test_detection_examples(value, found):
    assert secrets_in(value, secrets=[CONFIGURED]) == found


def test_a_refusal_names_every_kind_found():
    assert refusal(["a bearer token"]) == (
        "must not contain a secret (found a bearer token); the control plane stores no credentials."
    )
    assert refusal(["a JWT", "credentials in a URL", "a private key"]) == (
        "must not contain a secret (found a JWT, credentials in a URL and a private key); "
        "the control plane stores no credentials."
    )


def test_entities_users_write_refuse_secrets_and_records_the_system_writes_do_not():
    from django.apps import apps

    refusing = {m._meta.label for m in apps.get_models() if getattr(m, "REFUSES_SECRETS", False)}
    assert refusing == {
        "services.Service",
        "services.Environment",
        "services.ChangeWindow",
        "services.Freeze",
        "releases.Release",
        "incidents.Incident",
        "tokens.ApiToken",  # its name
        "integrations.Integration",  # its name and service map
        "integrations.WebhookEndpoint",  # its description (its URL may carry a receiver's token: admins only)
    }


@pytest.mark.django_db
def test_records_are_never_refused_for_a_secret(make_release):
    run = WorkflowRun(kind="Deploy", release=begin_rollout(make_release()), actor=f"ci {CONFIGURED}")
    run.save()  # a run's actor is the system's to write: redacted, not refused
    assert WorkflowRun.objects.get(pk=run.pk).actor == f"ci {REDACTED}"
    entry = RunLogEntry(run=run, message="Bearer abcdefgh", meta={"Bearer abc": {"token": "x"}})
    entry.save()
    assert RunLogEntry.objects.get(pk=entry.pk).message == REDACTED
    event = AuditEvent(actor="a", action="x.y", subject_type="T", subject_id="AKIAIOSFODNN7EXAMPLE")
    event.save()
    assert AuditEvent.objects.get(seq=event.seq).subject_id == REDACTED


def test_prose_about_a_bearer_is_not_a_bearer_token():
    assert redact_text("Standard bearer node down in eu-west-1") == "Standard bearer node down in eu-west-1"
    assert redact_text("bearer 0123456789abcdefXYZ") == REDACTED
    assert redact_text("BEARER tokenWith1digit") == REDACTED
    assert redact_text("uses bearer authentication") == "uses bearer authentication"


# Text built to make a backtracking pattern quadratic (each one took minutes at 256 KiB before the patterns
# were made linear). The bound is some 500 times what a linear scan takes here, so a shared machine's
# noise cannot fail it; a quadratic pattern misses it by minutes. Each is made at two sizes, a quarter and the
# whole: in proportion, the whole costs about 4 times as much; as a square, 16.
ADVERSARIAL = {
    "JWT starts": lambda n: "eyJ" * n,
    "scheme characters": lambda n: "a." * (n * 3 // 2) + "://",
    "secret-named parameter": lambda n: "=?" + "token" * (n * 3 // 5),
}


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_redaction_takes_time_in_proportion_to_the_text(text):
    assert cost_ratio(redact_text, text(87_000 // 4), text(87_000)) < 8


def test_a_secret_parameter_inside_another_parameters_value_is_found():
    text = "next=https://grafana.example.com/d/abc?apikey=58rQZkrNi0DZ&orgId=1"
    assert redact_text(f";{text}") == ";next=https://grafana.example.com/d/abc?apikey=[REDACTED]&orgId=1"
