"""The overview pages (index, service, environments) under odd input: a clear 4xx, never a 500."""

import html
import re

import pytest
from django.test import Client

from overview.models import DeploymentState
from services.models import Service
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("page", ["99999999999999999999999", "-5", "²", "abc"])
def test_an_environment_page_number_that_is_no_page_is_the_first_or_the_last(client, demo, page):
    response = sign_in(client, "viewer").get(f"/environments/env-prod/?page={page}")
    assert response.status_code == 200


def test_a_row_fragment_for_an_id_that_is_no_id_is_404(client, demo):
    assert sign_in(client, "viewer").get("/?fragment=row&id=svc%00x").status_code == 404


def test_a_row_fragment_signed_out_is_401_not_the_sign_in_page():
    assert Client().get("/?fragment=row&id=svc-demo").status_code == 401
    assert Client().get("/").status_code == 302


@pytest.mark.parametrize("path", ["/", "/services/svc-demo/", "/environments/", "/environments/env-prod/"])
def test_the_read_only_pages_take_no_writes(client, demo, path):
    assert sign_in(client, "viewer").post(path).status_code == 405


def test_a_forged_cursor_is_a_page_that_says_so(client, demo):
    response = sign_in(client, "viewer").get("/?cursor=forged")
    assert response.status_code == 400 and "start from the first page" in response.content.decode()


def test_an_id_with_a_trailing_newline_is_refused(make_service):
    with pytest.raises(Exception) as refused:
        Service(id="svc-trailing\n", name="x", repo="github.com/a/b", deployment_adapters=["k8s"]).save()
    assert "must be 2-63 lower-case letters" in str(refused.value)


def test_an_environments_services_page_by_page_forwards_and_back(client, demo, monkeypatch):
    from overview import views

    monkeypatch.setattr(views, "ENVIRONMENT_PAGE_SIZE", 1)
    for name in ("alpha", "beta"):  # "beta" twice: the service id breaks the tie
        for n in (1, 2) if name == "beta" else (1,):
            service = Service(id=f"svc-{name}-{n}", name=name, repo="github.com/a/b", deployment_adapters=["k8s"])
            service.save()
            service.environments.add("env-staging")
    viewer = sign_in(client, "viewer")
    shown = lambda page: re.findall(r'<span class="sub mono">(svc-[^<]+)</span>', page)  # noqa: E731
    link = lambda page, rel: re.search(rf'href="(\?cursor=[^"]+)" rel="{rel}"', page)  # noqa: E731
    page = viewer.get("/environments/env-staging/").content.decode()
    forward = shown(page)
    while found := link(page, "next"):
        page = viewer.get(f"/environments/env-staging/{html.unescape(found[1])}").content.decode()
        forward += shown(page)
    backward = shown(page)
    while found := link(page, "prev"):
        page = viewer.get(f"/environments/env-staging/{html.unescape(found[1])}").content.decode()
        backward = shown(page) + backward
    linked = DeploymentState.objects.filter(environment_id="env-staging").order_by("service__name", "service_id")
    assert forward == backward == [d.service_id for d in linked] and len(forward) > 1
