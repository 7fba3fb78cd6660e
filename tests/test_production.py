"""Production settings (DEBUG off): HTTPS, HSTS, secure cookies, and the browser policies on every page."""

import json
import re
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import sign_in
from tests.environment import ROOT, clean_environment

# --- production settings, as a server started with DEBUG off gets them (a fresh process each) ---


def production_environment(tmp_path, **variables) -> dict:
    return clean_environment(
        tmp_path, DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), CONTROLPLANE_AUDIT_LOG="", **variables
    )


def run_python(code: str, env: dict) -> dict:
    """Run `code` in a fresh interpreter with the project's settings; it prints one JSON line."""
    prelude = 'import json, os; os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")\n'
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


SETTINGS = """
from django.conf import settings
names = ["SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
         "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER", "SECURE_REDIRECT_EXEMPT"]
print(json.dumps({name: getattr(settings, name) for name in names}))
"""


def test_the_deploy_check_passes_with_production_defaults(tmp_path):
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout


def test_production_defaults_are_https_only(tmp_path):
    assert run_python(SETTINGS, production_environment(tmp_path)) == {
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 365 * 24 * 60 * 60,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": False,  # a commitment for the whole domain: opt-in
        "SECURE_PROXY_SSL_HEADER": None,  # trusting a header is opt-in
        "SECURE_REDIRECT_EXEMPT": [r"^healthz$"],
    }


def test_each_https_setting_is_switched_by_its_own_variable(tmp_path):
    switched = production_environment(
        tmp_path,
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="false",
        SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="off",
        SECURE_HSTS_PRELOAD="1",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
    )
    assert run_python(SETTINGS, switched) == {
        "SECURE_SSL_REDIRECT": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_REDIRECT_EXEMPT": [r"^healthz$"],
    }


def test_development_serves_plain_http(tmp_path):
    development = clean_environment(tmp_path, DEBUG="1")
    values = run_python(SETTINGS, development)
    assert not values["SECURE_SSL_REDIRECT"] and not values["SESSION_COOKIE_SECURE"]
    assert not values["CSRF_COOKIE_SECURE"] and values["SECURE_HSTS_SECONDS"] == 0


REQUESTS = """
import django
django.setup()
from django.test import Client

client = Client(HTTP_HOST="127.0.0.1")
answers = {}
for name, path, extra in [
    ("healthz", "/healthz", {}),
    ("login", "/login/?next=/", {}),
    ("api", "/api/me/", {}),
    ("docs", "/api/docs/", {}),
    ("login over https", "/login/", {"secure": True}),
    ("login via the proxy", "/login/", {"HTTP_X_FORWARDED_PROTO": "https"}),
]:
    response = client.get(path, **extra)
    csrf = response.cookies.get("csrftoken")
    answers[name] = {
        "status": response.status_code,
        "location": response.get("Location"),
        "hsts": response.get("Strict-Transport-Security"),
        "csp": response.get("Content-Security-Policy"),
        "csrfCookieSecure": bool(csrf and csrf["secure"]),
    }
print(json.dumps(answers))
"""


def test_plain_http_redirects_to_https_except_the_health_check(tmp_path):
    database = f"sqlite:///{tmp_path / 'cp.sqlite3'}"
    answers = run_python(REQUESTS, production_environment(tmp_path, DATABASE_URL=database, CONTROLPLANE_DEV_MODE="1"))
    assert answers["healthz"]["status"] == 200 and answers["healthz"]["location"] is None
    assert answers["login"] == {**answers["login"], "status": 301, "location": "https://127.0.0.1/login/?next=/"}
    assert answers["api"]["status"] == 301 and answers["api"]["location"] == "https://127.0.0.1/api/me/"
    assert answers["docs"]["status"] == 301
    secure = answers["login over https"]
    assert secure["status"] == 200 and secure["hsts"] == "max-age=31536000; includeSubDomains"
    assert secure["csrfCookieSecure"]  # the dev-token form sets the CSRF cookie, Secure
    assert "default-src 'self'" in secure["csp"]
    # Without SECURE_PROXY_SSL_HEADER a proxy's header is not believed.
    assert answers["login via the proxy"]["status"] == 301


def test_behind_a_tls_terminating_proxy_its_header_is_trusted_when_configured(tmp_path):
    database = f"sqlite:///{tmp_path / 'cp.sqlite3'}"
    env = production_environment(tmp_path, DATABASE_URL=database, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    proxied = run_python(REQUESTS, env)["login via the proxy"]
    assert proxied["status"] == 200 and proxied["hsts"] == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "manage.py", "web", "127.0.0.1:0"],
        # The application loaded by uvicorn itself, as another ASGI setup would load it.
        [sys.executable, "-m", "uvicorn", "controlplane.asgi:application", "--port", "0", "--lifespan", "off"],
    ],
    ids=["manage.py web", "uvicorn"],
)
def test_the_web_server_reports_a_configuration_mistake_in_one_line(tmp_path, command):
    env = clean_environment(tmp_path)  # DEBUG off and no SECRET_KEY
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if "SECRET_KEY" in line]
    assert len(lines) == 1 and lines[0].startswith("SECRET_KEY must be set when DEBUG is off"), done.stderr


# --- the browser policies on the pages themselves (the suite's own settings) ---

REQUIRED_DIRECTIVES = {
    "default-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


def unsafe_inline(html: str, csp: dict[str, list[str]]) -> list[str]:
    """Inline code the policy would block: a <script> or <style> without src and without this response's nonce,
    an event-handler or style attribute, a javascript: URL."""
    blocked = []
    for tag, attributes in re.findall(r"<(script|style)\b([^>]*)>", html, re.I):
        nonce = re.search(r'\bnonce="([^"]+)"', attributes)
        allowed = nonce and f"'nonce-{nonce[1]}'" in csp.get(f"{tag.lower()}-src", [])
        if not (tag.lower() == "script" and re.search(r"\bsrc=", attributes)) and not allowed:
            blocked.append(f"<{tag}{attributes}>")
    blocked += re.findall(r"<[^>]*\s(?:on[a-z]+|style)=[^>]*>", html, re.I)
    blocked += re.findall(r"javascript:", html, re.I)
    return blocked


def assert_strict_policy(response):
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/html")
    csp = policy(response)
    for name, values in REQUIRED_DIRECTIVES.items():
        assert csp[name] == values, (name, csp)
    for name in ("script-src", "style-src"):
        sources = csp.get(name, csp["default-src"])
        assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources
        assert all(s == "'self'" or s.startswith("'nonce-") for s in sources), sources  # no CDN
    assert unsafe_inline(response.content.decode(), csp) == []
    denied = {item.strip() for item in response["Permissions-Policy"].split(",")}
    assert {"camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"} <= denied
    return csp


@pytest.mark.django_db
def test_the_sign_in_page_runs_under_the_policy(client):
    assert_strict_policy(client.get("/login/"))
    assert client.get("/static/controlplane/base.css").status_code == 200  # its stylesheet, from 'self'


@pytest.mark.django_db
def test_the_home_page_runs_under_the_policy(client):
    page = sign_in(client, "viewer").get("/")
    assert_strict_policy(page)
    assert b"dev-viewer \xc2\xb7 viewer" in page.content and b"<h1>Services</h1>" in page.content


@pytest.mark.django_db
def test_the_admin_runs_under_the_policy(client):
    sign_in(client, "admin")
    assert_strict_policy(client.get("/admin/"))
    assert_strict_policy(client.get("/admin/services/service/add/"))


@pytest.mark.django_db
def test_the_api_docs_run_under_the_policy(client):
    page = client.get("/api/docs/")
    csp = assert_strict_policy(page)
    html = page.content.decode()
    # The inline style carries this response's nonce; every script is a file from this origin.
    style_nonce = re.search(r'<style nonce="([^"]+)"', html)[1]
    assert f"'nonce-{style_nonce}'" in csp["style-src"]
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert scripts[-1] == "/api/docs/?script="
    for url in scripts:
        assert url.startswith("/"), url
        response = client.get(url)
        assert response.status_code == 200, url
        assert "javascript" in response["Content-Type"], (url, response["Content-Type"])
    initialiser = client.get("/api/docs/?script=").content.decode()
    assert "SwaggerUIBundle(" in initialiser and '"validatorUrl": null' in initialiser
    for url in re.findall(r'<link [^>]*href="([^"]+)"', html):
        assert url.startswith("/") and client.get(url).status_code == 200, url


def test_a_violation_is_what_the_checker_finds():
    csp = {"script-src": ["'self'", "'nonce-abc'"], "style-src": ["'self'"]}
    assert unsafe_inline('<script nonce="abc">x()</script><script src="/a.js"></script>', csp) == []
    assert unsafe_inline("<script>x()</script>", csp) == ["<script>"]
    assert unsafe_inline('<script nonce="other">x()</script>', csp) == ['<script nonce="other">']
    assert unsafe_inline('<style nonce="abc">p {}</style>', csp) == ['<style nonce="abc">']  # not in style-src
    assert unsafe_inline('<a href="#" onclick="x()">', csp) == ['<a href="#" onclick="x()">']
    assert unsafe_inline('<div style="color: red">', csp) == ['<div style="color: red">']


# --- a real browser under the policy: Debian's chromium, installed by `make test` ---

CHROMIUM = "/usr/bin/chromium"


SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
WIDTHS = {"desktop": 1280, "phone": 390}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_the_pages_render_in_a_browser_without_violations(live_server, width):
    """The sign-in page and the API docs in Chromium under the policy: no CSP violation or script error, at a
    desktop and a phone width (screenshots in var/screenshots/ for a person to look at)."""
    from playwright import sync_api

    assert Path(CHROMIUM).exists(), "make test installs chromium (apt-get install chromium)"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    errors = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live_server.url}/login/")
        assert page.get_by_role("button", name="Sign in with dev token").is_visible()
        page.screenshot(path=SCREENSHOTS / f"login-{width}.png", full_page=True)
        page.goto(f"{live_server.url}/api/docs/")
        page.wait_for_selector(".opblock-tag", timeout=30_000)  # the operations, drawn from /api/schema/
        assert page.locator(".swagger-ui .info .title").inner_text().startswith("Control plane API")
        page.screenshot(path=SCREENSHOTS / f"api-docs-{width}.png")
        browser.close()
    assert errors == []
