"""Settings. The environment is read here and nowhere else.

Every variable goes through the one reader for its kind (`_str`, `_int`, `_float`, `_flag`, `_json`, `_url`,
`_choice`, `_redis_url`), which refuses a bad value with one line naming the variable, what is wrong and an example;
`manage.py` prints that line and exits 1. Real environment variables win over the KEY=VALUE lines of a
`.env` file in the checkout (git-ignored; `make run` and `make test` write one for development).
"""

import hashlib
import json
import math
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


def _read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (optionally `export KEY=VALUE`, values optionally quoted); blank lines and # comments
    are skipped. A malformed line is refused by number, never echoed: it may hold a secret."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)", line)
        if not match:
            raise ImproperlyConfigured(f"{path}, line {number}: expected KEY=VALUE, like DEBUG=1.")
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


# CONTROLPLANE_ENV_FILE names another file; empty reads none.
_env_file = os.environ.get("CONTROLPLANE_ENV_FILE")
ENV_FILE = (Path(_env_file) if _env_file else None) if _env_file is not None else BASE_DIR / ".env"
if ENV_FILE is not None:
    for _key, _value in _read_env_file(ENV_FILE).items():
        os.environ.setdefault(_key, _value)  # the real environment wins


def _refuse(name: str, what: str, example: str, got: str | None = None) -> ImproperlyConfigured:
    """One line: the variable, what is wrong, an example, and (unless it may be secret) the value given."""
    given = f" (got {got!r})" if got is not None else ""
    return ImproperlyConfigured(f"{name} {what}, like {name}={example}{given}.")


def _str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


_ON, _OFF = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _flag(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in _ON | _OFF:
        return raw.strip().lower() in _ON
    raise _refuse(name, "must be on or off (1/0, true/false, yes/no, on/off)", "1" if default else "0", raw)


def _int(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise _refuse(name, "must be a whole number", str(default), raw) from None
    if value < minimum or (maximum is not None and value > maximum):
        limits = f"between {minimum} and {maximum}" if maximum is not None else f"{minimum} or more"
        raise _refuse(name, f"must be {limits}", str(default), raw)
    return value


def _float(name: str, default: float, minimum: float = 0) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise _refuse(name, "must be a number", f"{default:g}", raw) from None
    if not math.isfinite(value) or value < minimum:
        raise _refuse(name, f"must be a number, {minimum:g} or more", f"{default:g}", raw)
    return value


def _json(name: str, default, example: str, secret: bool = False):
    """A JSON object. A secret one (tokens) is never echoed, not even the piece that does not parse."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        where = f"line {e.lineno}, column {e.colno}" + ("" if secret else f": {e.msg}")
        raise _refuse(name, f"is not valid JSON ({where})", example) from None
    if not isinstance(value, dict):
        raise _refuse(name, "must be a JSON object", example, None if secret else raw)
    return value


def _url(name: str, default: str = "", example: str = "https://sso.example.com/realms/platform") -> str:
    """An absolute http(s) URL, or empty (not set)."""
    raw = os.environ.get(name, default).strip()
    if not raw:
        return raw
    try:
        parts = urlsplit(raw)
        valid = parts.scheme in {"http", "https"} and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        valid = False
    if not valid:
        raise _refuse(name, "must be an absolute http(s) URL", example, raw)
    return raw


def _choice(name: str, default: str, choices: list[str]) -> str:
    """One of `choices` (upper case), in any case."""
    raw = os.environ.get(name, default).strip()
    if raw.upper() not in choices:
        raise _refuse(name, f"must be one of {', '.join(choices)}", default, raw)
    return raw.upper()


def _redis_url(name: str) -> str:
    """A Redis URL (redis://, rediss:// or unix://) as redis-py reads it, or empty (not set). A password in
    it (before the host, or `?password=`) is never echoed."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return raw
    shown = re.sub(r"(password=)[^&]*", r"\1***", re.sub(r"://.*@", "://***@", raw))
    from redis.connection import parse_url  # only when a Redis is configured

    try:
        parts = parse_url(raw)
        valid = bool(parts.get("path") if raw.startswith("unix:") else parts.get("host"))
    except ValueError:
        valid = False
    if not valid:
        what, example = "must be a redis://, rediss:// or unix:// URL naming a server", "redis://127.0.0.1:6379/0"
        raise _refuse(name, what, example, shown)
    return raw


DEBUG = _flag("DEBUG")


def _development_secret_key() -> str:
    """A random key kept in var/ (never committed), made once per checkout; O_EXCL because the web
    server and the worker start together and must agree on it."""
    path = VAR_DIR / "dev-secret-key"
    VAR_DIR.mkdir(exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        # Never a silent fallback to development mode: production refuses to start.
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off, like SECRET_KEY=<50 random characters>; "
            "for development, `make run` or `make test` writes .env with DEBUG=1."
        )
    SECRET_KEY = _development_secret_key()

ALLOWED_HOSTS = [h.strip() for h in _str("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
if DEBUG:
    ALLOWED_HOSTS += ["testserver", "[::1]"]

PORT = _int("PORT", 8000, minimum=1, maximum=65535)
# Web processes `manage.py web` starts (gunicorn workers); one in development.
WEB_CONCURRENCY = _int("WEB_CONCURRENCY", 1 if DEBUG else 2, minimum=1, maximum=64)

INSTALLED_APPS = [
    # First, so its commands (loaddata) take precedence over Django's own.
    "controlplane",
    "controlplane.identity.apps.AdminConfig",  # the admin, open to the admin role only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's assets, served by us: no CDN
    "graphene_django",  # its graphql_schema command; GraphiQL is ours (templates/graphql/), not its CDN page
    "csp",  # the Content-Security-Policy header (django-csp)
    "mozilla_django_oidc",
    "django_tasks",
    "django_tasks_db",
    "services",
    "tokens",  # API tokens for machines (docs/api.md, "API tokens")
    "idempotency",  # Idempotency-Key on the API's writes (docs/api.md)
    "releases",
    "incidents",
    "integrations",  # incidents in from PagerDuty and Alertmanager, Standard Webhooks out (docs/integrations.md)
    "audit",
    "overview",  # the cross-app read side, above the domain apps
    "policies",  # the Cedar gate over deploys, promotions and rollbacks (docs/policies.md)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "controlplane.security.PermissionsPolicyMiddleware",
    "controlplane.api.middleware.BodySizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Who is asking (bearer token or signed-in session), before CSRF so bearer requests skip it.
    "controlplane.identity.middleware.IdentityMiddleware",
    # A retried write (the same Idempotency-Key from the same principal) is answered, not run again.
    "idempotency.middleware.IdempotencyMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "controlplane.security.PageFormsMiddleware",  # after CSRF: a forged request is a 403 first
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"
ASGI_APPLICATION = "controlplane.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite file under var/ unless DATABASE_URL names another.
DEFAULT_SQLITE_PATH = VAR_DIR / "controlplane.sqlite3"


def _database(name: str, default: str) -> dict:
    """A database URL dj-database-url understands; a password in it is never echoed."""
    raw = _str(name).strip() or default
    shown = re.sub(r"(://[^:/@]*:).*@", r"\1***@", raw)
    example = "postgres://user@127.0.0.1:5432/controlplane"
    try:
        database = dj_database_url.parse(raw)  # connections are closed after each request, or pooled (below)
    except dj_database_url.UnknownSchemeError:
        what = f"has an unknown scheme {raw.partition('://')[0]!r}" if "://" in raw else "is not a database URL"
        raise _refuse(name, what, example, shown) from None
    except ValueError:
        raise _refuse(name, "is not a database URL", example, shown) from None
    if database["ENGINE"] != "django.db.backends.sqlite3" and not database["NAME"]:
        raise _refuse(name, "must name a database", example, shown)
    return database


DATABASES = {"default": _database("DATABASE_URL", f"sqlite:///{DEFAULT_SQLITE_PATH}")}
# Connections a process keeps for its requests (docs/architecture.md, "Database connections").
DB_POOL_SIZE = _int("CONTROLPLANE_DB_POOL_SIZE", 8, minimum=1)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, keeping up to DB_POOL_SIZE closed connections for the next requests (controlplane/db/).
    DATABASES["default"]["ENGINE"] = "controlplane.db.sqlite3"
    # A web server and a worker write at once: WAL lets readers run beside the writer, IMMEDIATE takes
    # the write lock at BEGIN (no upgrade deadlock), and the timeout makes writers queue, not fail.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # The test database sits beside the database itself, so checkouts (and suites) never share one.
    _db_file = Path(DATABASES["default"]["NAME"])
    DATABASES["default"]["TEST"] = {"NAME": str(_db_file.with_name(f"test-{_db_file.name}"))}
    VAR_DIR.mkdir(exist_ok=True)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A pool per process, not persistent connections (CONN_MAX_AGE): one of those belongs to its thread, and the
    # streams' sync code runs in a thread per request under Django's ASGI handler (docs/architecture.md,
    # "Database connections"). At most CONTROLPLANE_DB_POOL_SIZE connections, each checked before it is handed
    # out (the server may have restarted), one idle beyond the first closed per idle period.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # with a pool: psycopg_pool's check on every checkout
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        "pool": {
            "min_size": 1,
            "max_size": DB_POOL_SIZE,
            "max_idle": _float("CONTROLPLANE_DB_POOL_IDLE_SECONDS", 60, minimum=0.1),
            "timeout": 10,  # seconds a request waits for a connection when all are busy
        },
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Served by WhiteNoise from the app itself (no CDN); from the source folders when DEBUG is on.
WHITENOISE_USE_FINDERS = DEBUG
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # collectstatic fills it for production

# --- Identity: dev tokens and OIDC (see README "Identity and roles") ---

# Dev mode: dev tokens are honoured. On by default only when DEBUG is.
DEV_MODE = _flag("CONTROLPLANE_DEV_MODE", default=DEBUG)
DEV_TOKENS_FILE = VAR_DIR / "dev-tokens.json"  # written by `manage.py dev_tokens` in dev mode


def _dev_tokens() -> dict:
    example = """'{"<token of 16+ characters>": {"id": "ci-bot", "role": "deployer"}}'"""
    if not _str("CONTROLPLANE_DEV_TOKENS").strip() and DEV_MODE and DEV_TOKENS_FILE.exists():
        try:
            return json.loads(DEV_TOKENS_FILE.read_text())
        except json.JSONDecodeError as e:
            raise ImproperlyConfigured(
                f"{DEV_TOKENS_FILE} is not valid JSON (line {e.lineno}, column {e.colno}); delete it for new tokens."
            ) from None
    # Never echoed: it holds secrets.
    return _json("CONTROLPLANE_DEV_TOKENS", {}, example, secret=True)


CONTROLPLANE = {
    "devMode": DEV_MODE,
    "devTokens": _dev_tokens(),
    "oidc": {
        # Which claim carries roles (a string or a list), and how its values map to roles.
        "roleClaim": _str("CONTROLPLANE_OIDC_ROLE_CLAIM", "groups"),
        "roleMap": _json(
            "CONTROLPLANE_OIDC_ROLE_MAP",
            {"viewer": "viewer", "deployer": "deployer", "admin": "admin"},
            """'{"cp-viewers": "viewer", "cp-deployers": "deployer", "cp-admins": "admin"}'""",
        ),
        # The role of a user whose claims map to none; empty refuses them (403).
        "defaultRole": _str("CONTROLPLANE_OIDC_DEFAULT_ROLE"),
        # The actor recorded for an OIDC user: "sub" or "email".
        "actorClaim": _str("CONTROLPLANE_OIDC_ACTOR_CLAIM", "sub"),
        "issuer": _url("OIDC_OP_ISSUER"),
        # The `aud` that API access tokens must carry; defaults to the client id.
        "audience": _str("CONTROLPLANE_OIDC_AUDIENCE") or _str("OIDC_RP_CLIENT_ID"),
        "jwksCacheSeconds": _int("CONTROLPLANE_OIDC_JWKS_CACHE_SECONDS", 300),
        # Clock skew tolerated when checking a token's expiry.
        "leewaySeconds": _int("CONTROLPLANE_OIDC_LEEWAY_SECONDS", 5),
    },
}

# mozilla-django-oidc: browser login by the authorization code flow. OIDC is on when these are set.
OIDC_RP_CLIENT_ID = _str("OIDC_RP_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = _str("OIDC_RP_CLIENT_SECRET")
OIDC_OP_AUTHORIZATION_ENDPOINT = _url("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = _url("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = _url("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = _url("OIDC_OP_JWKS_ENDPOINT")
OIDC_OP_LOGOUT_ENDPOINT = _url("OIDC_OP_LOGOUT_ENDPOINT")
OIDC_RP_SIGN_ALGO = _str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = _str("OIDC_RP_SCOPES", "openid email groups")
OIDC_TIMEOUT = 10
OIDC_USE_PKCE = True
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGIN_REDIRECT_URL_FAILURE = "/login/?failed=oidc"

AUTHENTICATION_BACKENDS = [
    "controlplane.identity.oidc.OIDCBackend",
    "controlplane.identity.devtokens.DevTokenBackend",
]

# A signed-in browser session lasts a working day; an API client sends its token on every request.
SESSION_COOKIE_AGE = 8 * 60 * 60
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# --- HTTPS (README "Production"). On by default when DEBUG is off (`manage.py check --deploy` passes), off in
# development so `make run` works on http://127.0.0.1. Each is switched by the variable of its own name.
SECURE_SSL_REDIRECT = _flag("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers and probes ask over plain HTTP
SESSION_COOKIE_SECURE = _flag("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = _flag("CSRF_COOKIE_SECURE", default=not DEBUG)
# HSTS: a year, subdomains of this host included. Sent on HTTPS responses only.
SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 60 * 60)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _flag("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading commits the whole registered domain to HTTPS in browsers for months, and is not ours to decide:
# opt-in, and check --deploy's reminder of it (W021) is silenced.
SECURE_HSTS_PRELOAD = _flag("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Behind a proxy that terminates TLS, the header it sets (and overwrites) to say the client used HTTPS:
# SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto trusts `X-Forwarded-Proto: https`. Off unless set.
_proxy_header = _str("SECURE_PROXY_SSL_HEADER").strip()
if _proxy_header and not re.fullmatch(r"[A-Za-z0-9-]+", _proxy_header):
    raise _refuse("SECURE_PROXY_SSL_HEADER", "must be a header name", "X-Forwarded-Proto", _proxy_header)
SECURE_PROXY_SSL_HEADER = (f"HTTP_{_proxy_header.upper().replace('-', '_')}", "https") if _proxy_header else None

# Content-Security-Policy on every response (django-csp): our own origin only, no CDN, no inline script or
# style without the request's nonce (`{{ request.csp_nonce }}`), never framed.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],  # Swagger UI's stylesheet draws its icons as data: images
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# Browser features no page here uses (controlplane/security.py sends them as Permissions-Policy).
PERMISSIONS_POLICY_DENIED = [
    "accelerometer",
    "camera",
    "display-capture",
    "geolocation",
    "gyroscope",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "usb",
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["controlplane.identity.drf.PrincipalAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["controlplane.identity.drf.RolePermission"],
    "DEFAULT_RENDERER_CLASSES": ["controlplane.api.renderers.JSONRenderer"],
    # Strict JSON: nesting depth limit, duplicate keys and lone surrogates refused (400).
    "DEFAULT_PARSER_CLASSES": ["controlplane.api.parsers.StrictJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "controlplane.api.pagination.CursorPage",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "controlplane.api.errors.exception_handler",
    "NON_FIELD_ERRORS_KEY": "nonFieldErrors",
    "UNAUTHENTICATED_USER": None,
}
API_PAGE_SIZE = 50
API_MAX_PAGE_SIZE = 500

# GraphQL at /graphql/ (docs/graphql.md): limits on one document, each refused with a message naming it.
# No per-field middleware: graphene-django's debug one (added when DEBUG is on) costs every field.
GRAPHENE = {"SCHEMA": "controlplane.graphql.schema.schema", "MIDDLEWARE": []}
GRAPHQL_MAX_DEPTH = _int("CONTROLPLANE_GRAPHQL_MAX_DEPTH", 10, minimum=2)
# Every field counts once per object it may be resolved on: `first` multiplies what is under it. The
# heaviest page a client needs (the services index, 500 services with every field) costs about 16,000.
GRAPHQL_MAX_COST = _int("CONTROLPLANE_GRAPHQL_MAX_COST", 25_000, minimum=1)
GRAPHQL_MAX_DOCUMENT_BYTES = _int("CONTROLPLANE_GRAPHQL_MAX_DOCUMENT_BYTES", 100_000, minimum=1_000)

SPECTACULAR_SETTINGS = {
    "TITLE": "Control plane API",
    "DESCRIPTION": "Services, environments, releases, workflow runs, incidents and the audit trail.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "controlplane.api.schema.add_error_responses",
        "overview.openapi.add_streams",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    # No badge from the public validator: nothing is loaded from outside (and the CSP would refuse it).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ReleaseStatusEnum": "releases.models.ReleaseStatus",
        "IncidentStatusEnum": "incidents.models.IncidentStatus",
        "SeverityEnum": "incidents.models.Severity",
        "WebhookDeliveryStateEnum": "integrations.models.DeliveryState",
        "DoraLevelEnum": "overview.dora.LEVELS",
        "RunKindEnum": "releases.models.RunKind",
    },
}

# Policies (docs/policies.md): Cedar decides every deploy, promotion and rollback. An operator's own policies
# (*.cedar files) are added from this folder; the roles that may break glass (override the built-in gates).
CONTROLPLANE_POLICY_DIR = _str("CONTROLPLANE_POLICY_DIR").strip() or None
CONTROLPLANE_BREAK_GLASS_ROLES = [
    r.strip() for r in _str("CONTROLPLANE_BREAK_GLASS_ROLES", "admin").split(",") if r.strip()
]
if not set(CONTROLPLANE_BREAK_GLASS_ROLES) <= {"viewer", "deployer", "admin"}:
    raise _refuse(
        "CONTROLPLANE_BREAK_GLASS_ROLES", "must list roles among viewer, deployer, admin", "admin,deployer",
        _str("CONTROLPLANE_BREAK_GLASS_ROLES"),
    )

# How long a run waits for its approvals before it expires: seconds, or a duration like 24h, 90m, 2d.
def _duration(name: str, default: str, zero: bool = False) -> float:
    """Seconds, or a number with s, m, h or d; 0 only where `zero` allows it (it turns something off)."""
    raw = _str(name, default).strip()
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([smhd]?)", raw)
    if match is None or (float(match[1]) <= 0 and not zero):
        what = "a duration, 0 or more" if zero else "a positive duration"
        raise _refuse(name, f"must be {what} (seconds, or with s, m, h or d)", default, raw)
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


CONTROLPLANE_APPROVAL_TTL_SECONDS = _duration("CONTROLPLANE_APPROVAL_TTL", "24h")
# How long a write's answer is kept for a retry with the same Idempotency-Key (docs/api.md, "Idempotency-Key").
CONTROLPLANE_IDEMPOTENCY_TTL_SECONDS = _duration("CONTROLPLANE_IDEMPOTENCY_TTL", "24h")
# API tokens a process has found are kept by it (tokens/store.py) until any is revoked (a marker file under var/,
# replaced by each revocation, which every process checks on every request: one stat) or a minute has passed.
# On by default on SQLite (one host); elsewhere each request looks its token up in the database.
CONTROLPLANE_API_TOKEN_CACHE = _flag(
    "CONTROLPLANE_API_TOKEN_CACHE", DATABASES["default"]["ENGINE"] == "controlplane.db.sqlite3"
)
CONTROLPLANE_API_TOKEN_REVOCATIONS = Path(_str("CONTROLPLANE_API_TOKEN_REVOCATIONS") or VAR_DIR / "api-tokens.revoked")

# Workflow runs (deploy, promote) execute in a background worker: `manage.py worker`.
CONTROLPLANE_WORKFLOWS = {
    # How long each simulated step takes (0 in tests and benchmarks).
    "stepDelaySeconds": _float("CONTROLPLANE_STEP_DELAY_SECONDS", 1),
    # Steps made to fail on purpose, for demos and tests: "<adapter>:<step>" or "<step>", comma-separated.
    "failSteps": [s.strip() for s in _str("CONTROLPLANE_FAIL_STEPS").split(",") if s.strip()],
    # A claimed run whose worker has not stamped its heartbeat for this long is failed by the worker's
    # recovery (so is an unclaimed one this old whose task was lost); a queued run is never failed for waiting.
    "staleAfterSeconds": _float("CONTROLPLANE_STALE_RUN_SECONDS", 120),
    "recoveryIntervalSeconds": _float("CONTROLPLANE_RECOVERY_INTERVAL_SECONDS", 30),
}
# How often a worker stamps the heartbeat of the run it executes: well under the stale time (a quarter of it).
CONTROLPLANE_WORKFLOWS["heartbeatSeconds"] = _float(
    "CONTROLPLANE_HEARTBEAT_SECONDS", CONTROLPLANE_WORKFLOWS["staleAfterSeconds"] / 4, minimum=0.01
)
if CONTROLPLANE_WORKFLOWS["heartbeatSeconds"] >= CONTROLPLANE_WORKFLOWS["staleAfterSeconds"]:
    raise _refuse(
        "CONTROLPLANE_HEARTBEAT_SECONDS",
        "must be less than CONTROLPLANE_STALE_RUN_SECONDS",
        f"{CONTROLPLANE_WORKFLOWS['staleAfterSeconds'] / 4:g}",
        str(CONTROLPLANE_WORKFLOWS["heartbeatSeconds"]),
    )
def _connections() -> dict:
    """CONTROLPLANE_CONNECTIONS: JSON, or the path of a JSON file (docs/adapters.md, "Connections")."""
    from controlplane import connections

    name = "CONTROLPLANE_CONNECTIONS"
    example = """'{"k8s-prod": {"adapter": "k8s", "kubeconfig": "/etc/cp/kubeconfig", "context": "prod"}}'"""
    raw = _str(name).strip()
    if raw and not raw.startswith("{"):
        try:
            raw = Path(raw).read_text()
        except OSError as e:
            raise _refuse(name, f"names a file that cannot be read ({e.strerror})", example, raw) from None
    if not raw:
        return {}
    try:
        return connections.parse(json.loads(raw))
    except json.JSONDecodeError as e:
        raise _refuse(name, f"is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})", example) from None
    except ValueError as e:
        raise _refuse(name, str(e), example) from None


# Where live adapters deploy (controlplane/connections.py); an environment names one, else its adapters simulate.
CONTROLPLANE_CONNECTIONS = _connections()
# How often the worker compares what runs on each connected environment's platform with its current releases
# (releases/drift.py); 0 turns the periodic check off (a check on demand still runs).
CONTROLPLANE_DRIFT_INTERVAL_SECONDS = _duration("CONTROLPLANE_DRIFT_INTERVAL", "5m", zero=True)

# Webhooks out (docs/integrations.md): on-premises installs deliver to private addresses (so do the tests); the
# worker sends to this many endpoints at once (one delivery in flight per endpoint).
CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = _flag("CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE")
CONTROLPLANE_WEBHOOKS_CONCURRENCY = _int("CONTROLPLANE_WEBHOOKS_CONCURRENCY", 8, minimum=1, maximum=256)

# Live streams (Server-Sent Events, README "Live streams"): limits per web process, and the change feed's pace.
CONTROLPLANE_STREAMS = {
    # Open streams one principal may hold (429 beyond), and all principals together (503 beyond).
    "perPrincipal": _int("CONTROLPLANE_STREAMS_PER_PRINCIPAL", 20, minimum=1),
    "max": _int("CONTROLPLANE_STREAMS_MAX", 2000, minimum=1),
    # A comment goes out after this long without an event: proxies keep the connection, and a client that
    # went away without a word is noticed when the write fails.
    "keepaliveSeconds": _float("CONTROLPLANE_STREAM_KEEPALIVE_SECONDS", 15, minimum=0.1),
    # How often the feed looks for new rows when nothing wakes it (SQLite has no notifications; on
    # PostgreSQL a commit wakes it at once, and this is only the safety net).
    "pollSeconds": _float("CONTROLPLANE_STREAM_POLL_SECONDS", 0.25, minimum=0.01),
    # A stream ends after this long; the client reconnects with Last-Event-ID and carries on.
    "maxSeconds": _float("CONTROLPLANE_STREAM_MAX_SECONDS", 600, minimum=1),
}

# The task queue: django-tasks with its database backend (durable, no extra server). A run's task is
# written in the run's own transaction, which needs this backend (see README, "Recovery").
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["workflows"]}}

# The audit trail's JSON Lines mirror; empty turns it off. The database is the source of truth.
AUDIT_LOG = _str("CONTROLPLANE_AUDIT_LOG", str(VAR_DIR / "audit" / "control-plane.log"))

# Services index pages are cached, versioned by the audit trail's head (see overview/services_index.py): in
# each process's memory, or with REDIS_URL in Redis, shared by every web process (docs/architecture.md).
INDEX_CACHE = _flag("CONTROLPLANE_INDEX_CACHE", default=True)
# The dashboard's index page (`/`) likewise, in the same cache, with a setting of its own: the benchmarks measure
# the API's index computed and the page as its users get it (overview/views.py, docs/pages.md).
INDEX_PAGE_CACHE = _flag("CONTROLPLANE_INDEX_PAGE_CACHE", default=True)
INDEX_CACHE_SECONDS = 300
REDIS_URL = _redis_url("REDIS_URL")


def _database_identity(database: dict) -> str:
    """Where the database is: the same for every process of one control plane, different for another's."""
    if database["ENGINE"] == "controlplane.db.sqlite3":
        return f"sqlite:{Path(database['NAME']).resolve()}"
    return f"{database['ENGINE']}:{database.get('HOST') or ''}:{database.get('PORT') or ''}/{database['NAME']}"


# Keys in a shared Redis start with this, so control planes (and test suites) on other databases never read
# each other's pages: a hash of the database's identity unless set (two databases at the same address, e.g.
# each machine's own 127.0.0.1:5432/controlplane, sharing one Redis, must set it).
CACHE_PREFIX = _str("CONTROLPLANE_CACHE_PREFIX").strip() or (
    "cp-" + hashlib.sha256(_database_identity(DATABASES["default"]).encode()).hexdigest()[:16]
)
if not re.fullmatch(r"[A-Za-z0-9._:-]{1,100}", CACHE_PREFIX):
    raise _refuse("CONTROLPLANE_CACHE_PREFIX", "must be letters, digits and . _ : - (100 at most)", "cp-staging")


def shared_cache(url: str, prefix: str) -> dict:
    """Django's Redis cache at `url`. Short timeouts: when Redis is slow or down the index computes its pages
    rather than waiting (overview/services_index.py)."""
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": prefix,
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.5},
    }


CACHES = {
    "default": shared_cache(REDIS_URL, CACHE_PREFIX)
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 1000}}
}

# Requests larger than this are refused (413) before a view reads them.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

LOG_LEVEL = _choice("LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request": {"()": "controlplane.identity.context.RequestContextFilter"},
        # Every line is redacted like the audit trail (tokens in request lines, secrets in messages).
        "redact": {"()": "controlplane.redaction.RedactingFilter"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(actor)s] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request", "redact"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Django's own loggers to ours only (its defaults would print each line a second time), the request lines
    # of Django's development server (django.server; the test suite's live server) included, so they are
    # redacted too.
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # The web server's (`manage.py web`): startup lines and one access line per request, gunicorn's for the
        # ordinary requests, uvicorn's for the streams (controlplane/serving.py).
        "gunicorn": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "uvicorn": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}
