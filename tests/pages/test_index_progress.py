"""A rollout's progress on the services index: step N of M, from the run's log (releases.runs.progress)."""

import pytest

from releases import lifecycle, runs
from releases.models import RunLogEntry, WorkflowRun
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


def rolling_out(release, planned: int, done: int) -> WorkflowRun:
    lifecycle.begin_rollout(release)
    run = WorkflowRun(kind="Deploy", release=release, actor="bot")
    run.save()
    RunLogEntry(
        run=run, message="k8s: deploying to region local, cluster c", meta={"adapter": "k8s", "steps": planned}
    ).save()
    for n in range(done):
        RunLogEntry(run=run, message=f"k8s: step {n}", level="debug", meta={"step": f"s{n}"}).save()
        RunLogEntry(run=run, message=f"k8s: s{n} done", meta={"step": f"s{n}"}).save()
    return run


def test_progress_counts_steps_done_against_the_plan(make_release):
    release = make_release()
    rolling_out(release, planned=5, done=2)
    assert runs.progress([release.pk]) == {release.pk: (2, 5)}
    assert runs.progress([]) == {}


def test_the_index_shows_a_promoting_release_s_step(client, make_release):
    release = make_release(version="2026.11.28")
    rolling_out(release, planned=4, done=3)
    page = sign_in(client, "viewer").get("/").content.decode()
    assert 'aria-label="2026.11.28: step 3 of 4"' in page and "step 3 of 4</span>" in page
    assert '<progress max="4" value="3"' in page
