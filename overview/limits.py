"""Open-stream limits, process-wide: `CONTROLPLANE_STREAMS_PER_PRINCIPAL` per principal and
`CONTROLPLANE_STREAMS_MAX` in all. A stream holds its place from admission until it ends."""

import threading
import weakref
from collections import Counter, deque

from django.conf import settings

_open: Counter = Counter()
_open_lock = threading.Lock()
# Places given back, settled under the lock by the next reader: a finalizer may run inside any code (the
# garbage collector), even while this thread holds the lock, so it must not take it.
_given_back: deque = deque()


def _settle() -> None:
    while _given_back:
        principal = _given_back.popleft()
        _open[principal] -= 1
        if _open[principal] <= 0:
            del _open[principal]


def admit(principal: str) -> str | None:
    """Take a place for `principal`'s new stream, or say which limit refuses it: "principal" or "server"."""
    limits = settings.CONTROLPLANE_STREAMS
    with _open_lock:
        _settle()
        if _open[principal] >= limits["perPrincipal"]:
            return "principal"
        if _open.total() >= limits["max"]:
            return "server"
        _open[principal] += 1
    return None


class Place:
    """An admitted stream's place, given back exactly once: when the stream ends, or when its response is
    dropped without ever being iterated (a client that left before the first byte)."""

    def __init__(self, principal: str, owner):
        self._finalizer = weakref.finalize(owner, _given_back.append, principal)

    def give_back(self) -> None:
        self._finalizer()


def open_streams() -> tuple[int, dict]:
    with _open_lock:
        _settle()
        return _open.total(), dict(_open)
