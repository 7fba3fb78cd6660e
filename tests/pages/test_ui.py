"""The shared page components (controlplane/templatetags/ui.py): one badge per severity and status, times
as a person reads them, the navigation by role."""

from datetime import timedelta

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from controlplane.identity.context import ANONYMOUS, Principal
from controlplane.identity.roles import Role


def render(text: str, **context) -> str:
    return Template("{% load ui %}" + text).render(Context(context))


@pytest.mark.parametrize("value", ["critical", "high", "medium", "low"])
def test_a_severity_is_a_badge_of_its_own_class(value):
    assert render("{% severity v %}", v=value) == f'<span class="badge {value}">{value}</span>'


def test_no_severity_is_nothing_and_text_is_escaped():
    assert render("{% severity v %}", v=None) == ""
    assert "<script>" not in render("{% status v %}", v="<script>")


@pytest.mark.parametrize(
    ("ago", "shown"),
    [
        (timedelta(seconds=5), "just now"),
        (timedelta(minutes=5), "5 min ago"),
        (timedelta(hours=3), "3 h ago"),
        (timedelta(days=2, hours=1), "2 d ago"),
    ],
)
def test_since(ago, shown):
    assert render("{{ t|since }}", t=timezone.now() - ago) == shown


def test_the_navigation_shows_what_the_role_may_open_and_where_you_are():
    request = RequestFactory().get("/incidents/")
    viewer = Principal(actor="v", role=Role.VIEWER, auth_method="devToken")
    admin = Principal(actor="a", role=Role.ADMIN, auth_method="devToken")
    shown = render("{% navigation request p %}", request=request, p=viewer)
    assert '<a href="/incidents/" aria-current="page">Incidents</a>' in shown and "/admin/" not in shown
    assert "/admin/" in render("{% navigation request p %}", request=request, p=admin)
    assert render("{% navigation request p %}", request=request, p=ANONYMOUS) == "<ul></ul>"
