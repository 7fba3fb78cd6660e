"""`cpctl dora` against a live server: the DORA metrics as the API answers them (docs/metrics.md), in a table for
people and as the API's JSON for scripts, the deployments behind a figure, and the server's refusals."""

import pytest
from django.db import connection

from tests.api.conftest import Api

# cpctl touches no database, and the figures are tested on both by tests/overview/test_dora.py.
pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the client's reads: tested on SQLite")

WINDOW = ("--since", "2024-10-01T00:00:00Z", "--until", "2024-11-01T00:00:00Z")
QUERY = "since=2024-10-01T00%3A00%3A00Z&until=2024-11-01T00%3A00%3A00Z"


@pytest.fixture
def cpctl(cpctl_here):
    return cpctl_here


def test_dora_prints_the_figures_the_api_answers(server, cpctl):
    scripted = cpctl("dora", "--env", "env-staging", *WINDOW, "-o", "json", url=server, role="viewer")
    assert scripted.code == 0, scripted.err
    answer = Api("viewer").get(f"/api/metrics/dora/?envId=env-staging&{QUERY}").json()
    assert scripted.json() == answer

    table = cpctl("dora", "--env", "env-staging", *WINDOW, url=server, role="viewer")
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0] == "svc-demo in env-staging, 2024-10-01T00:00:00Z to 2024-11-01T00:00:00Z".replace(
        "svc-demo", "every service"
    )
    assert lines[1].split() == ["FIGURE", "VALUE", "OF", "DEPLOYMENTS", "LEVEL"]
    frequency = answer["deploymentFrequency"]
    assert lines[2].startswith("Deployment frequency") and f"{frequency['perDay']:g}/day" in lines[2]
    assert [line.split()[0] for line in lines[2:7]] == ["Deployment", "Lead", "Change", "Failed", "Rework"]
    assert lines[7].startswith("Tier: ") and lines[7].endswith("(DORA 2024)")


def test_dora_drills_down_to_as_many_deployments_as_the_figure_counts(server, cpctl):
    drilled = cpctl("dora", "--env", "env-staging", *WINDOW, "--drill", "deploymentFrequency", url=server)
    assert drilled.code == 0, drilled.err
    count = Api("viewer").get(f"/api/metrics/dora/?envId=env-staging&{QUERY}").json()["deploymentFrequency"]["count"]
    lines = drilled.out.splitlines()
    assert lines[1] == f"Deployment frequency: {count} deployment{'s' * (count != 1)}"
    assert lines[2].split()[:3] == ["FINISHED", "SERVICE", "ENV"]
    assert len(lines[3:]) == count
    scripted = cpctl("dora", "--env", "env-staging", *WINDOW, "--drill", "reworkRate", "-o", "json", url=server)
    assert scripted.json()["count"] == len(scripted.json()["deployments"])


def test_dora_takes_ago_and_its_defaults_and_names_what_the_server_refuses(server, cpctl):
    assert cpctl("dora", "--since", "7d", url=server).code == 0
    default = cpctl("dora", "-o", "json", url=server).json()
    assert default["envId"] is None and default["days"] == 30

    bad = cpctl("dora", "--since", "yesterday", url=server)
    assert bad.code == 2 and bad.err.startswith("error: since: must be an RFC 3339 time with an offset")
    unknown = cpctl("dora", "--service", "svc-nope", url=server)
    assert (unknown.code, unknown.err.strip()) == (2, "error: serviceId: unknown service 'svc-nope'.")
