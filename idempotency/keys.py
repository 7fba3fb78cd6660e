"""Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) on the API's writes: a retried POST or PATCH
is answered with what the first one answered, byte for byte, and nothing runs again (docs/api.md).

A key belongs to the principal that sent it. The first request claims it (a row, committed before the request
runs, under a unique constraint: of concurrent requests with one key exactly one claims it); its answer is
kept for CONTROLPLANE_IDEMPOTENCY_TTL unless it is a 5xx, so that a retry after a server error runs again. A
key claimed by a request that never finished (its process died) is taken over after ABANDONED_AFTER."""

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from idempotency.models import Attempt

HEADER = "Idempotency-Key"
RULE = (
    'must be a quoted string ("...", the draft\'s form) of 1-255 printable ASCII characters, or 1-255 visible ASCII '
    "characters without quotes."
)
_BARE = re.compile(r"[\x21-\x7e]{1,255}")
# An sf-string (RFC 8941): printable ASCII between quotes, `"` and `\` escaped by a backslash.
_QUOTED = re.compile(r'"((?:[\x20-\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
ABANDONED_AFTER = timedelta(minutes=5)  # a request still processing this long ago is not coming back
STILL_PROCESSING = "A request with this Idempotency-Key is still being processed."


class Refused(Exception):
    """A key this request cannot use: its answer's status and message."""

    def __init__(self, status: int, body: dict):
        super().__init__(body)
        self.status, self.body = status, body


def parse(header: str) -> str:
    """The key a header value names: the draft's quoted string, or a bare key. Refused (400) otherwise."""
    if header.startswith('"'):
        match = _QUOTED.fullmatch(header)
        key = re.sub(r"\\(.)", r"\1", match[1]) if match else ""
        if 1 <= len(key) <= 255:
            return key
    elif _BARE.fullmatch(header):
        return header
    raise Refused(400, {HEADER: [RULE]})


@dataclass(frozen=True)
class Request:
    principal: str
    key: str
    method: str
    path: str
    body_digest: str

    @classmethod
    def of(cls, principal: str, key: str, method: str, path: str, body: bytes) -> "Request":
        return cls(principal, key, method, path, hashlib.sha256(body).hexdigest())


def ttl() -> timedelta:
    return timedelta(seconds=settings.CONTROLPLANE_IDEMPOTENCY_TTL_SECONDS)


def claim(request: Request, now: datetime | None = None) -> Attempt | None:
    """Claim the key for `request` (None: go ahead, then `keep` or `release`), or the finished Attempt whose
    answer replays it. Refused: 409 while another request with the key runs, 422 when the key was used for
    another method, path or body."""
    now = now or timezone.now()
    for _ in range(3):  # the row in the way may expire, be abandoned or be released between two looks
        try:
            with transaction.atomic():
                Attempt.objects.create(
                    principal=request.principal,
                    key=request.key,
                    method=request.method,
                    path=request.path,
                    body_digest=request.body_digest,
                    created_at=now,
                    expires_at=now + ttl(),
                )
            return None
        except IntegrityError:
            pass
        found = Attempt.objects.filter(principal=request.principal, key=request.key).first()
        if found is None:
            continue
        stale = found.expires_at <= now or (found.status is None and found.created_at <= now - ABANDONED_AFTER)
        if stale:
            # An expired key is new again; only the row seen is removed (another request may have renewed it).
            Attempt.objects.filter(pk=found.pk, created_at=found.created_at).delete()
            continue
        if mismatch := _mismatch(found, request):
            part, detail = mismatch
            raise Refused(
                422,
                {
                    "detail": f"This Idempotency-Key was used for another request: {detail}. A new request needs a "
                    "new key.",
                    "mismatch": part,
                },
            )
        if found.status is None:
            raise Refused(409, {"detail": STILL_PROCESSING})
        return found
    raise Refused(409, {"detail": STILL_PROCESSING})


def _mismatch(found: Attempt, request: Request) -> tuple[str, str] | None:
    """Which part of `request` differs from the key's first request ("method", "path" or "body"), and how."""
    if found.method != request.method:
        return "method", f"its method was {found.method}, this one is {request.method}"
    if found.path != request.path:
        return "path", f"its path was {found.path}, this one is {request.path}"
    if found.body_digest != request.body_digest:
        return "body", f"{found.method} {found.path} with another body"
    return None


def keep(request: Request, status: int, content_type: str, location: str, body: bytes) -> None:
    """The first request's answer, kept for its retries (a 5xx is released instead: the retry runs)."""
    Attempt.objects.filter(principal=request.principal, key=request.key, status__isnull=True).update(
        status=status, content_type=content_type, location=location, body=body
    )


def release(request: Request) -> None:
    """Give the key up: the first request ended in a server error, so its retry runs as new."""
    Attempt.objects.filter(principal=request.principal, key=request.key, status__isnull=True).delete()


def purge(now: datetime | None = None) -> int:
    """Forget expired keys (the worker, each round)."""
    deleted, _ = Attempt.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted


def purge_on_round(sender, **kwargs) -> None:
    purge()
