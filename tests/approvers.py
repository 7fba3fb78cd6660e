"""More people than the suite's one per role (tests/environment.py TOKENS): approvals need principals other than
the run's actor, n of them. `people` adds them to the dev tokens; `token(name)` is anyone's bearer token."""

import pytest

from tests.environment import TOKENS

# name: (role, token); the actor is `dev-<name>`, as the suite's own tokens' are `dev-<role>`.
PEOPLE = {
    name: (role, f"test-{name}-token-0123456789")
    for name, role in (("deployer-2", "deployer"), ("deployer-3", "deployer"), ("admin-2", "admin"))
}


def token(name: str) -> str:
    return TOKENS[name] if name in TOKENS else PEOPLE[name][1]


def actor(name: str) -> str:
    return f"dev-{name}"


@pytest.fixture
def people(settings, as_every_test):
    extra = {token: {"id": actor(name), "role": role} for name, (role, token) in PEOPLE.items()}
    settings.CONTROLPLANE = {
        **settings.CONTROLPLANE,
        "devTokens": {**settings.CONTROLPLANE["devTokens"], **extra},
    }
