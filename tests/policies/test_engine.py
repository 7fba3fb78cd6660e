"""The engine: a policy whose evaluation errors denies (Cedar would skip it), naming it; a policy file that does
not parse or fails the schema stops `manage.py check` and the web server with one line naming file and line;
an operator's own policy refuses with its reason, and break-glass overrides neither."""

import subprocess
import sys

import pytest
import time_machine

from controlplane.governance import PolicyDenied
from controlplane.identity.context import Principal, acting_as
from controlplane.identity.roles import Role
from policies import engine, gate
from services.models import Environment, Service
from tests.environment import ROOT, clean_environment, free_port, start_process, stop_group
from tests.policies.conftest import decide_at, instant

# Valid against the schema (Long * Long), but `now` times the largest Long overflows when it is evaluated.
OVERFLOW = """// An operator's policy that cannot be evaluated.
@id("overflow")
forbid (principal, action, resource)
when { context.now * 9223372036854775807 > 0 };
"""
NO_BOB = """@id("no-bob-on-demo")
@reason("bob may not ship svc-demo")
forbid (principal == ControlPlane::Actor::"bob", action, resource)
when { context.service == "svc-demo" };
"""
# Line 3 holds the mistake (a missing comma), after a policy that parses.
UNPARSABLE = """// line 1
permit (principal, action, resource);
forbid (principal, action resource);
"""
# Line 4 starts the policy that names a context field the schema does not have.
OFF_SCHEMA = """// line 1
permit (principal, action, resource);

forbid (principal, action, resource)
when { context.weather == "rain" };
"""
BREAK_GLASS = {"reason": "the checkout is down, shipping the fix"}


def as_actor(actor: str, role: Role = Role.DEPLOYER):
    return acting_as(Principal(actor=actor, role=role, auth_method="devToken"))


@pytest.fixture
def draft(make_release):
    """A Draft release of a service in an environment without refs."""
    return make_release()


# --- an evaluation error denies ---


def test_a_policy_that_errors_denies_naming_it(operator_policies, draft):
    operator_policies(OVERFLOW)
    decision = decide_at("2026-12-07T10:00:00Z", draft.environment, release=draft)
    assert not decision.allowed
    [denial] = decision.as_json()["deniedBy"]
    assert denial["policy"] == "overflow"
    assert "evaluation error" in denial["reason"] and "overflow" in denial["reason"]
    assert decision.as_json()["nextAllowedAt"] is None  # no time alone fixes a broken policy


def test_without_the_erroring_policy_the_same_deploy_is_allowed(draft):
    # The contrast: Cedar itself would let this request through with `overflow` skipped.
    assert decide_at("2026-12-07T10:00:00Z", draft.environment, release=draft).allowed


def test_break_glass_does_not_override_an_evaluation_error(operator_policies, draft):
    operator_policies(OVERFLOW)
    with as_actor("alice", Role.ADMIN), pytest.raises(PolicyDenied) as caught:
        gate.gate("deploy", environment=draft.environment, release=draft, break_glass=BREAK_GLASS)
    assert [d["policy"] for d in caught.value.decision["deniedBy"]] == ["overflow"]


def test_break_glass_does_override_a_closed_window(gated, make_service, make_release):
    """What break-glass is for (the contrast to the two refusals it cannot lift)."""
    env = gated({"timezone": "Europe/Berlin"})
    release = make_release(service=make_service(environments=[env]), environment=env)
    with time_machine.travel(instant("2026-12-06T12:00:00Z"), tick=False), as_actor("alice", Role.ADMIN):
        with pytest.raises(PolicyDenied):
            gate.gate("deploy", environment=env, release=release)
        verdict = gate.gate("deploy", environment=env, release=release, break_glass=BREAK_GLASS)
    assert verdict.metadata["allowed"] is True
    assert [d["policy"] for d in verdict.metadata["overridden"]] == env.policy_refs


# --- an operator's policy ---


@pytest.fixture
def demo_draft(demo, make_release):
    """A Draft release of svc-demo in env-staging (no refs in the demo)."""
    return make_release(
        service=Service.objects.get(pk="svc-demo"), environment=Environment.objects.get(pk="env-staging")
    )


def test_an_operator_policy_forbids_one_principal_from_one_service(operator_policies, demo_draft):
    operator_policies(NO_BOB)
    env = demo_draft.environment
    with as_actor("bob"), pytest.raises(PolicyDenied) as caught:
        gate.gate("deploy", environment=env, release=demo_draft)
    assert caught.value.decision == {
        "allowed": False,
        "deniedBy": [{"policy": "no-bob-on-demo", "reason": "bob may not ship svc-demo"}],
        "nextAllowedAt": None,
    }
    assert "bob may not ship svc-demo" in str(caught.value)
    with as_actor("alice"):
        verdict = gate.gate("deploy", environment=env, release=demo_draft)
    assert verdict.metadata["allowed"] and "no-bob-on-demo" in verdict.metadata["evaluated"]


def test_bob_may_ship_another_service(operator_policies, demo, make_service, make_release):
    operator_policies(NO_BOB)
    release = make_release(service=make_service())
    with as_actor("bob"):
        assert gate.gate("deploy", environment=release.environment, release=release).metadata["allowed"]


def test_break_glass_does_not_override_an_operator_policy(operator_policies, demo_draft):
    operator_policies(NO_BOB)
    with as_actor("bob", Role.ADMIN), pytest.raises(PolicyDenied) as caught:
        gate.gate("deploy", environment=demo_draft.environment, release=demo_draft, break_glass=BREAK_GLASS)
    assert [d["policy"] for d in caught.value.decision["deniedBy"]] == ["no-bob-on-demo"]


NO_BREAK_GLASS_INTO_PROD = """@id("no-break-glass-into-production")
@reason("break-glass does not reach production environments")
forbid (principal, action, resource) when { context.breakGlass && resource.production };
"""


def test_an_operator_policy_sees_break_glass_in_the_context(
    operator_policies, make_environment, make_service, make_release
):
    operator_policies(NO_BREAK_GLASS_INTO_PROD)
    prod = make_environment(name="prod-eu", region="eu-west-1", cluster="eu-1")
    release = make_release(service=make_service(environments=[prod]), environment=prod)
    with as_actor("alice", Role.ADMIN):
        with pytest.raises(PolicyDenied) as caught:
            gate.gate("deploy", environment=prod, release=release, break_glass=BREAK_GLASS)
        assert caught.value.decision["deniedBy"] == [
            {"policy": "no-break-glass-into-production", "reason": "break-glass does not reach production environments"}
        ]
        assert gate.gate("deploy", environment=prod, release=release).metadata["allowed"]  # without it


# --- files that do not load: one line naming file and line ---


@pytest.mark.parametrize(
    "text, line, says",
    [
        (UNPARSABLE, 3, "unexpected token `resource`"),
        (OFF_SCHEMA, 4, "attribute `weather` in context"),
    ],
)
def test_a_policy_file_that_does_not_load_is_named_with_its_line(tmp_path, text, line, says):
    (tmp_path / "good.cedar").write_text(NO_BOB)
    (tmp_path / "team.cedar").write_text(text)
    with pytest.raises(engine.PolicyFileError) as caught:
        engine.load(str(tmp_path))
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'team.cedar'}:{line}: ") and says in message
    assert "\n" not in message


def test_a_policy_dir_that_is_not_a_folder_is_named(tmp_path):
    with pytest.raises(engine.PolicyFileError, match=r"CONTROLPLANE_POLICY_DIR .* is not a folder"):
        engine.load(str(tmp_path / "missing"))


def test_the_operator_policies_load_with_their_ids_and_reasons(tmp_path):
    (tmp_path / "team.cedar").write_text(NO_BOB + OVERFLOW)
    book = engine.load(str(tmp_path))
    mine = [p for p in book.policies.values() if not p.builtin]
    assert [(p.name, p.reason) for p in mine] == [("no-bob-on-demo", "bob may not ship svc-demo"), ("overflow", "")]
    assert book.files == ("builtin.cedar", str(tmp_path / "team.cedar"))


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def policy_dir(tmp_path, text):
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "team.cedar").write_text(text)
    return folder


def test_manage_py_check_names_the_file_and_line_of_a_bad_policy(tmp_path):
    folder = policy_dir(tmp_path, UNPARSABLE)
    done = manage("check", env=clean_environment(tmp_path, DEBUG="1", CONTROLPLANE_POLICY_DIR=str(folder)))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    [line] = [line for line in done.stderr.splitlines() if "team.cedar" in line]
    assert f"{folder / 'team.cedar'}:3: unexpected token `resource`" in line


def test_manage_py_check_passes_with_good_operator_policies(tmp_path):
    folder = policy_dir(tmp_path, NO_BOB + OVERFLOW)  # an evaluation error is found only when evaluated
    done = manage("check", env=clean_environment(tmp_path, DEBUG="1", CONTROLPLANE_POLICY_DIR=str(folder)))
    assert done.returncode == 0, done.stderr


def test_the_web_server_refuses_to_start_with_a_bad_policy(tmp_path):
    folder = policy_dir(tmp_path, OFF_SCHEMA)
    env = clean_environment(tmp_path, DEBUG="1", CONTROLPLANE_POLICY_DIR=str(folder))
    log_path = tmp_path / "web.log"
    with log_path.open("w") as log:
        process = start_process(
            [sys.executable, "manage.py", "web", f"127.0.0.1:{free_port()}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        status = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        status = None
    finally:
        stop_group(process)
    output = log_path.read_text()
    assert status not in (None, 0), output
    assert "Traceback" not in output, output
    [line] = [line for line in output.splitlines() if "team.cedar" in line]
    assert f"{folder / 'team.cedar'}:4: " in line
