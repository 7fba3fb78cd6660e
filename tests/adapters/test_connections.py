"""Connections (CONTROLPLANE_CONNECTIONS): what each may say, refused by name when wrong; an environment names
one or none, and every door shows whether it deploys for real."""

import pytest

from controlplane.connections import parse
from releases.models import WorkflowRun
from services.models import Environment
from tests.api.conftest import Api
from tests.platforms import connection, messages


def test_a_connection_is_read_with_its_defaults():
    (k8s,) = parse({"k8s-prod": {"adapter": "k8s", "kubeconfig": "/etc/cp/kubeconfig", "context": "prod"}}).values()
    assert (k8s.adapter, k8s.kubeconfig, k8s.context, k8s.namespace) == ("k8s", "/etc/cp/kubeconfig", "prod", "")
    assert (k8s.wait, k8s.timeout_seconds, k8s.poll_seconds) == (True, 600, 5)
    aws = parse(
        {
            "ecs-prod": {
                "adapter": "aws",
                "region": "eu-west-1",
                "cluster": "prod",
                "profile": "deployer",
                "endpointUrl": None,
            }
        }
    )["ecs-prod"]
    assert (aws.region, aws.cluster, aws.profile, aws.endpoint_url) == ("eu-west-1", "prod", "deployer", "")
    assert aws.platform_name("svc-payments") == "payments"
    named = parse({"k": {"adapter": "k8s", "names": {"svc-payments": "payments-api"}}})["k"]
    assert named.platform_name("svc-payments") == "payments-api" and named.platform_name("svc-web") == "web"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"adapter": "fly"}, "adapter must be one of aws, k8s (the live ones), not 'fly'"),
        ({"adapter": "k8s", "token": "abc"}, "'token' looks like a credential; connections reference credentials"),
        ({"adapter": "aws", "region": "x", "cluster": "y", "secretAccessKey": "z"}, "'secretAccessKey' looks like"),
        ({"adapter": "k8s", "namespce": "x"}, "unknown key 'namespce'; k8s connections take adapter, context,"),
        ({"adapter": "aws", "cluster": "prod"}, "region is required for an aws connection"),
        ({"adapter": "k8s", "wait": "no"}, "wait must be true or false"),
        ({"adapter": "k8s", "timeoutSeconds": 0}, "timeoutSeconds must be a positive number of seconds"),
        ({"adapter": "k8s", "timeoutSeconds": True}, "timeoutSeconds must be a number"),
        ({"adapter": "k8s", "names": {"svc-a": "Not A Name"}}, "'svc-a': 'Not A Name' is not one"),
        ({"adapter": "k8s", "names": {"payments": "payments"}}, "names maps service ids (svc-…)"),
        ("k8s", "must be an object"),
    ],
)
def test_a_wrong_connection_is_refused_naming_it_and_the_key(spec, says):
    with pytest.raises(ValueError) as refused:
        parse({"prod": spec})
    assert str(refused.value).startswith("connection 'prod': ") and says in str(refused.value)


def test_an_environment_names_a_configured_connection_or_gets_a_400(committed_demo, settings):
    settings.CONTROLPLANE_CONNECTIONS = {"k8s-prod": connection("k8s-prod", "k8s")}
    admin = Api("admin")
    refused = admin.patch("/api/environments/env-staging/", {"connection": "k8s-typo"})
    assert refused.status_code == 400
    assert refused.json()["connection"] == ["unknown connection 'k8s-typo'; configured: k8s-prod."]
    assert Environment.objects.get(pk="env-staging").connection == ""  # nothing written

    done = admin.patch("/api/environments/env-staging/", {"connection": "k8s-prod"})
    assert done.status_code == 200 and (done.json()["connection"], done.json()["mode"]) == ("k8s-prod", "live")
    assert Api("viewer").get("/api/environments/env-prod/").json()["mode"] == "simulated"
    cleared = admin.patch("/api/environments/env-staging/", {"connection": None})
    assert (cleared.json()["connection"], cleared.json()["mode"]) == (None, "simulated")


def test_a_run_says_whether_it_deployed_for_real(committed_demo, settings, execute):
    """Without a connection the run simulates and says so: in its log and its `mode`."""
    api = Api("deployer")
    release = api.post(
        "/api/releases/", {"serviceId": "svc-demo", "envId": "env-staging", "sha": "4f2a9c1", "version": "3"}
    )
    started = api.post(f"/api/releases/{release.json()['id']}/deploy/").json()
    assert started["mode"] == "simulated"
    run = WorkflowRun.objects.get(pk=started["id"])
    assert execute(run).result() == "succeeded"
    assert "aws: deploying to region us-east-1, cluster default (simulated)" in messages(run)
