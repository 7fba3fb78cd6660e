"""Any sequence of creates, deploys, promotions and run outcomes keeps every rule the RFC states."""

from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from controlplane.errors import Conflict
from releases import runs, workflows
from releases.models import Release, WorkflowRun
from services.models import Environment, Service
from tests.conftest import examples

ENVIRONMENTS = ["env-a", "env-b", "env-prod"]


class Releases(RuleBasedStateMachine):
    releases = Bundle("releases")

    def __init__(self):
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()  # each example rolls back, so examples never see each other
        envs = [
            Environment(id="env-a", name="a"),
            Environment(id="env-b", name="b"),
            Environment(id="env-prod", name="prod", region="r", cluster="c"),
        ]
        for env in envs:
            env.save()
        service = Service(id="svc-x", name="X", repo="github.com/a/x", deployment_adapters=["k8s"])
        service.save()
        service.environments.set(envs)

    def teardown(self):
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    @rule(target=releases, env=st.sampled_from(ENVIRONMENTS), sha=st.sampled_from(["abcdef1", "1234567"]))
    def create(self, env, sha):
        release = Release(service_id="svc-x", environment_id=env, sha=sha, version="1")
        release.save()
        return release.id

    @rule(release=releases)
    def deploy(self, release):
        before = Release.objects.get(pk=release)
        status = before.status
        try:
            workflows.deploy(before)
        except Conflict:
            busy = Release.objects.filter(service_id="svc-x", environment_id=before.environment_id, status="Promoting")
            assert status != "Draft" or busy.exists()
        else:
            assert status == "Draft"

    @rule(release=releases, env=st.sampled_from(ENVIRONMENTS))
    def promote(self, release, env):
        source = Release.objects.get(pk=release)
        status = source.status
        try:
            workflows.promote(source, Environment.objects.get(pk=env))
        except Conflict:
            busy = Release.objects.filter(service_id="svc-x", environment_id=env, status="Promoting").exists()
            assert status != "Active" or env == source.environment_id or busy
        except ValidationError:
            raise AssertionError("a promotion to a linked environment is never invalid") from None
        else:
            assert status == "Active" and env != source.environment_id

    @rule(release=releases, succeeded=st.booleans())
    def end_run(self, release, succeeded):
        run = WorkflowRun.objects.filter(release_id=release, state="Running").first()
        if run is not None:
            assert runs.finish(run, succeeded)
            assert not runs.finish(run, not succeeded)  # a run ends once

    @invariant()
    def at_most_one_promoting_per_environment(self):
        for env in ENVIRONMENTS:
            assert Release.objects.filter(service_id="svc-x", environment_id=env, status="Promoting").count() <= 1

    @invariant()
    def statuses_and_runs_agree(self):
        for release in Release.objects.all():
            runs = list(release.runs.all())
            running = [r for r in runs if r.state == "Running"]
            assert (release.activated_at is not None) == (release.status == "Active")
            if release.status == "Draft":
                assert runs == []
            elif release.status == "Promoting":
                assert len(running) == 1
            else:
                assert running == [] and len(runs) == 1
                assert runs[0].state == ("Succeeded" if release.status == "Active" else "Failed")

    @invariant()
    def promotions_come_from_active_releases_elsewhere(self):
        for run in WorkflowRun.objects.filter(kind="Promote").select_related("release", "source_release"):
            source, target = run.source_release, run.release
            assert source.status == "Active" and (source.sha, source.service_id) == (target.sha, target.service_id)
            assert source.environment_id != target.environment_id


def test_no_sequence_reaches_a_forbidden_state(db):
    run_state_machine_as_test(
        Releases, settings=settings(max_examples=examples(40))
    )
