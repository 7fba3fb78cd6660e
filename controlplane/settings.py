"""Settings. The environment is read here and nowhere else."""

import json
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


def _flag(name: str, default: bool = False) -> bool:
    return os.environ.get(name, "1" if default else "0").strip().lower() in {"1", "true", "yes", "on"}


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


SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = _development_secret_key()

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
if DEBUG:
    ALLOWED_HOSTS += ["testserver", "[::1]"]

PORT = int(os.environ.get("PORT", "8000"))

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
    "mozilla_django_oidc",
    "django_tasks",
    "django_tasks_db",
    "services",
    "releases",
    "incidents",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "controlplane.api.middleware.BodySizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Who is asking (bearer token or signed-in session), before CSRF so bearer requests skip it.
    "controlplane.identity.middleware.IdentityMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
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
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}",
        conn_max_age=60,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A web server and a worker write at once: WAL lets readers run beside the writer, IMMEDIATE takes
    # the write lock at BEGIN (no upgrade deadlock), and the timeout makes writers queue, not fail.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # The test database sits beside the database itself, so checkouts (and suites) never share one.
    _db_file = Path(DATABASES["default"]["NAME"])
    DATABASES["default"]["TEST"] = {"NAME": str(_db_file.with_name(f"test-{_db_file.name}"))}
    VAR_DIR.mkdir(exist_ok=True)

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
    raw = os.environ.get("CONTROLPLANE_DEV_TOKENS", "").strip()
    if not raw and DEV_MODE and DEV_TOKENS_FILE.exists():
        raw = DEV_TOKENS_FILE.read_text()
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError as e:
        # Never echo the value: it holds secrets.
        raise ImproperlyConfigured(
            f"CONTROLPLANE_DEV_TOKENS is not valid JSON (line {e.lineno}, column {e.colno})."
        ) from None


def _json_env(name: str, default):
    raw = os.environ.get(name, "").strip()
    try:
        return json.loads(raw) if raw else default
    except json.JSONDecodeError as e:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {e.msg}.") from None


CONTROLPLANE = {
    "devMode": DEV_MODE,
    "devTokens": _dev_tokens(),
    "oidc": {
        # Which claim carries roles (a string or a list), and how its values map to roles.
        "roleClaim": os.environ.get("CONTROLPLANE_OIDC_ROLE_CLAIM", "groups"),
        "roleMap": _json_env(
            "CONTROLPLANE_OIDC_ROLE_MAP", {"viewer": "viewer", "deployer": "deployer", "admin": "admin"}
        ),
        # The role of a user whose claims map to none; empty refuses them (403).
        "defaultRole": os.environ.get("CONTROLPLANE_OIDC_DEFAULT_ROLE", ""),
        # The actor recorded for an OIDC user: "sub" or "email".
        "actorClaim": os.environ.get("CONTROLPLANE_OIDC_ACTOR_CLAIM", "sub"),
        "issuer": os.environ.get("OIDC_OP_ISSUER", ""),
        # The `aud` that API access tokens must carry; defaults to the client id.
        "audience": os.environ.get("CONTROLPLANE_OIDC_AUDIENCE", "") or os.environ.get("OIDC_RP_CLIENT_ID", ""),
        "jwksCacheSeconds": int(os.environ.get("CONTROLPLANE_OIDC_JWKS_CACHE_SECONDS", "300")),
        # Clock skew tolerated when checking a token's expiry.
        "leewaySeconds": int(os.environ.get("CONTROLPLANE_OIDC_LEEWAY_SECONDS", "5")),
    },
}

# mozilla-django-oidc: browser login by the authorization code flow. OIDC is on when these are set.
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_OP_LOGOUT_ENDPOINT = os.environ.get("OIDC_OP_LOGOUT_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = os.environ.get("OIDC_RP_SCOPES", "openid email groups")
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

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["controlplane.identity.drf.PrincipalAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["controlplane.identity.drf.RolePermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "controlplane.api.pagination.CursorPage",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "controlplane.api.errors.exception_handler",
    "NON_FIELD_ERRORS_KEY": "nonFieldErrors",
    "UNAUTHENTICATED_USER": None,
}
API_PAGE_SIZE = 50
API_MAX_PAGE_SIZE = 500

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
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ReleaseStatusEnum": "releases.models.ReleaseStatus",
        "IncidentStatusEnum": "incidents.models.IncidentStatus",
        "SeverityEnum": "incidents.models.Severity",
    },
}

# Workflow runs (deploy, promote) execute in a background worker: `manage.py worker`.
CONTROLPLANE_WORKFLOWS = {
    # How long each simulated step takes (0 in tests and benchmarks).
    "stepDelaySeconds": float(os.environ.get("CONTROLPLANE_STEP_DELAY_SECONDS", "1")),
    # Steps made to fail on purpose, for demos and tests: "<adapter>:<step>" or "<step>", comma-separated.
    "failSteps": [s.strip() for s in os.environ.get("CONTROLPLANE_FAIL_STEPS", "").split(",") if s.strip()],
    # A running run with no progress (no log entry) for this long is failed by the worker's recovery.
    "staleAfterSeconds": float(os.environ.get("CONTROLPLANE_STALE_RUN_SECONDS", "120")),
    "recoveryIntervalSeconds": float(os.environ.get("CONTROLPLANE_RECOVERY_INTERVAL_SECONDS", "30")),
}
# The task queue: django-tasks with its database backend (durable, no extra server). A multi-host
# install can switch to Redis with django-tasks-rq by changing this setting alone.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["workflows"]}}

# The audit trail's JSON Lines mirror; empty turns it off. The database is the source of truth.
AUDIT_LOG = os.environ.get("CONTROLPLANE_AUDIT_LOG", str(VAR_DIR / "audit" / "control-plane.log"))

# Services index pages are cached, versioned by the audit trail's head (see controlplane/services_index.py).
INDEX_CACHE = _flag("CONTROLPLANE_INDEX_CACHE", default=True)
INDEX_CACHE_SECONDS = 300
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 1000}}}

# Requests larger than this are refused (413) before a view reads them.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "controlplane.identity.context.RequestContextFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(actor)s] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Django's own loggers to ours only (its defaults would print each line a second time).
    "loggers": {"django": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
