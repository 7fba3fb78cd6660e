"""Redaction: secrets never reach the audit trail, a run log, or the JSON Lines mirror.

Recursive through objects and lists. A value is replaced by "[REDACTED]" when its key names a secret,
when it is shaped like one, or when it contains a configured secret (dev tokens, the OIDC client
secret, SECRET_KEY). A key shaped like a secret is replaced too.
"""

import re

from django.conf import settings

REDACTED = "[REDACTED]"

SECRET_KEY_NAME = re.compile(
    r"secret|token|password|passwd|pwd|api[-_]?key|access[-_]?key|private[-_]?key|credential|authorization|cookie|session",
    re.IGNORECASE,
)
SECRET_SHAPES = re.compile(
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"  # AWS access key ids
    r"|\bBearer\s+\S+"  # an Authorization header value
    r"|-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----"  # PEM private key blocks
    r"|\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",  # JWTs
    re.IGNORECASE,
)


def configured_secrets() -> list[str]:
    values = [*settings.CONTROLPLANE["devTokens"], settings.SECRET_KEY, getattr(settings, "OIDC_RP_CLIENT_SECRET", "")]
    return [v for v in values if isinstance(v, str) and len(v) >= 8]


def is_secret_shaped(text: str, secrets: list[str]) -> bool:
    return bool(SECRET_SHAPES.search(text)) or any(secret in text for secret in secrets)


def redact(value, secrets: list[str] | None = None):
    secrets = configured_secrets() if secrets is None else secrets
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            key = str(key)
            if is_secret_shaped(key, secrets):
                key = f"{REDACTED}#{len(result)}"
                item = REDACTED
            elif SECRET_KEY_NAME.search(key):
                item = REDACTED
            result[key] = redact(item, secrets)
        return result
    if isinstance(value, list | tuple):
        return [redact(item, secrets) for item in value]
    if isinstance(value, str) and is_secret_shaped(value, secrets):
        return REDACTED
    return value
