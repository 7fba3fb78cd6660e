"""Page tests in a real browser: Debian's chromium driven by playwright (never a browser download), against the
real web server and worker on the test database. Each test's page records console errors, script errors,
CSP violations and every request, so a test can assert none went wrong and nothing left this host.
`page.screenshots(name)` writes the page at 1400 px and 390 px wide to var/screenshots/."""

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import TOKENS
from tests.live import CHROMIUM

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
WIDTHS = {"wide": 1400, "narrow": 390}

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (make test installs it)")


class Watched:
    """A browser context (its own cookies: one user) with one page, whose console errors, script errors, CSP
    violations and requests are recorded."""

    def __init__(self, browser, base_url: str):
        self.base = base_url.rstrip("/")
        self.context = browser.new_context(viewport={"width": WIDTHS["wide"], "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.add_init_script(RECORD_VIOLATIONS)

    def go(self, path: str):
        self.page.goto(f"{self.base}{path}")
        return self.page

    def sign_in(self, role: str, then: str = "/"):
        page = self.go(f"/login/?next={then}")
        page.fill("#token", TOKENS[role])
        page.get_by_role("button", name="Sign in with dev token").click()
        page.wait_for_url(f"**{then}")
        return page

    def clean(self):
        """No console error, no script error, no CSP violation, no request to another host."""
        violations = self.page.evaluate("window.__violations || []")
        assert self.errors == [] and violations == [], (self.errors, violations)
        host = urlsplit(self.base).netloc
        elsewhere = [
            url
            for url in self.requests
            if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).netloc != host
        ]
        assert elsewhere == [], elsewhere

    def screenshots(self, name: str):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for width in WIDTHS.values():
            self.page.set_viewport_size({"width": width, "height": 900})
            self.page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
        self.page.set_viewport_size({"width": WIDTHS["wide"], "height": 900})


@pytest.fixture
def watched(browser):
    """`watched(base_url)`: a new signed-out user in the browser."""
    opened = []

    def open_(base_url: str) -> Watched:
        opened.append(Watched(browser, base_url))
        return opened[-1]

    yield open_
    for user in opened:
        user.context.close()


@pytest.fixture
def always_open(committed_demo):
    """The demo with env-prod's refs as shipped, its `weekday` window open at every hour of every day: the real
    server's clock is not frozen, and a test about something else promotes to env-prod whenever it runs. Written
    before the browser starts (ask for it before `web` and `watched`): the ORM refuses to run while playwright's
    loop is marked running (tests/live.py, `browser`)."""
    from services import promotion
    from services.models import ChangeWindow, Environment
    from tests.live import SHIPPED_PROD_REFS

    Environment.objects.filter(pk="env-prod").update(policy_refs=SHIPPED_PROD_REFS)
    promotion.renumber(Environment)  # staging before prod again, as shipped
    window = ChangeWindow.objects.get(name="weekday")
    window.days, window.start, window.end = [1, 2, 3, 4, 5, 6, 7], "00:00", "24:00"
    window.save()
