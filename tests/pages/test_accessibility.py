"""Every page against axe-core's WCAG 2.1 A and AA rules (labels, contrast, names, landmarks, keyboard
focus order), in the real browser, signed in as a deployer (who sees the write actions) and in both colour
schemes. axe-core comes inside the axe-playwright-python package: nothing is downloaded."""

import json
from pathlib import Path

import axe_playwright_python
import pytest

from tests.conftest import TOKENS

AXE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PAGES = [
    "/",
    "/services/svc-demo/",
    "/environments/",
    "/environments/env-prod/",
    "/releases/rel-123/",
    "/releases/new/",
    "/runs/run-456/",
    "/incidents/",
    "/incidents/new/",
    "/audit/",
    "/metrics/?envId=env-staging&since=2024-10-01T00:00:00Z&drill=deploymentFrequency",  # a tile's table, a row
]
# The integrations' pages, which only an admin may open (tests/pages/test_integrations.py: `made_for_pages`).
ADMIN_PAGES = [
    "/integrations/",
    "/integrations/int-pages/",
    "/integrations/int-pages/rotate/",
    "/webhooks/whk-pages/",
    "/webhooks/whk-pages/ping/",
    "/webhooks/whk-pages/deliveries/msg-pages/",
    "/webhooks/whk-pages/deliveries/msg-pages/redeliver/",
]


@pytest.fixture
def integrations_made(committed_demo):
    """Written before the browser starts: the ORM refuses to run while playwright's loop is marked running."""
    from tests.pages.test_integrations import made_for_pages

    made_for_pages()


@pytest.mark.usefixtures("committed_demo", "integrations_made")
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_meets_wcag_aa(web, browser, scheme):
    url = web()
    found = {}
    for role, paths in (("deployer", PAGES), ("admin", ADMIN_PAGES)):
        # axe runs as a script of the test's, which the page's CSP would refuse: this context alone bypasses it.
        context = browser.new_context(bypass_csp=True, color_scheme=scheme, viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/login/?next=/")
        page.fill("#token", TOKENS[role])
        page.get_by_role("button", name="Sign in with dev token").click()
        page.wait_for_url(f"{url}/")
        for path in paths:
            page.goto(f"{url}{path}")
            page.evaluate(AXE)
            script = "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})"
            result = page.evaluate(script, WCAG)
            assert len(result["passes"]) > 10, f"axe checked little on {path}"
            problems = [
                f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
                for v in result["violations"]
            ]
            if problems:
                found[path] = problems
        context.close()
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)
