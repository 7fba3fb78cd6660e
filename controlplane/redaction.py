"""Redaction: secrets never reach the audit trail, a run log, a stored entity, or a server log line.

One detector for every text the control plane keeps or prints, used two ways. Records the system writes
(run log messages and meta, audit metadata, server log lines) are redacted: inside a string, each
secret-shaped span is replaced by "[REDACTED]", and the rest of the text is kept ("deploying Bearer abc
to prod" becomes "deploying [REDACTED] to prod"). Entity fields users type are refused instead
(`secrets_in` says what was found, `refusal` words the error; see `DomainModel.refuse_secrets`). The
spans are:

- configured secrets, wherever they occur: dev tokens, the OIDC client secret, SECRET_KEY;
- AWS access key ids (`AKIA…`, `ASIA…`) and secret keys under their names, `Bearer …` values, JWTs, API tokens
  (`cpat_…`), a kubeconfig's `token:` and `client-key-data:`, and PEM private-key blocks (from BEGIN to END, or
  to the end of the text when the END line is missing);
- credentials a live adapter read where its connection references them (`remember`);
- credentials in URLs: the userinfo (`https://user:pw@host` → `https://REDACTED@host`, without brackets
  so that the URL stays valid) and the values of query parameters named like secrets (`?access_token=…`,
  `&password=…`, `&sig=…`).

In objects (audit metadata, run log `meta`), recursively through dicts and lists: the value under a key
that names a secret (SECRET_KEY_NAME) is replaced whole; a key that contains a secret is replaced, with
its value; every other string is redacted span by span.
"""

import logging
import re
from functools import lru_cache

from django.conf import settings

REDACTED = "[REDACTED]"
# In a URL's userinfo, brackets would read as an IPv6 host: `https://REDACTED@host/` stays a valid URL.
REDACTED_USERINFO = "REDACTED"

SECRET_KEY_NAME = re.compile(
    r"secret|token|password|passwd|pwd|api[-_]?key|access[-_]?key|private[-_]?key|credential|authorization|cookie|session",
    re.IGNORECASE,
)
SECRET_SHAPES = re.compile(
    r"(?P<aws>(?-i:(?:AKIA|ASIA)[A-Z0-9]{16}))"  # AWS access key ids (upper case only, so words never match)
    # An Authorization header value: "Bearer <anything>", or the scheme in another case ("bearer", "BEARER")
    # before a token with a digit in it, so that "a standard bearer node" in prose is not one.
    r"|(?P<bearer>\b(?-i:Bearer)\s+\S+|\bbearer\s+(?=[A-Za-z0-9._~+/-]*[0-9])[A-Za-z0-9._~+/-]+=*)"
    # PEM private key blocks, whole: to their END line, or to the end of the text when it is missing.
    r"|(?P<pem>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*))"
    # JWTs, starting where a token starts: matching from inside "eyJeyJeyJ…" would be quadratic.
    r"|(?P<jwt>(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"
    # The control plane's own API tokens (controlplane.identity.apitokens), wherever one is pasted.
    r"|(?P<apitoken>(?<![A-Za-z0-9_-])(?-i:cpat_)[A-Za-z0-9_-]{16,})"
    # A kubeconfig's credentials, as YAML or JSON prints them (`token: …`, "client-key-data": "…").
    r"|(?P<kubeconfig>(?<![A-Za-z0-9_-])(?:token|client-key-data|id-token|refresh-token)[\"']?\s*:\s*[\"']?"
    r"[A-Za-z0-9._~+/=-]{16,})"
    # AWS secret access keys and session tokens under their names (credentials files, environments, JSON).
    r"|(?P<awssecret>(?:aws_secret_access_key|aws_session_token|secret_?access_?key|session_?token)[\"']?\s*[:=]\s*"
    r"[\"']?[A-Za-z0-9/+=]{16,})",
    re.IGNORECASE | re.DOTALL,
)
# scheme://userinfo@ — the userinfo (a user name, a password, often a token) up to the authority's last @.
# Schemes start where a run of scheme characters starts, so the search stays linear.
URL_USERINFO = re.compile(r"(?P<scheme>(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://)[^/\s?#]+@", re.IGNORECASE)
# Query parameters that carry credentials without saying so in SECRET_KEY_NAME's words.
SECRET_PARAMETERS = ("auth", "bearer", "code", "jwt", "key", "sig", "assertion", "client_assertion", "otp", "pass")
# A query parameter's name: after ?, & or ; and before =, taken whole (possessively). Its value (up to &, ;,
# # or white space) is redacted when the name is a secret's (`secret_parameter`). Only names are matched, so
# a parameter whose value holds a whole URL is searched inside, not passed over.
PARAMETER_NAME = re.compile(r"(?<=[?&;])(?P<name>[^=&;#\s?]++)=")
PARAMETER_VALUE = re.compile(r"[^&;#\s]+")
_SECRET_PARAMETER_NAME = re.compile(
    "|".join([SECRET_KEY_NAME.pattern, "signature", *(f"^{name}$" for name in SECRET_PARAMETERS)]), re.IGNORECASE
)


def secret_parameter(name: str) -> bool:
    return _SECRET_PARAMETER_NAME.search(name) is not None


# Credentials this process has read from where a connection references them (a kubeconfig's token, AWS keys):
# redacted wherever they appear, like the configured ones (controlplane/connections.py).
_remembered: set[str] = set()


def remember(secret: str) -> None:
    if isinstance(secret, str) and len(secret) >= 8:
        _remembered.add(secret)


def configured_secrets() -> list[str]:
    values = [*settings.CONTROLPLANE["devTokens"], settings.SECRET_KEY, getattr(settings, "OIDC_RP_CLIENT_SECRET", "")]
    return [v for v in values if isinstance(v, str) and len(v) >= 8] + sorted(_remembered)


# What each kind of secret is called in a refusal ("must not contain a secret (found a bearer token)").
KINDS = {
    "configured": "a configured secret",
    "aws": "an AWS access key id",
    "bearer": "a bearer token",
    "pem": "a private key",
    "jwt": "a JWT",
    "apitoken": "an API token",
    "kubeconfig": "a kubeconfig credential",
    "awssecret": "an AWS secret key",
    "userinfo": "credentials in a URL",
    "parameter": "a secret-named query parameter",
    "named": "a value under a secret-named key",
}


@lru_cache(maxsize=16)
def _secrets_pattern(secrets: tuple[str, ...]) -> re.Pattern:
    # Longest first, so a secret that contains another is replaced whole.
    return re.compile("|".join(re.escape(s) for s in sorted(secrets, key=len, reverse=True)))


def _redact_text(text: str, secrets: list[str], found: list[str]) -> str:
    """`text` redacted; the kind of every span that changed is appended to `found`. Redaction and
    detection are this one function, so what is refused is exactly what would be redacted."""
    if secrets:
        before, text = text, _secrets_pattern(tuple(secrets)).sub(REDACTED, text)
        if text != before:
            found.append("configured")

    def shape(match: re.Match) -> str:
        found.append(match.lastgroup)
        return REDACTED

    text = SECRET_SHAPES.sub(shape, text)
    if "://" in text:

        def userinfo(match: re.Match) -> str:
            replacement = f"{match['scheme']}{REDACTED_USERINFO}@"
            if match.group() != replacement:
                found.append("userinfo")
            return replacement

        text = URL_USERINFO.sub(userinfo, text)
    if "=" in text:
        text = _redact_parameters(text, found)
    return text


def _redact_parameters(text: str, found: list[str]) -> str:
    """The values of secret-named query parameters redacted. Linear: each value is read once, and names
    inside a value already redacted are passed over."""
    pieces, done = [], 0
    for match in PARAMETER_NAME.finditer(text):
        if match.start() < done or not secret_parameter(match["name"]):
            continue
        value = PARAMETER_VALUE.match(text, match.end())
        if value is None:
            continue
        if value.group() != REDACTED:
            found.append("parameter")
        pieces += [text[done : match.end()], REDACTED]
        done = value.end()
    return "".join([*pieces, text[done:]])


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every secret-shaped span replaced by "[REDACTED]"."""
    return _redact_text(text, configured_secrets() if secrets is None else secrets, [])


def is_secret_shaped(text: str, secrets: list[str] | None = None) -> bool:
    return redact_text(text, secrets) != text


def _redact(value, secrets: list[str], found: list[str]):
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            key = str(key)
            if _redact_text(key, secrets, found) != key:
                key = f"{REDACTED}#{len(result)}"
                item = REDACTED
            elif SECRET_KEY_NAME.search(key):
                if item != REDACTED:
                    found.append("named")
                item = REDACTED
            result[key] = _redact(item, secrets, found)
        return result
    if isinstance(value, list | tuple):
        return [_redact(item, secrets, found) for item in value]
    if isinstance(value, str):
        return _redact_text(value, secrets, found)
    return value


def redact(value, secrets: list[str] | None = None):
    """`value` (a string, or JSON-like objects and lists) with every secret in it redacted."""
    return _redact(value, configured_secrets() if secrets is None else secrets, [])


def secrets_in(value, secrets: list[str] | None = None) -> list[str]:
    """What `redact(value)` would redact, in words ("a bearer token", "credentials in a URL"), each kind
    once in the order found; empty when `value` holds no secret. Never the secret itself."""
    found: list[str] = []
    _redact(value, configured_secrets() if secrets is None else secrets, found)
    return [KINDS[kind] for kind in dict.fromkeys(found)]


def refusal(kinds: list[str]) -> str:
    """The error for a field holding the secrets `secrets_in` found: what they are, never what they say."""
    found = kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} and {kinds[-1]}"
    return f"must not contain a secret (found {found}); the control plane stores no credentials."


class RedactingFilter(logging.Filter):
    """On a log handler: the record's message, exception and stack text are redacted before any output,
    the web server's access lines (`gunicorn.access`, `uvicorn.access`) included."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: keep the text, never the arguments
            message = str(record.msg)
        try:
            secrets = configured_secrets()
        except Exception:  # settings not (yet) usable: the shapes still apply
            secrets = []
        record.msg, record.args = redact_text(message, secrets), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info, secrets)
        return True
