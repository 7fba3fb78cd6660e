"""GraphiQL at /graphql/ in a real browser (Debian's chromium, driven by playwright) under the site's
Content-Security-Policy: the page draws, runs a query over the signed-in session, sends a mutation with the CSRF
token, and loads nothing from another host; no console error, no CSP violation."""

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import TOKENS

CHROMIUM = "/usr/bin/chromium"  # installed by `make test`; never a browser download

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (make test installs it)"),
    pytest.mark.django_db(transaction=True),  # the live server's thread sees committed rows only
]

# Every CSP violation, as the page sees it (the browser's console reports them too, as errors).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


@pytest.fixture
def browser():
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Watched:
    """A page whose console errors, script errors and requests are recorded."""

    def __init__(self, browser, base_url: str):
        self.base = urlsplit(base_url)
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.requests = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request))
        self.page.add_init_script(RECORD_VIOLATIONS)

    def sign_in(self, role: str):
        page = self.page
        page.goto(f"{self.base.geturl()}/login/?next=/graphql/")
        page.fill("#token", TOKENS[role])
        page.get_by_role("button", name="Sign in with dev token").click()
        page.wait_for_url("**/graphql/")

    def open_graphiql(self):
        self.page.goto(f"{self.base.geturl()}/graphql/")
        self.page.wait_for_selector(".graphiql-container .graphiql-query-editor .CodeMirror", timeout=30_000)

    def run(self):
        """Runs the active tab's operation and returns the response pane's text once it has one."""
        from playwright.sync_api import expect

        self.page.locator(".graphiql-execute-button").click()
        response = self.page.locator(".graphiql-response .CodeMirror-code")
        expect(response).to_contain_text('"data"', timeout=15_000)
        return response.inner_text()

    def elsewhere(self) -> list[str]:
        """Requests to any other host (data: URLs, the stylesheet's fonts, are no request)."""
        return [
            r.url
            for r in self.requests
            if urlsplit(r.url).scheme not in ("data", "blob") and urlsplit(r.url).netloc != self.base.netloc
        ]

    def assert_clean(self):
        assert self.page.evaluate("window.__violations") == []
        assert self.errors == []
        assert self.elsewhere() == []


def test_graphiql_runs_the_default_query_in_a_browser_under_the_policy(live_server, browser):
    watched = Watched(browser, live_server.url)
    page = watched.page
    watched.sign_in("viewer")
    watched.open_graphiql()
    assert page.title() == "GraphiQL — Control plane"
    # The template's examples are the first visit's tabs, each named after its operation.
    # (Awaited: GraphiQL names and settles its tabs after the editor appears; a slow machine saw them mid-way.)
    from playwright.sync_api import expect

    tabs = page.locator(".graphiql-tab")
    expect(tabs).to_have_count(4, timeout=15_000)
    expected = ["MeAndServices", "ServicesIndex", "AuditEvents", "CreateIncident"]
    assert [t.strip() for t in tabs.all_inner_texts()] == expected

    result = watched.run()  # the default query: the first tab's
    assert '"actor": "dev-viewer"' in result
    assert '"role": "viewer"' in result

    # The schema came through the same fetcher (introspection); a dialog's run-time <style> carries the nonce.
    page.get_by_role("button", name="Show Documentation Explorer").click()
    page.get_by_text("Root Types").wait_for()
    page.get_by_role("button", name="Open settings dialog").click()
    page.get_by_role("dialog").wait_for()
    page.keyboard.press("Escape")

    posts = [r for r in watched.requests if r.method == "POST" and urlsplit(r.url).path == "/graphql/"]
    assert posts, "GraphiQL posted nothing to /graphql/"
    for request in posts:
        assert request.headers["content-type"] == "application/json"
        assert request.headers["accept"] == "application/json"
        assert request.headers.get("x-csrftoken")
    watched.assert_clean()


def test_a_mutation_from_graphiql_passes_the_csrf_check(live_server, demo, browser):
    """The session's POSTs are CSRF-checked: GraphiQL's carry the token, so a mutation reaches the schema.
    (`demo` before `browser`: playwright's sync API runs an event loop, in which Django refuses database calls.)"""
    watched = Watched(browser, live_server.url)
    watched.sign_in("deployer")
    watched.open_graphiql()
    page = watched.page
    page.locator(".graphiql-tab", has_text="CreateIncident").click()
    page.locator(".graphiql-query-editor .CodeMirror-code", has_text="mutation CreateIncident").wait_for()
    # GraphiQL reads the operation's name from the editor a moment after its text changes (debounced): run
    # at once, and it sends the previous tab's name, which this document does not have.
    page.wait_for_timeout(1_000)
    result = watched.run()
    assert '"incidentCreate"' in result, result
    assert "HTTP 403" not in result and "CSRF" not in result, result
    watched.assert_clean()


def test_an_anonymous_browser_is_sent_to_sign_in(live_server, browser):
    watched = Watched(browser, live_server.url)
    watched.page.goto(f"{live_server.url}/graphql/")
    url = urlsplit(watched.page.url)
    assert url.path == "/login/"
    assert parse_qs(url.query) == {"next": ["/graphql/"]}
    assert watched.page.get_by_role("button", name="Sign in with dev token").is_visible()
