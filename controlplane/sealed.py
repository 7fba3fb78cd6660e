"""Secrets the control plane must be able to read back (an integration's signing secret, to check a signature;
a webhook endpoint's, to sign), sealed at rest: Fernet (AES-128-CBC with HMAC-SHA256) under a key derived from
SECRET_KEY, so a copy of the database or a fixture alone does not give them away. Rotating SECRET_KEY means
rotating these secrets too (docs/integrations.md)."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

_PURPOSE = b"controlplane.sealed.v1:"


def _fernet() -> Fernet:
    key = hashlib.sha256(_PURPOSE + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode() if secret else ""


def unseal(sealed: str) -> str:
    """The secret, or "" when there is none or it was sealed under another SECRET_KEY (it then matches nothing)."""
    if not sealed:
        return ""
    try:
        return _fernet().decrypt(sealed.encode()).decode()
    except InvalidToken:
        return ""
