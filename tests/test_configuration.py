"""Configuration from the environment and .env: README commands work as written after `make run`/`make test`,
and a mistake is one line naming the variable, not a traceback."""

import re
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from controlplane.settings import _read_env_file
from tests.environment import ROOT, clean_environment


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def written_by_make(tmp_path):
    """The .env that `make run` and `make test` write, written by the Makefile's own rule to a spare path."""
    env_file = tmp_path / ".env"
    subprocess.run(["make", "-s", f"ENV_FILE={env_file}", str(env_file)], cwd=ROOT, check=True, timeout=60)
    return env_file


def test_make_writes_a_development_env_file_with_nothing_secret(tmp_path):
    env_file = written_by_make(tmp_path)
    assert _read_env_file(env_file) == {"DEBUG": "1"}
    env_file.write_text("DEBUG=1\nLOG_LEVEL=DEBUG\n")  # edited by hand: make keeps it
    written_by_make(tmp_path)
    assert _read_env_file(env_file) == {"DEBUG": "1", "LOG_LEVEL": "DEBUG"}
    assert ".env" in (ROOT / ".gitignore").read_text().split(), ".env must be git-ignored"


def test_readme_commands_work_as_written_with_the_env_file(tmp_path):
    env = clean_environment(tmp_path, CONTROLPLANE_ENV_FILE=str(written_by_make(tmp_path)))
    assert "DEBUG" not in env
    assert manage("migrate", "--noinput", "-v0", env=env).returncode == 0
    done = manage("audit_verify", env=env)
    assert done.returncode == 0, done.stderr
    assert "audit trail intact" in done.stdout
    readme = (ROOT / "README.md").read_text()
    commands = sorted(set(re.findall(r"python manage\.py ([a-z_]+)", readme)))
    assert {"audit_verify", "audit_export", "load_demo", "loaddata", "seed"} <= set(commands)
    for command in commands:
        done = manage(command, "--help", env=env)
        assert done.returncode == 0, (command, done.stderr)


def test_without_env_file_or_debug_the_server_refuses_to_start(tmp_path):
    done = manage("audit_verify", env=clean_environment(tmp_path))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("SECRET_KEY must be set when DEBUG is off")


def test_the_real_environment_wins_over_the_env_file(tmp_path):
    env = clean_environment(tmp_path, CONTROLPLANE_ENV_FILE=str(written_by_make(tmp_path)), DEBUG="0")
    done = manage("check", env=env)
    assert done.returncode == 1 and done.stderr.startswith("SECRET_KEY must be set when DEBUG is off")


def test_the_env_file_parser(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\n\nDEBUG=1\nexport LOG_LEVEL = warning\nOIDC_RP_SCOPES='openid email'\nEMPTY=\nURL=\"a=b#c\"\n"
    )
    assert _read_env_file(env_file) == {
        "DEBUG": "1",
        "LOG_LEVEL": "warning",
        "OIDC_RP_SCOPES": "openid email",
        "EMPTY": "",
        "URL": "a=b#c",
    }
    assert _read_env_file(tmp_path / "missing") == {}
    env_file.write_text("DEBUG=1\nthe-secret-password\n")
    with pytest.raises(ImproperlyConfigured, match=r"\.env, line 2: expected KEY=VALUE, like DEBUG=1\.$") as refused:
        _read_env_file(env_file)
    assert "secret" not in str(refused.value).replace(str(tmp_path), "")


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PORT", "abc", "PORT must be a whole number, like PORT=8000 (got 'abc')."),
        ("PORT", "70000", "PORT must be between 1 and 65535, like PORT=8000 (got '70000')."),
        ("CONTROLPLANE_OIDC_JWKS_CACHE_SECONDS", "x", "must be a whole number, like CONTROLPLANE_OIDC_JWKS_CACHE_SEC"),
        ("CONTROLPLANE_OIDC_LEEWAY_SECONDS", "-1", "must be 0 or more, like CONTROLPLANE_OIDC_LEEWAY_SECONDS=5"),
        ("CONTROLPLANE_STEP_DELAY_SECONDS", "x", "must be a number, like CONTROLPLANE_STEP_DELAY_SECONDS=1 (got 'x')."),
        ("CONTROLPLANE_STALE_RUN_SECONDS", "nan", "must be a number, 0 or more, like CONTROLPLANE_STALE_RUN_SECON"),
        ("SECURE_HSTS_SECONDS", "1y", "must be a whole number, like SECURE_HSTS_SECONDS=0"),
        ("DEBUG", "maybe", "DEBUG must be on or off (1/0, true/false, yes/no, on/off), like DEBUG=0 (got 'maybe')."),
        ("CONTROLPLANE_INDEX_CACHE", "sometimes", "must be on or off"),
        ("DATABASE_URL", "nosuch://x", "DATABASE_URL has an unknown scheme 'nosuch', like DATABASE_URL=postgres://"),
        ("DATABASE_URL", "postgres://", "DATABASE_URL must name a database, like DATABASE_URL=postgres://"),
        ("DATABASE_URL", "postgres://cp:hunter2@db:port/cp", "DATABASE_URL is not a database URL"),
        ("DATABASE_URL", "garbage", "DATABASE_URL is not a database URL, like DATABASE_URL=postgres://"),
        ("CONTROLPLANE_OIDC_ROLE_MAP", "{admins", "CONTROLPLANE_OIDC_ROLE_MAP is not valid JSON (line 1, column 2:"),
        ("CONTROLPLANE_OIDC_ROLE_MAP", '["admin"]', "CONTROLPLANE_OIDC_ROLE_MAP must be a JSON object"),
        ("CONTROLPLANE_DEV_TOKENS", '{"hunter2', "CONTROLPLANE_DEV_TOKENS is not valid JSON (line 1, column 2),"),
        ("OIDC_OP_ISSUER", "sso.example.com", "OIDC_OP_ISSUER must be an absolute http(s) URL, like OIDC_OP_ISSUER="),
        ("OIDC_OP_JWKS_ENDPOINT", "https://sso:x/certs", "OIDC_OP_JWKS_ENDPOINT must be an absolute http(s) URL"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, like LOG_LEVEL=INFO"),
        ("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https", "must be a header name, like SECURE_PROXY_SSL_HEADER="),
        ("CONTROLPLANE_CONNECTIONS", "/nonexistent/connections.json", "names a file that cannot be read"),
        (
            "CONTROLPLANE_CONNECTIONS",
            '{"prod": {"adapter": "aws", "region": "eu-west-1", "cluster": "p", "aws_secret_access_key": "hunter2"}}',
            "CONTROLPLANE_CONNECTIONS connection 'prod': 'aws_secret_access_key' looks like a credential",
        ),
        ("CONTROLPLANE_DRIFT_INTERVAL", "soon", "must be a duration, 0 or more (seconds, or with s, m, h or d)"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(tmp_path, variable, value, says):
    env = clean_environment(tmp_path, **{"DEBUG": "1", variable: value})
    done = manage("check", env=env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"{variable} ") and says in done.stderr
    assert "hunter2" not in done.stderr  # passwords and tokens are never echoed


def test_a_good_value_of_each_kind_is_read(tmp_path):
    env = clean_environment(
        tmp_path,
        DEBUG="yes",
        PORT="9000",
        CONTROLPLANE_STEP_DELAY_SECONDS="0.25",
        CONTROLPLANE_OIDC_ROLE_MAP='{"ops": "admin"}',
        OIDC_OP_ISSUER="http://127.0.0.1:9999/realms/x",
        LOG_LEVEL="warning",
    )
    code = (
        "import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'controlplane.settings')\n"
        "from django.conf import settings as s\n"
        "print(s.DEBUG, s.PORT, s.CONTROLPLANE_WORKFLOWS['stepDelaySeconds'], s.CONTROLPLANE['oidc']['roleMap'],"
        " s.CONTROLPLANE['oidc']['issuer'], s.LOG_LEVEL)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True 9000 0.25 {'ops': 'admin'} http://127.0.0.1:9999/realms/x WARNING", done.stderr
