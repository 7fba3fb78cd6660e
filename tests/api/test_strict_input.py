"""Strict input: every bad request is a 400 naming the field (or parameter) and the rule, never a 500 and
never a 2xx that stored something other than what was sent; and a refused request writes nothing."""

import base64
import json
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.db import connection
from django.test import Client
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from audit.models import AuditChainHead, AuditEvent
from controlplane.api import base, errors, parsers
from controlplane.api.urls import router
from controlplane.errors import RACE_PRONE_CONSTRAINTS
from controlplane.timestamps import RFC3339_RULE
from incidents.models import Incident
from releases.models import Release, WorkflowRun
from services.api import EnvironmentSerializer
from services.models import Environment, Service
from tests.conftest import bearer, loaded_once
from tests.environment import cost_ratio

demo = loaded_once("demo")  # every test here runs on the demo data, loaded once for the module

NOT_A_STRING = ["must be a string."]
UNKNOWN = ["is not a field of this resource."]
CURSOR = ["is not a cursor this API issued."]
PAGE_SIZE = ["must be a whole number from 1 to 500."]
RESUME = ["must be a whole number from 0 to 9223372036854775807."]
TWICE = ["is given more than once."]
EMPTY = ["is empty: give a value, or leave the parameter out."]

SERVICE = {"name": "S", "repo": "github.com/a/s", "adapters": {"deployments": ["aws"]}}
ENVIRONMENT = {"name": "qa"}
RELEASE = {"serviceId": "svc-demo", "envId": "env-prod", "sha": "abcdef1", "version": "2"}
INCIDENT = {"serviceId": "svc-demo", "severity": "low", "link": "https://pd.example.com/1"}

# Every write: (method, url, a valid body for it).
WRITES = [
    ("post", "/api/services/", SERVICE),
    ("put", "/api/services/svc-demo/", {**SERVICE, "environments": ["env-staging", "env-prod"]}),
    ("patch", "/api/services/svc-demo/", {"name": "Renamed"}),
    ("post", "/api/environments/", ENVIRONMENT),
    ("patch", "/api/environments/env-staging/", {"cluster": "c1"}),
    ("post", "/api/releases/", RELEASE),
    ("patch", "/api/releases/rel-123/", {"version": "3"}),
    ("post", "/api/releases/rel-123/promote/", {"envId": "env-prod"}),
    ("post", "/api/releases/rel-123/deploy/", {}),
    ("post", "/api/incidents/", INCIDENT),
    ("patch", "/api/incidents/inc-789/", {"severity": "high"}),
    ("post", "/api/incidents/inc-789/resolve/", {}),
    ("post", "/api/incidents/inc-789/acknowledge/", {}),
    ("post", "/api/services/svc-demo/restore/", {}),
]
WRITE_IDS = [f"{method} {url}" for method, url, _ in WRITES]


def snapshot():
    """What a refused request must leave as it was."""
    return (
        AuditEvent.objects.count(),
        list(Service.objects.values_list("id", "name", "repo", "archived_at").order_by("id")),
        list(Environment.objects.values_list("id", "name", "cluster", "archived_at").order_by("id")),
        list(Release.objects.values_list("id", "version", "status").order_by("id")),
        list(Incident.objects.values_list("id", "severity", "status", "title").order_by("id")),
        WorkflowRun.objects.count(),
    )


@pytest.fixture
def unchanged(demo):
    """Asserts, after the test, that nothing was written."""
    before = snapshot()
    yield
    assert snapshot() == before


def send(api, method, url, body):
    return getattr(api("admin"), method)(url, body)


def refused_with(response, field, messages=None):
    """A 400 whose body names `field` (with exactly `messages`, when given), encodable as UTF-8."""
    assert response.status_code == 400, response.content
    response.content.decode("utf-8")  # never a lone surrogate echoed back
    body = response.json()
    assert field in body, body
    if messages is not None:
        assert body[field] == messages, body
    return body


# --- 1. nesting depth ---


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("text", ["[" * 10_000, '{"a":' * 10_000, '{"name": ' + "[" * 32 + "]" * 32 + "}"])
@pytest.mark.parametrize(("method", "url", "_"), WRITES, ids=WRITE_IDS)
def test_json_nested_deeper_than_the_limit_is_400(api, method, url, _, text):
    response = send(api, method, url, text)
    assert response.status_code == 400, response.content
    assert response.json() == {"detail": "JSON nesting deeper than 32 levels."}


def test_nesting_up_to_the_limit_is_parsed():
    assert parsers.loads("[" * 32 + "]" * 32) is not None
    assert parsers.loads('{"a": "' + "[" * 100 + '"}') == {"a": "[" * 100}  # brackets in strings do not count
    assert parsers.nesting_depth_exceeds('{"a": "\\"[[[["}', limit=1) is False


def test_the_nesting_scan_reads_each_quote_once():
    # An unterminated string of escaped quotes made the scan restart at every quote: minutes at 256 KiB.
    # In proportion, four times the text costs about four times as much; as a square, sixteen.
    assert parsers.nesting_depth_exceeds('"' + '\\"' * 131_000) is False
    assert cost_ratio(parsers.nesting_depth_exceeds, '"' + '\\"' * 32_750, '"' + '\\"' * 131_000) < 8


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("charset", ["utf-7", "utf-16", "latin-1"])
def test_a_body_in_another_charset_than_utf8_is_415(admin, charset):
    # UTF-7 spells a lone surrogate without the escape the parser looks for ("+2AA-" is "\ud800").
    response = admin.post(
        "/api/services/",
        '{"name": "x", "repo": "github.com/a/b", "adapters": {"deployments": ["k8s"]}, "environments": ["+2AA-"]}',
        content_type=f"application/json; charset={charset}",
    )
    assert response.status_code == 415, response.content
    assert "UTF-8" in response.json()["detail"]


def test_utf8_by_name_is_json(admin):
    response = admin.post("/api/environments/", ENVIRONMENT, content_type="application/json; charset=UTF-8")
    assert response.status_code == 201, response.content


# --- 2. duplicate keys ---


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("method", "url", "text", "field"),
    [
        ("post", "/api/environments/", '{"name": "qa", "name": "qb"}', "name"),
        ("patch", "/api/incidents/inc-789/", '{"severity": "low", "severity": "high"}', "severity"),
        ("post", "/api/releases/rel-123/promote/", '{"envId": "env-prod", "envId": "env-staging"}', "envId"),
        (
            "post",
            "/api/services/",
            '{"name": "S", "environments": [{"id": "env-prod", "id": "x"}]}',
            "environments.0.id",
        ),
        ("post", "/api/incidents/inc-789/resolve/", '{"a": 1, "a": 1}', "a"),
    ],
)
def test_a_key_given_twice_is_400_naming_it(admin, method, url, text, field):
    refused_with(getattr(admin, method)(url, text), field, [parsers.DUPLICATE_MESSAGE])


# --- 3. lone surrogates ---


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("method", "url", "text", "field", "message"),
    [
        ("post", "/api/environments/", '{"name": "qa", "\\ud800": 1}', "\\ud800", parsers.SURROGATE_KEY_MESSAGE),
        ("post", "/api/environments/", '{"name": "q\\udfffa"}', "name", parsers.SURROGATE_MESSAGE),
        ("post", "/api/incidents/", json.dumps({**INCIDENT, "severity": "\ud800"}), "severity", None),
        ("post", "/api/services/", json.dumps({**SERVICE, "environments": ["\ud800"]}), "environments.0", None),
        ("patch", "/api/incidents/inc-789/", '{"title": "a\\ud83d"}', "title", parsers.SURROGATE_MESSAGE),
        ("post", "/api/releases/rel-123/promote/", '{"envId": "\\ude00"}', "envId", parsers.SURROGATE_MESSAGE),
        ("post", "/api/environments/", '"\\ud800"', "nonFieldErrors", parsers.SURROGATE_MESSAGE),
    ],
)
def test_a_lone_surrogate_is_400_naming_where_without_echoing_it(admin, method, url, text, field, message):
    refused_with(getattr(admin, method)(url, text), field, [message or parsers.SURROGATE_MESSAGE])


def test_a_surrogate_pair_is_a_character(admin):
    response = admin.post("/api/incidents/", {**INCIDENT, "title": "fire \ud83d\udd25"})
    assert response.status_code == 201 and response.json()["title"] == "fire \U0001f525"


def test_error_bodies_never_carry_unencodable_text():
    response = errors.exception_handler(serializers.ValidationError({"\udc80x": ["bad \ud800"]}), {})
    assert response.data == {"\\udc80x": ["bad \\ud800"]}
    JSONRenderer().render(response.data)  # would raise UnicodeEncodeError on the raw text


# --- 4. cursors ---

LISTS = ["/api/services/", "/api/environments/", "/api/releases/", "/api/workflow-runs/", "/api/incidents/"]
LISTS += ["/api/audit-events/", "/api/services/index/"]


def b64(text: str) -> str:
    return quote(base64.b64encode(text.encode()).decode())


FORGED = [
    b64("p=abc"),
    b64("p="),
    b64("p=[]"),
    b64("o=1&p=x"),
    b64("o=-1"),
    b64("r=x"),
    "not-base64!",
    "A" * 20_000,
]


@pytest.mark.parametrize("cursor", FORGED, ids=lambda c: c[:20])
@pytest.mark.parametrize("url", LISTS)
def test_a_cursor_the_api_did_not_issue_is_400(viewer, url, cursor):
    refused_with(viewer.get(f"{url}?cursor={cursor}"), "cursor", CURSOR)


def test_a_cursor_issued_for_another_list_is_400(viewer, admin):
    for n in range(3):
        admin.post("/api/environments/", {"name": f"many-{n}"})
    issued = viewer.get("/api/environments/?pageSize=1").json()["next"]
    cursor = parse_qs(urlsplit(issued).query)["cursor"][0]
    assert viewer.get(f"/api/environments/?cursor={quote(cursor)}&pageSize=1").status_code == 200
    refused_with(viewer.get(f"/api/audit-events/?cursor={quote(cursor)}"), "cursor", CURSOR)
    tampered = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")
    refused_with(viewer.get(f"/api/environments/?cursor={quote(tampered)}"), "cursor", CURSOR)


def _walk(viewer, url, key):
    """Follow `next` to the end and `previous` back to the start; return both sequences of keys."""
    forward, page = [], viewer.get(url).json()
    while True:
        forward += [item[key] for item in page["results"]]
        if not page["next"]:
            break
        page = viewer.get(page["next"]).json()
    backward = [item[key] for item in page["results"]]
    while page["previous"]:
        page = viewer.get(page["previous"]).json()
        backward = [item[key] for item in page["results"]] + backward
    return forward, backward


@pytest.mark.parametrize(
    ("url", "key"), [("/api/audit-events/?pageSize=2", "seq"), ("/api/releases/?pageSize=1", "id")]
)
def test_next_and_previous_links_walk_the_whole_list(viewer, admin, url, key):
    for n in range(4):
        admin.post("/api/environments/", {"name": f"walk-{n}"})
        admin.post("/api/releases/", {**RELEASE, "version": f"v{n}"})
    everything = [item[key] for item in viewer.get(url.split("?")[0] + "?pageSize=500").json()["results"]]
    forward, backward = _walk(viewer, url, key)
    assert forward == everything == backward and len(everything) > 4


# --- 5. pageSize ---


@pytest.mark.parametrize("size", ["-1", "0", "abc", "1.5", "501", "1e23", "\uff15", "²", " 5", "5 ", "+5", "9" * 5000])
@pytest.mark.parametrize("url", ["/api/audit-events/", "/api/services/", "/api/services/index/"])
def test_page_size_is_a_whole_number_from_1_to_500(viewer, url, size):
    refused_with(viewer.get(f"{url}?pageSize={quote(size)}"), "pageSize", PAGE_SIZE)


@pytest.mark.parametrize("size", ["1", "500", "050"])
def test_page_sizes_in_range_are_taken(viewer, size):
    assert viewer.get(f"/api/audit-events/?pageSize={size}").status_code == 200


# --- 6. strict types ---

STRING_FIELDS = [
    ("post", "/api/services/", {**SERVICE, "name": 123}, "name"),
    ("post", "/api/services/", {**SERVICE, "repo": 5}, "repo"),
    ("post", "/api/services/", {**SERVICE, "id": 7}, "id"),
    ("post", "/api/services/", {**SERVICE, "name": True}, "name"),
    ("patch", "/api/services/svc-demo/", {"name": ["Demo"]}, "name"),
    ("post", "/api/environments/", {"name": 1.5}, "name"),
    ("post", "/api/environments/", {"name": "qa", "region": 5}, "region"),
    ("post", "/api/environments/", {"name": "qa", "cluster": False}, "cluster"),
    ("post", "/api/environments/", {"name": "qa", "policyRefs": [1]}, "policyRefs"),
    ("post", "/api/releases/", {**RELEASE, "version": 1.5}, "version"),
    ("post", "/api/releases/", {**RELEASE, "sha": 1234567}, "sha"),
    ("post", "/api/releases/", {**RELEASE, "serviceId": 1}, "serviceId"),
    ("post", "/api/releases/", {**RELEASE, "envId": {"id": "env-prod"}}, "envId"),
    ("patch", "/api/releases/rel-123/", {"version": 2}, "version"),
    ("post", "/api/releases/rel-123/promote/", {"envId": 5}, "envId"),
    ("post", "/api/incidents/", {**INCIDENT, "title": 123}, "title"),
    ("post", "/api/incidents/", {**INCIDENT, "link": 5}, "link"),
    ("post", "/api/incidents/", {**INCIDENT, "severity": 1}, "severity"),
    ("post", "/api/incidents/", {**INCIDENT, "severity": ["low"]}, "severity"),
    ("post", "/api/incidents/", {**INCIDENT, "startedAt": 1700000000}, "startedAt"),
    ("patch", "/api/incidents/inc-789/", {"title": False}, "title"),
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(("method", "url", "body", "field"), STRING_FIELDS, ids=lambda v: str(v)[:30])
def test_a_string_field_takes_only_a_string(admin, method, url, body, field):
    body = refused_with(getattr(admin, method)(url, body), field)
    assert any("must be a string." in m for m in body[field]), body


def _input_serializers():
    for _, viewset, _ in router.registry:
        if any(hasattr(viewset, name) for name in ("create", "update")):
            yield viewset.serializer_class
        yield from viewset.action_bodies.values()


def _fields(serializer):
    for name, field in serializer().fields.items():
        yield name, field
        if isinstance(field, serializers.ListField):
            yield f"{name}[]", field.child


def test_every_string_field_of_every_input_is_strict():
    plain = [
        f"{serializer.__name__}.{name}"
        for serializer in _input_serializers()
        for name, field in _fields(serializer)
        if not field.read_only
        and (
            (isinstance(field, serializers.CharField) and not isinstance(field, base.String))
            or (isinstance(field, serializers.ChoiceField) and not isinstance(field, base.Choice))
        )
    ]
    assert plain == []
    assert EnvironmentSerializer in set(_input_serializers())


# --- 7. actions ---

BODYLESS = [
    "/api/releases/{draft}/deploy/",
    "/api/incidents/inc-789/acknowledge/",
    "/api/incidents/inc-789/resolve/",
    "/api/environments/env-staging/restore/",
    "/api/services/svc-demo/restore/",
]


@pytest.fixture
def draft(make_release):
    service = Service.objects.get(pk="svc-demo")
    # In staging, which no policy gates (prod is reached only by promotion from staging, in its window).
    return make_release(service=service, environment=Environment.objects.get(pk="env-staging")).id


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [(url, {"force": True}, "force") for url in BODYLESS]
    + [("/api/releases/rel-123/promote/", {"envId": "env-prod", "force": True}, "force")]
    + [(url, [], "nonFieldErrors") for url in [*BODYLESS, "/api/releases/rel-123/promote/"]]
    + [(url, '"go"', "nonFieldErrors") for url in BODYLESS]
    + [(url, "null", "nonFieldErrors") for url in BODYLESS],
)
def test_actions_refuse_unknown_fields_and_non_objects(api, draft, url, body, field):
    before = snapshot()
    response = api("admin").post(url.format(draft=draft), body)
    refused_with(response, field, UNKNOWN if field == "force" else None)
    assert snapshot() == before


@pytest.mark.parametrize("empty", ["", "{}"])
def test_bodyless_actions_take_an_empty_body_or_an_empty_object(deployer, draft, empty):
    response = deployer.post(f"/api/releases/{draft}/deploy/", empty)
    assert response.status_code == 202, response.content
    assert deployer.post("/api/incidents/inc-789/resolve/", empty).status_code == 200


def test_a_bad_body_for_a_viewer_is_still_403(viewer):
    assert viewer.post("/api/incidents/inc-789/resolve/", {"force": True}).status_code == 403


# --- 8. times ---

BAD_TIMES = [
    "2024-01-01",
    "2024-01-01T00:00:00",
    "2024-W01",
    "20240101T000000Z",
    "2024-01-01T00:00:00+00:00:00",
    "2024-01-01T00:00:00 Z",
    "2024-01-01T00:00:00+0000",
    "2024-02-30T00:00:00Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01T00:00:60Z",
    "2024-01-01T00:00:00+24:00",
    "\uff12\uff10\uff12\uff14-01-01T00:00:00Z"  # full-width digits,
    "9999-12-31T23:00:00-05:00",
    "",
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("when", BAD_TIMES)
@pytest.mark.parametrize(
    ("method", "url", "body"), [("post", "/api/incidents/", INCIDENT), ("patch", "/api/incidents/inc-789/", {})]
)
def test_incident_times_must_be_rfc3339_with_an_offset(admin, method, url, body, when):
    body = refused_with(getattr(admin, method)(url, {**body, "startedAt": when}), "startedAt")
    assert any("RFC 3339" in m or "out of range" in m for m in body["startedAt"]), body


@pytest.mark.parametrize(
    ("when", "stored"),
    [
        ("2024-01-01T00:00:00+02:00", "2023-12-31T22:00:00Z"),
        ("2024-01-01t00:00:00z", "2024-01-01T00:00:00Z"),
        ("2024-01-01T00:00:00.123456789-00:30", "2024-01-01T00:30:00.123456Z"),
    ],
)
def test_rfc3339_times_with_any_offset_are_stored_in_utc(admin, when, stored):
    response = admin.post("/api/incidents/", {**INCIDENT, "startedAt": when})
    assert response.status_code == 201, response.content
    assert response.json()["startedAt"] == stored


@pytest.mark.parametrize("when", [t for t in BAD_TIMES if t])
@pytest.mark.parametrize("param", ["since", "until"])
def test_time_filters_must_be_rfc3339_with_an_offset(viewer, param, when):
    body = refused_with(viewer.get(f"/api/audit-events/?{param}={quote(when)}"), param)
    assert any("RFC 3339" in m or "out of range" in m for m in body[param]), body


def test_an_unencoded_plus_in_a_time_filter_is_named(viewer):
    body = refused_with(viewer.get("/api/audit-events/?since=2024-01-01T00:00:00+00:00"), "since")
    assert RFC3339_RULE in body["since"][0] and "%2B" in body["since"][0], body


@pytest.mark.parametrize("when", ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5+05:30", "1970-01-01t00:00:00z"])
def test_time_filters_take_rfc3339(viewer, when):
    assert viewer.get(f"/api/audit-events/?since={quote(when)}").status_code == 200


@pytest.mark.parametrize("value", ["maybe", "2", "1", "True", "yes", " true"])
def test_a_boolean_filter_is_true_or_false(viewer, value):
    refused_with(viewer.get(f"/api/incidents/?open={quote(value)}"), "open", ["must be true or false."])


# --- 9. repositories ---


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("repo", ["https://github.com/a/b/../../etc", "github.com/a/./b", "github.com/a/b/.."])
def test_a_repo_with_dot_segments_is_400(admin, repo):
    refused_with(admin.post("/api/services/", {**SERVICE, "repo": repo}), "repo")


# --- 10. a service's environments ---


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("environments", "rule"),
    [
        (["env-prod", "env-prod"], "more than once"),
        (["env-prod", {"id": "env-prod"}], "more than once"),
        ([{"id": "env-prod", "foo": 1}], "'foo' is not a key"),
        ([{"id": "env-prod", "name": "staging"}], "is not the name of env-prod"),
        ([{"id": "env-prod", "name": 5}], "is not the name of env-prod"),
        ([{"name": "prod"}], "must be an environment id"),
        ([5], "must be an environment id"),
    ],
)
@pytest.mark.parametrize(("method", "url"), [("post", "/api/services/"), ("put", "/api/services/svc-demo/")])
def test_environment_refs_are_each_environment_once_by_id(admin, method, url, environments, rule):
    body = refused_with(getattr(admin, method)(url, {**SERVICE, "environments": environments}), "environments")
    assert any(rule in m for m in body["environments"]), body


def test_a_service_read_can_be_written_back(admin):
    service = admin.get("/api/services/svc-demo/").json()
    assert {"id": "env-prod", "name": "prod"} in service["environments"]
    response = admin.put("/api/services/svc-demo/", service)
    assert response.status_code == 200, response.content
    assert response.json() == service


# --- 11. stream resume points ---

STREAMS = ["/api/audit-events/stream", "/api/workflow-runs/run-456/logs/stream"]
BAD_POINTS = ["²", "٣", "\uff15", "-1", "1.0", " 1", "0x10", "9" * 5000, str(2**63)]


@pytest.mark.parametrize("point", BAD_POINTS, ids=lambda p: p[:8])
@pytest.mark.parametrize("url", STREAMS)
def test_a_stream_resume_point_is_a_whole_number_in_range(viewer, url, point):
    refused_with(viewer.get(f"{url}?after={quote(point)}"), "after", RESUME)
    refused_with(viewer.get(url, HTTP_LAST_EVENT_ID=point), "Last-Event-ID", RESUME)


def test_a_stream_resumed_past_the_last_id_there_is_is_refused(viewer):
    # Nothing after it would ever be sent: the next event's id is not after the point.
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    beyond = ["is after the audit trail's head ({}): resume from an id the stream sent."]
    stream = "/api/audit-events/stream"
    refused_with(viewer.get(f"{stream}?after={head + 1}"), "after", [beyond[0].format(head)])
    refused_with(viewer.get(stream, HTTP_LAST_EVENT_ID="999999"), "Last-Event-ID", [beyond[0].format(head)])
    assert viewer.client.head(f"{stream}?after={head}").status_code == 200  # the head itself: from there on
    log = "/api/workflow-runs/run-456/logs/stream"
    last = ["is after the run's last log entry (1): resume from an id the stream sent."]
    refused_with(viewer.get(f"{log}?after=2"), "after", last)
    refused_with(viewer.get(log, HTTP_LAST_EVENT_ID="999999"), "Last-Event-ID", last)
    assert viewer.client.head(log, HTTP_LAST_EVENT_ID="1").status_code == 200


# --- 12. query parameters: each one the endpoint takes, given once, not empty ---

# Every parameter of every list: its filters, then its pages'.
PAGES = ["cursor", "pageSize", "tail"]
LIST_PARAMETERS = {
    "/api/services/": ["name", "q", "adapter", "envId", "archived", *PAGES],
    "/api/services/index/": ["name", "q", "adapter", "envId", "archived", *PAGES],
    "/api/environments/": ["name", "region", "cluster", "archived", *PAGES],
    "/api/releases/": ["serviceId", "envId", "status", "sha", "version", "isCurrent", *PAGES],
    "/api/workflow-runs/": ["releaseId", "serviceId", "envId", "kind", "state", "actor", *PAGES],
    "/api/incidents/": ["serviceId", "severity", "status", "source", "open", *PAGES],
    "/api/audit-events/": ["actor", "action", "subjectType", "subjectId", "serviceId", "since", "until", *PAGES],
}
# What takes no parameter at all: a resource, an action's read, who you are, the streams' status.
TAKES_NONE = [
    "/api/services/svc-demo/",
    "/api/releases/rel-123/",
    "/api/releases/rel-123/timeline/",
    "/api/workflow-runs/run-456/",
    "/api/incidents/inc-789/",
    "/api/audit-events/1/",
    "/api/me/",
    "/api/streams/",
]
STREAMS_TAKE = {
    "/api/workflow-runs/run-456/logs/stream": ["after"],
    "/api/audit-events/stream": ["actor", "action", "subjectType", "subjectId", "serviceId", "after"],
}
# Reads that take parameters of their own (not a list's filters and pages).
READS_TAKE = {"/api/metrics/dora/": ["serviceId", "envId", "since", "until", "drill"]}
# A valid value for each parameter, to give twice.
VALUES = {"archived": "all", "adapter": "k8s", "status": "Active", "kind": "Deploy", "state": "Running"}
VALUES |= {
    "severity": "high",
    "source": "pagerduty",
    "open": "true",
    "isCurrent": "true",
    "since": "2024-01-01T00:00:00Z",
}
VALUES |= {"until": "2030-01-01T00:00:00Z", "pageSize": "5", "tail": "true", "after": "0"}
VALUES |= {"drill": "reworkRate"}


def every_parameter():
    return [(url, name) for url, names in (LIST_PARAMETERS | STREAMS_TAKE | READS_TAKE).items() for name in names]


@pytest.mark.parametrize(("url", "name"), every_parameter())
def test_a_parameter_given_twice_is_refused_not_read_as_its_last_value(admin, url, name):
    value = quote(VALUES.get(name, "x"))
    refused_with(admin.get(f"{url}?{name}={value}&{name}={value}"), name, TWICE)


@pytest.mark.parametrize("blank", ["", " \t"], ids=["empty", "whitespace"])
@pytest.mark.parametrize(("url", "name"), every_parameter())
def test_an_empty_parameter_is_refused_not_read_as_no_filter(admin, url, name, blank):
    # Whitespace alone too: a text filter reads its value stripped, so `?actor=%20` was no filter at all.
    refused_with(admin.get(f"{url}?{name}={quote(blank)}"), name, EMPTY)


@pytest.mark.parametrize("url", [*LIST_PARAMETERS, *STREAMS_TAKE, *READS_TAKE, *TAKES_NONE])
def test_a_parameter_the_endpoint_does_not_take_is_refused_naming_what_it_takes(admin, url):
    takes = ", ".join((LIST_PARAMETERS | STREAMS_TAKE | READS_TAKE).get(url, [])) or "none"
    body = refused_with(admin.get(f"{url}?pagesize=5"), "pagesize")  # a misspelling, say
    assert body == {"pagesize": [body["pagesize"][0]]}
    assert body["pagesize"][0].startswith("is not a parameter of ") and body["pagesize"][0].endswith(
        f"(it takes {takes})."
    )


def test_a_timeline_is_not_paged_so_a_page_size_is_refused(viewer):
    body = refused_with(viewer.get("/api/releases/rel-123/timeline/?pageSize=null"), "pageSize")
    assert body == {"pageSize": ["is not a parameter of this endpoint (it takes none)."]}


def test_every_parameter_given_once_is_taken(admin):
    for url, names in LIST_PARAMETERS.items():
        values = VALUES | ({"status": "triggered"} if url == "/api/incidents/" else {})
        query = "&".join(f"{name}={quote(values.get(name, 'x'))}" for name in names if name != "cursor")
        response = admin.get(f"{url}?{query}")
        assert response.status_code == 200, (url, response.content)
    known = {"serviceId": "svc-demo", "envId": "env-prod"}  # the DORA metrics refuse an unknown one (a 400)
    for url, names in READS_TAKE.items():
        query = "&".join(f"{name}={quote((VALUES | known).get(name, 'x'))}" for name in names)
        response = admin.get(f"{url}?{query}")
        assert response.status_code == 200, (url, response.content)


def test_query_checks_come_after_identity(api):
    assert api(None).get("/api/incidents/?severity=").status_code == 401
    assert api(None).get("/api/workflow-runs/run-456/logs/stream?x=1").status_code == 401


def test_an_incident_link_in_url_characters_and_a_start_not_in_the_future(admin):
    body = refused_with(admin.post("/api/incidents/", {**INCIDENT, "link": 'https://pd.example.com/"1"'}), "link")
    assert body == {
        "link": ["must be an absolute http(s) URL to the source system; write '\"' percent-encoded, as %22."]
    }
    body = refused_with(
        admin.post("/api/incidents/", {**INCIDENT, "startedAt": "2999-01-01T00:00:00+02:00"}), "startedAt"
    )
    assert body == {"startedAt": ["may be at most 5 minutes ahead of the server's clock."]}
    assert not Incident.objects.filter(service_id="svc-demo", link__contains='"').exists()


# --- 13. integrity errors ---


def test_each_race_prone_constraint_exists_in_the_schema():
    with connection.cursor() as cursor:
        for name, (table, columns) in RACE_PRONE_CONSTRAINTS.items():
            constraints = connection.introspection.get_constraints(cursor, table)
            unique = {c_name: c for c_name, c in constraints.items() if c["unique"] or c["primary_key"]}
            assert any(c["columns"] == list(columns) for c in unique.values()), (name, unique)
            if connection.vendor == "postgresql":
                assert unique.get(name, {}).get("columns") == list(columns), (name, unique)


def test_a_race_on_a_named_constraint_is_409(admin, monkeypatch, unchanged):
    # As if another request took the name between validation and the insert.
    monkeypatch.setattr(Environment, "validate_unique", lambda self, exclude=None: None)
    monkeypatch.setattr(Environment, "validate_constraints", lambda self, exclude=None: None)
    response = admin.post("/api/environments/", {"name": "prod", "region": "r", "cluster": "c"})
    assert response.status_code == 409, response.content
    assert "at the same time" in response.json()["detail"]


def test_any_other_integrity_error_is_a_500_not_a_409(monkeypatch, unchanged):
    def broken_create(self, validated_data):
        AuditChainHead.objects.create(pk=2)  # breaks a check constraint no race can break

    monkeypatch.setattr(EnvironmentSerializer, "create", broken_create)
    client = Client(raise_request_exception=False, **bearer("admin"))
    response = client.post("/api/environments/", ENVIRONMENT, content_type="application/json")
    assert response.status_code == 500
