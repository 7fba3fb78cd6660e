"""`cpctl tokens` and the retried write, as a CI pipeline meets them: a token issued, logged in with, listed and
revoked; a deploy whose answer is lost on the way back sent again with its key, and run once."""

from releases.models import WorkflowRun
from tests.cli.conftest import new_release
from tests.cli.relay import relay


def test_a_token_is_issued_used_listed_and_revoked(server, cpctl, config_home):
    issued = cpctl(
        "tokens", "create", "--name", "ci", "--role", "deployer", "--env", "env-staging", "--expires", "30d", url=server
    )
    assert issued.code == 0, issued.err
    secret = issued.out.strip()
    assert secret.startswith("cpat_") and "Shown this once" in issued.err and secret not in issued.err
    token_id = issued.err.split()[1]

    login = cpctl("login", "--url", server, "--token", secret, url=None, role=None)
    assert login.code == 0 and f"as dev-deployer via {token_id} (deployer)" in login.out, login.err
    assert cpctl("whoami", url=None, role=None).out.startswith(f"dev-deployer via {token_id} (deployer, apiToken)")

    listed = cpctl("tokens", "list", "-o", "json", url=server).json()
    assert [(t["id"], t["envIds"], t["revokedAt"]) for t in listed] == [(token_id, ["env-staging"], None)]
    assert secret not in str(listed)

    assert cpctl("tokens", "revoke", token_id, url=server).code == 0
    refused = cpctl("whoami", url=None, role=None)
    assert refused.code == 3 and f"the API token {token_id} was revoked" in refused.err


def test_a_token_with_a_bad_field_is_refused_naming_it(server, cpctl):
    refused = cpctl("tokens", "create", "--name", "ci", "--role", "admin", "--expires", "30d", url=server)
    assert refused.code == 2 and "role: must be at most your own role (deployer)" in refused.err
    too_long = cpctl("tokens", "create", "--name", "ci", "--role", "viewer", "--expires", "400d", url=server)
    assert too_long.code == 2 and "expiresAt: must be at most one year" in too_long.err


def test_a_write_whose_answer_is_lost_is_sent_again_with_its_key_and_runs_once(plane, cpctl):
    made = cpctl(*new_release("9.9.9"), "-o", "json", url=plane)
    assert made.code == 0, made.err
    release_id = made.json()["id"]
    with relay(plane) as lossy:
        lossy.lose_answers = 1  # the deploy reaches the server; its answer does not reach cpctl
        deployed = cpctl("deploy", release_id, "--yes", "--no-follow", "-o", "json", url=lossy.url)
        writes = [key for line, key in zip(lossy.requests, lossy.keys, strict=True) if line.startswith("POST")]
    assert deployed.code == 0, deployed.err
    assert len(writes) == 2 and writes[0] == writes[1] and writes[0].startswith('"')  # the same key, sent again
    runs = WorkflowRun.objects.filter(release_id=release_id)
    assert runs.count() == 1 and deployed.json()["id"] == runs.get().id
