"""The same bad input through REST and through GraphQL is refused with the same messages: the same set of
(field, message) pairs, fields in the same camelCase, REST's nonFieldErrors and `detail` as field null, and
the code standing for REST's status (400 INVALID, 404 NOT_FOUND, 409 CONFLICT)."""

from typing import NamedTuple

import pytest

from incidents import lifecycle as incident_lifecycle
from incidents.models import Incident
from releases import workflows
from releases.models import Release
from services import lifecycle as service_lifecycle
from services.models import Environment, Service
from tests.api.conftest import Api
from tests.graphql.test_mutations import document, draft, loaded_once, stored

pytestmark = pytest.mark.django_db
demo = loaded_once("demo")

CODES = {400: "INVALID", 404: "NOT_FOUND", 409: "CONFLICT"}
SERVICE = {"name": "S", "repo": "github.com/a/s", "adapters": {"deployments": ["aws"]}}
RELEASE = {"serviceId": "svc-demo", "envId": "env-prod", "sha": "abcdef1", "version": "2.0.0"}
INCIDENT = {"serviceId": "svc-demo", "severity": "high", "link": "https://pd.example.com/1"}


class Case(NamedTuple):
    name: str  # the test id
    mutation: str
    arguments: dict
    rest: tuple  # method, url, body (None: no body)
    expected: tuple  # the code and the fields named (None: the whole input's)
    setup: object = None


def _qa():
    Environment(id="env-qa", name="qa").save()


def _archive(model, pk):
    return lambda: service_lifecycle.archive(model.objects.get(pk=pk))


def _deployed_draft():
    workflows.deploy(draft())


def _resolved():
    incident_lifecycle.resolve(Incident.objects.get(pk="inc-789"))


def _create(mutation, url, base, **changes):
    body = {**base, **changes}
    return {"mutation": mutation, "arguments": {"input": body}, "rest": ("post", url, body)}


def _update(mutation, url, pk, **changes):
    return {"mutation": mutation, "arguments": {"id": pk, "input": changes}, "rest": ("patch", f"{url}{pk}/", changes)}


def _action(mutation, url, **arguments):
    body = {k: v for k, v in arguments.items() if k != "id"} or None
    return {"mutation": mutation, "arguments": arguments, "rest": ("post", url, body)}


def case(name, write: dict, code: str, *fields, setup=None) -> Case:
    return Case(name, write["mutation"], write["arguments"], write["rest"], (code, set(fields)), setup)


SERVICES, ENVIRONMENTS, RELEASES, INCIDENTS, WINDOWS, FREEZES = (
    "/api/services/",
    "/api/environments/",
    "/api/releases/",
    "/api/incidents/",
    "/api/change-windows/",
    "/api/freezes/",
)
WINDOW = {"name": "nights", "timezone": "Europe/Berlin", "days": [1, 2], "start": "22:00", "end": "06:00"}
FREEZE = {
    "title": "Christmas",
    "startsAt": "2026-12-20T00:00:00+01:00",
    "endsAt": "2026-12-28T00:00:00+01:00",
    "envIds": ["env-prod"],
}
CASES = [
    # releases
    case("bad sha", _create("releaseCreate", RELEASES, RELEASE, sha="XYZ"), "INVALID", "sha"),
    case("upper-case sha", _create("releaseCreate", RELEASES, RELEASE, sha="ABCDEF1"), "INVALID", "sha"),
    case("unknown service", _create("releaseCreate", RELEASES, RELEASE, serviceId="svc-nope"), "INVALID", "serviceId"),
    case("unknown environment", _create("releaseCreate", RELEASES, RELEASE, envId="env-nope"), "INVALID", "envId"),
    case(
        "environment not linked to the service",
        _create("releaseCreate", RELEASES, RELEASE, envId="env-qa"),
        "INVALID",
        "envId",
        setup=_qa,
    ),
    case(
        "release of an archived service",
        _create("releaseCreate", RELEASES, RELEASE),
        "INVALID",
        "serviceId",
        setup=_archive(Service, "svc-demo"),
    ),
    case("blank version", _create("releaseCreate", RELEASES, RELEASE, version="   "), "INVALID", "version"),
    case("version too long", _create("releaseCreate", RELEASES, RELEASE, version="9" * 65), "INVALID", "version"),
    case("duplicate release id", _create("releaseCreate", RELEASES, RELEASE, id="rel-123"), "INVALID", "id"),
    case("id of another type", _create("releaseCreate", RELEASES, RELEASE, id="svc-x1"), "INVALID", "id"),
    case(
        "version change after Draft", _update("releaseUpdate", RELEASES, "rel-123", version="9"), "INVALID", "version"
    ),
    case("version null", _update("releaseUpdate", RELEASES, "rel-123", version=None), "INVALID", "version"),
    # incidents
    case("bad link", _create("incidentCreate", INCIDENTS, INCIDENT, link="ftp://pd.example.com/1"), "INVALID", "link"),
    case("relative link", _create("incidentCreate", INCIDENTS, INCIDENT, link="/incidents/1"), "INVALID", "link"),
    case("bad link on update", _update("incidentUpdate", INCIDENTS, "inc-789", link="not a url"), "INVALID", "link"),
    case(
        "startedAt without offset",
        _create("incidentCreate", INCIDENTS, INCIDENT, startedAt="2024-10-02T14:30:00"),
        "INVALID",
        "startedAt",
    ),
    case(
        "startedAt a date only",
        _create("incidentCreate", INCIDENTS, INCIDENT, startedAt="2024-10-02"),
        "INVALID",
        "startedAt",
    ),
    case(
        "incident for an unknown service",
        _create("incidentCreate", INCIDENTS, INCIDENT, serviceId="svc-nope"),
        "INVALID",
        "serviceId",
    ),
    case(
        "secret in a title",
        _create("incidentCreate", INCIDENTS, INCIDENT, title="key AKIAIOSFODNN7EXAMPLE leaked"),
        "INVALID",
        "title",
    ),
    case("duplicate incident id", _create("incidentCreate", INCIDENTS, INCIDENT, id="inc-789"), "INVALID", "id"),
    # environments
    case(
        "production environment without region and cluster",
        _create("environmentCreate", ENVIRONMENTS, {"name": "prod-eu"}),
        "INVALID",
        "region",
        "cluster",
    ),
    case(
        "production environment without cluster",
        _create("environmentCreate", ENVIRONMENTS, {"name": "production", "region": "eu-west-1"}),
        "INVALID",
        "cluster",
    ),
    case(
        "production region cleared",
        _update("environmentUpdate", ENVIRONMENTS, "env-prod", region=None),
        "INVALID",
        "region",
    ),
    case(
        "malformed policyRef",
        _create("environmentCreate", ENVIRONMENTS, {"name": "qa", "policyRefs": ["policy:ok", "nope"]}),
        "INVALID",
        "policyRefs",
    ),
    case(
        "environment name not a slug",
        _create("environmentCreate", ENVIRONMENTS, {"name": "QA Env"}),
        "INVALID",
        "name",
    ),
    case(
        "duplicate environment name",
        _create("environmentCreate", ENVIRONMENTS, {"name": "staging"}),
        "INVALID",
        "name",
    ),
    case(
        "duplicate environment id",
        _create("environmentCreate", ENVIRONMENTS, {"id": "env-prod", "name": "qa"}),
        "INVALID",
        "id",
    ),
    # change windows and freezes
    case(
        "zone not IANA", _create("changeWindowCreate", WINDOWS, WINDOW, timezone="Mars/Olympus"), "INVALID", "timezone"
    ),
    case("day 8", _create("changeWindowCreate", WINDOWS, WINDOW, days=[1, 8]), "INVALID", "days"),
    case("no days", _create("changeWindowCreate", WINDOWS, WINDOW, days=[]), "INVALID", "days"),
    case("start 25:00", _create("changeWindowCreate", WINDOWS, WINDOW, start="25:00"), "INVALID", "start"),
    case("end equal to start", _create("changeWindowCreate", WINDOWS, WINDOW, end="22:00"), "INVALID", "end"),
    case("window name taken", _create("changeWindowCreate", WINDOWS, WINDOW, name="weekday"), "INVALID", "name"),
    case(
        "renaming a window a ref names",
        _update("changeWindowUpdate", WINDOWS, "cw-weekday", name="weekdays"),
        "INVALID",
        "name",
    ),
    case("unknown window id", _update("changeWindowUpdate", WINDOWS, "cw-nope", end="18:00"), "NOT_FOUND", None),
    case(
        "freeze ending before it starts",
        _create("freezeCreate", FREEZES, FREEZE, endsAt="2026-12-19T00:00:00Z"),
        "INVALID",
        "endsAt",
    ),
    case(
        "freeze start without offset",
        _create("freezeCreate", FREEZES, FREEZE, startsAt="2026-12-20T00:00:00"),
        "INVALID",
        "startsAt",
    ),
    case(
        "freeze of an unknown environment",
        _create("freezeCreate", FREEZES, FREEZE, envIds=["env-prod", "env-nope"]),
        "INVALID",
        "envIds",
    ),
    case("freeze of no environment", _create("freezeCreate", FREEZES, FREEZE, envIds=[]), "INVALID", "envIds"),
    case("blank freeze title", _create("freezeCreate", FREEZES, FREEZE, title="  "), "INVALID", "title"),
    case("unknown freeze id", _update("freezeUpdate", FREEZES, "frz-nope", title="x"), "NOT_FOUND", None),
    # services
    case(
        "unknown adapter",
        _create("serviceCreate", SERVICES, SERVICE, adapters={"deployments": ["aws", "heroku"]}),
        "INVALID",
        "adapters",
    ),
    case(
        "no adapter", _create("serviceCreate", SERVICES, SERVICE, adapters={"deployments": []}), "INVALID", "adapters"
    ),
    case("bad repo", _create("serviceCreate", SERVICES, SERVICE, repo="not-a-repo"), "INVALID", "repo"),
    case("empty name", _create("serviceCreate", SERVICES, SERVICE, name=""), "INVALID", "name"),
    case("name too long", _create("serviceCreate", SERVICES, SERVICE, name="n" * 101), "INVALID", "name"),
    case("duplicate service id", _create("serviceCreate", SERVICES, SERVICE, id="svc-demo"), "INVALID", "id"),
    case(
        "unknown environment of a service",
        _create("serviceCreate", SERVICES, SERVICE, environments=["env-prod", "env-nope"]),
        "INVALID",
        "environments",
    ),
    case(
        "environment id with a NUL byte",  # a 500 on PostgreSQL, both ways, when it reached the query
        _create("serviceCreate", SERVICES, SERVICE, environments=["env-prod", "env-staging\x00"]),
        "INVALID",
        "environments",
    ),
    case(
        "environment listed twice",
        _create("serviceCreate", SERVICES, SERVICE, environments=["env-prod", "env-prod"]),
        "INVALID",
        "environments",
    ),
    case(
        "unlinking an environment released to",
        _update("serviceUpdate", SERVICES, "svc-demo", environments=["env-prod"]),
        "INVALID",
        "environments",
    ),
    case(
        "update of an archived service",
        _update("serviceUpdate", SERVICES, "svc-demo", name="Renamed"),
        "INVALID",
        None,
        setup=_archive(Service, "svc-demo"),
    ),
    case("name null", _update("serviceUpdate", SERVICES, "svc-demo", name=None), "INVALID", "name"),
    # promote
    case(
        "unknown environment on promote",
        _action("releasePromote", "/api/releases/rel-123/promote/", id="rel-123", envId="env-nope"),
        "INVALID",
        "envId",
    ),
    case(
        "blank environment on promote",
        _action("releasePromote", "/api/releases/rel-123/promote/", id="rel-123", envId=""),
        "INVALID",
        "envId",
    ),
    case(
        "environment with a NUL byte on promote",
        _action("releasePromote", "/api/releases/rel-123/promote/", id="rel-123", envId="env-prod\x00"),
        "INVALID",
        "envId",
    ),
    case(
        "promote to an environment not linked",
        _action("releasePromote", "/api/releases/rel-123/promote/", id="rel-123", envId="env-qa"),
        "INVALID",
        "envId",
        setup=_qa,
    ),
    # illegal transitions
    case(
        "promote to its own environment",
        _action("releasePromote", "/api/releases/rel-123/promote/", id="rel-123", envId="env-staging"),
        "CONFLICT",
        None,
    ),
    case(
        "promote a Draft",
        _action("releasePromote", "/api/releases/rel-draft/promote/", id="rel-draft", envId="env-staging"),
        "CONFLICT",
        None,
        setup=draft,
    ),
    case(
        "deploy twice",
        _action("releaseDeploy", "/api/releases/rel-draft/deploy/", id="rel-draft"),
        "CONFLICT",
        None,
        setup=_deployed_draft,
    ),
    case(
        "deploy an Active release",
        _action("releaseDeploy", "/api/releases/rel-123/deploy/", id="rel-123"),
        "CONFLICT",
        None,
    ),
    case(
        "resolve twice",
        _action("incidentResolve", "/api/incidents/inc-789/resolve/", id="inc-789"),
        "CONFLICT",
        None,
        setup=_resolved,
    ),
    case(
        "acknowledge twice",
        _action("incidentAcknowledge", "/api/incidents/inc-789/acknowledge/", id="inc-789"),
        "CONFLICT",
        None,
    ),
    case(
        "acknowledge a resolved incident",
        _action("incidentAcknowledge", "/api/incidents/inc-789/acknowledge/", id="inc-789"),
        "CONFLICT",
        None,
        setup=_resolved,
    ),
    case(
        "archive a service twice",
        {
            "mutation": "serviceArchive",
            "arguments": {"id": "svc-demo"},
            "rest": ("delete", "/api/services/svc-demo/", None),
        },
        "CONFLICT",
        None,
        setup=_archive(Service, "svc-demo"),
    ),
    case(
        "archive an environment twice",
        {
            "mutation": "environmentArchive",
            "arguments": {"id": "env-prod"},
            "rest": ("delete", "/api/environments/env-prod/", None),
        },
        "CONFLICT",
        None,
        setup=_archive(Environment, "env-prod"),
    ),
    case(
        "archive a service with a release promoting",
        {
            "mutation": "serviceArchive",
            "arguments": {"id": "svc-demo"},
            "rest": ("delete", "/api/services/svc-demo/", None),
        },
        "CONFLICT",
        None,
        setup=_deployed_draft,
    ),
    case(
        "restore a service in use",
        _action("serviceRestore", "/api/services/svc-demo/restore/", id="svc-demo"),
        "CONFLICT",
        None,
    ),
    case(
        "restore an environment in use",
        _action("environmentRestore", "/api/environments/env-prod/restore/", id="env-prod"),
        "CONFLICT",
        None,
    ),
    # unknown ids
    case("unknown service id", _update("serviceUpdate", SERVICES, "svc-nope", name="x"), "NOT_FOUND", None),
    case(
        "unknown environment id", _update("environmentUpdate", ENVIRONMENTS, "env-nope", cluster="x"), "NOT_FOUND", None
    ),
    case("unknown release id", _update("releaseUpdate", RELEASES, "rel-nope", version="x"), "NOT_FOUND", None),
    case("unknown incident id", _update("incidentUpdate", INCIDENTS, "inc-nope", title="x"), "NOT_FOUND", None),
    case(
        "archive an unknown service",
        {
            "mutation": "serviceArchive",
            "arguments": {"id": "svc-nope"},
            "rest": ("delete", "/api/services/svc-nope/", None),
        },
        "NOT_FOUND",
        None,
    ),
    case(
        "restore an unknown environment",
        _action("environmentRestore", "/api/environments/env-nope/restore/", id="env-nope"),
        "NOT_FOUND",
        None,
    ),
    case(
        "deploy an unknown release",
        _action("releaseDeploy", "/api/releases/rel-nope/deploy/", id="rel-nope"),
        "NOT_FOUND",
        None,
    ),
    case(
        "promote an unknown release",
        _action("releasePromote", "/api/releases/rel-nope/promote/", id="rel-nope", envId="env-prod"),
        "NOT_FOUND",
        None,
    ),
    case(
        "resolve an unknown incident",
        _action("incidentResolve", "/api/incidents/inc-nope/resolve/", id="inc-nope"),
        "NOT_FOUND",
        None,
    ),
    case(
        "acknowledge an unknown incident",
        _action("incidentAcknowledge", "/api/incidents/inc-nope/acknowledge/", id="inc-nope"),
        "NOT_FOUND",
        None,
    ),
]
ROLE = {
    "service": "admin",
    "environment": "admin",
    "release": "deployer",
    "incident": "deployer",
    "changeWindow": "admin",
    "freeze": "admin",
}


def rest_errors(response) -> tuple[str, set]:
    """REST's answer as GraphQL states it: the code for its status, and its (field, message) pairs."""
    body = response.json()
    code = CODES[response.status_code]
    if response.status_code != 400:
        return code, {(None, body["detail"])}
    pairs = {
        (None if field == "nonFieldErrors" else field, message)
        for field, messages in body.items()
        for message in messages
    }
    return code, pairs


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_same_refusal_over_rest_and_graphql(graphql, case: Case):
    if case.setup:
        case.setup()
    role = next(role for noun, role in ROLE.items() if case.mutation.startswith(noun))
    before = stored()
    method, url, body = case.rest
    api = Api(role)
    response = getattr(api, method)(url, body) if body is not None else getattr(api, method)(url)
    assert response.status_code in CODES, (response.status_code, response.content)
    rest_code, rest_pairs = rest_errors(response)
    assert stored() == before

    payload = graphql(role)(document(case.mutation), **case.arguments)[case.mutation]
    assert stored() == before
    assert {error["code"] for error in payload["errors"]} == {rest_code}
    pairs = {(error["field"], error["message"]) for error in payload["errors"]}
    assert pairs == rest_pairs
    assert len(payload["errors"]) == len(rest_pairs)  # each message once
    # And it is the refusal this case is about (the code and the fields named), not some other one.
    expected_code, expected_fields = case.expected
    assert (rest_code, {field for field, _ in pairs}) == (expected_code, expected_fields)


def test_the_not_found_text_is_rests_404():
    assert Api("admin").patch("/api/services/svc-nope/", {"name": "x"}).json() == {
        "detail": "No Service matches the given query."
    }


def test_a_promotion_to_its_own_environment_names_the_rule(graphql):
    payload = graphql("deployer")(document("releasePromote"), id="rel-123", envId="env-staging")["releasePromote"]
    assert payload["errors"] == [
        {
            "field": None,
            "code": "CONFLICT",
            "message": "release rel-123 is already in env-staging; promote it to another environment.",
        }
    ]
    assert not Release.objects.filter(environment_id="env-staging").exclude(pk="rel-123").exists()
