"""Signatures both ways: Standard Webhooks (standardwebhooks.com) for what we send and for generic senders, and
PagerDuty's Webhooks v3 (`X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>`) for what PagerDuty sends.
Every comparison is constant-time."""

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

# A request signed more than this far from our clock is refused: a captured request cannot be replayed later.
TOLERANCE_SECONDS = 5 * 60
WHSEC = "whsec_"


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64 (what their libraries take)."""
    return WHSEC + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    """The HMAC key of a secret: a `whsec_` secret's bytes, any other secret's (PagerDuty's) own characters."""
    if secret.startswith(WHSEC):
        return base64.b64decode(secret.removeprefix(WHSEC))
    return secret.encode()


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def standard_headers(secrets_: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a Standard Webhooks request, signed with every secret given (during a rotation, the
    new one and the old one: a receiver that knows either accepts it)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(standard_signature(s, message_id, timestamp, body) for s in secrets_),
    }


class SignatureRefused(Exception):
    """401: the message says what was wrong, never what was expected."""


def verify_standard(secrets_: list[str], headers, body: bytes, now: datetime) -> str:
    """The webhook-id of a request signed with one of `secrets_`, recent enough; SignatureRefused otherwise."""
    message_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (message_id and timestamp and signatures):
        raise SignatureRefused("webhook-id, webhook-timestamp and webhook-signature are required.")
    try:
        sent = int(timestamp)
    except ValueError:
        raise SignatureRefused("webhook-timestamp must be a Unix time in seconds.") from None
    if abs(now.timestamp() - sent) > TOLERANCE_SECONDS:
        raise SignatureRefused("webhook-timestamp is more than 5 minutes from the server's clock.")
    given = [s for s in signatures.split() if s.startswith("v1,")]
    for secret in secrets_:
        expected = standard_signature(secret, message_id, sent, body)
        if any(hmac.compare_digest(expected, s) for s in given):
            return message_id
    raise SignatureRefused("webhook-signature matches none of the integration's secrets.")


def pagerduty_signature(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_pagerduty(secrets_: list[str], header: str, body: bytes) -> None:
    """PagerDuty signs the raw body with each of the subscription's secrets (several while one is rotated)."""
    given = [s.strip() for s in header.split(",") if s.strip().startswith("v1=")]
    if not given:
        raise SignatureRefused("X-PagerDuty-Signature is required (v1=<hex HMAC-SHA256 of the body>).")
    for secret in secrets_:
        expected = pagerduty_signature(secret, body)
        if any(hmac.compare_digest(expected, s) for s in given):
            return
    raise SignatureRefused("X-PagerDuty-Signature matches none of the integration's secrets.")


def verify_bearer(secrets_: list[str], header: str) -> None:
    """Alertmanager's `http_config.authorization` (`Authorization: Bearer <secret>`)."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SignatureRefused("Authorization: Bearer <the integration's secret> is required.")
    if not any(hmac.compare_digest(token.strip().encode(), s.encode()) for s in secrets_):
        raise SignatureRefused("the bearer token is not the integration's secret.")
