"""The role-by-action matrix, on the permission table and on every endpoint that exists."""

import pytest

from controlplane.identity.context import Principal
from controlplane.identity.roles import PERMISSIONS, Role, can
from tests.conftest import bearer, sign_in

# docs/domain.md, "Roles": what each role may do.
EXPECTED = {
    "viewer": {"read"},
    "deployer": {
        "read",
        "release.create",
        "release.update",
        "release.deploy",
        "release.promote",
        "run.approve",
        "run.reject",
        "run.cancel",
        "rollback",
        "drift.check",
        "incident.create",
        "incident.update",
        "incident.acknowledge",
        "incident.resolve",
    },
    "admin": set(PERMISSIONS),
}


@pytest.mark.parametrize("role", ["viewer", "deployer", "admin"])
def test_each_role_may_do_exactly_what_the_domain_says(role):
    principal = Principal(actor="someone", role=Role.parse(role), auth_method="devToken")
    assert {action for action in PERMISSIONS if can(principal, action)} == EXPECTED[role]


def test_anonymous_and_missing_principals_may_do_nothing():
    anonymous = Principal(actor="anonymous", role=None, auth_method="anonymous")
    assert not any(can(anonymous, action) or can(None, action) for action in PERMISSIONS)


def test_roles_are_ordered():
    assert Role.VIEWER < Role.DEPLOYER < Role.ADMIN
    assert [Role.parse(n) for n in ("viewer", "Deployer", "ADMIN", "root", None)] == [
        Role.VIEWER,
        Role.DEPLOYER,
        Role.ADMIN,
        None,
        None,
    ]


@pytest.mark.parametrize("role", ["viewer", "deployer", "admin"])
def test_me_answers_every_role(client, db, role):
    response = client.get("/api/me/", **bearer(role))
    assert response.status_code == 200
    assert response.json() == {"actor": f"dev-{role}", "role": role, "authMethod": "devToken"}


def test_me_refuses_anonymous_callers_with_401(client, db):
    response = client.get("/api/me/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("role", "allowed"), [("viewer", False), ("deployer", False), ("admin", True)])
def test_admin_is_for_the_admin_role(client, db, role, allowed):
    sign_in(client, role)
    response = client.get("/admin/", follow=True)
    if allowed:
        assert response.status_code == 200 and b"Site administration" not in response.content
        assert b"Services, releases, incidents" in response.content
    else:
        assert response.status_code == 403
        assert b"the admin needs the admin role" in response.content


@pytest.mark.parametrize("role", ["viewer", "deployer"])
def test_non_admins_cannot_change_anything_in_the_admin(client, db, role):
    sign_in(client, role)
    response = client.post("/admin/services/environment/add/", {"name": "qa"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    from services.models import Environment

    assert not Environment.objects.exists()


def test_anonymous_admin_visit_is_sent_to_sign_in(client, db):
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/login/?next=")
    assert b"Sign in with dev token" in response.content
