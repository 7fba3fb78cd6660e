"""The control plane's REST API and its streams, over HTTP: nothing here knows Django.

Every failure becomes a `Failure` carrying the exit code the CLI promises (docs/cli.md) and the server's own
message, so a command never ends in a traceback. How a request travels (the standard library, or httpx for
the streams) is `cpctl.transport`'s.
"""

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from cpctl import __version__, transport
from cpctl.transport import Response, Unreachable

# Exit codes (docs/cli.md).
DONE, FAILED, USAGE, IDENTITY, NOT_FOUND, CONFLICT, SERVER = range(7)
DRIFTED = 7  # `cpctl drift`: a service's platform runs other than its current release

STATUS_EXIT = {400: USAGE, 413: USAGE, 415: USAGE, 401: IDENTITY, 403: IDENTITY, 404: NOT_FOUND, 409: CONFLICT}
# A stream sends a keep-alive every 15 s; a minute of silence is a dead connection, reopened where it stopped.
STREAM_READ_TIMEOUT = 60.0
RECONNECTS = 5  # failed attempts in a row before a stream gives up
# A write whose answer was lost (the connection dropped or timed out, a proxy's 502/503/504, or the server still
# busy with the first attempt) is sent again with its Idempotency-Key, up to this many times, backing off.
WRITES = frozenset({"POST", "PATCH"})
WRITE_RETRIES = 3
RETRY_BACKOFF = 0.25  # seconds before the first retry, doubling
LOST = frozenset({502, 503, 504})
STILL_PROCESSING = "A request with this Idempotency-Key is still being processed."


class Failure(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class PolicyRefused(Failure):
    """A policy's refusal (a `409` with a `decision`): its sentence, and the decision, which says who denied it
    and when it would next be allowed (docs/policies.md). `zones` are the time zones the next opening is also
    shown in (the environment's windows'), when the command knows them."""

    def __init__(self, message: str, body: dict):
        super().__init__(CONFLICT, message)
        self.body, self.decision = body, body["decision"]
        self.zones: list[str] = []


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event: `name` is empty for a block that only moves the stream's position (`id`), as
    the first block after connecting does."""

    name: str
    id: str
    data: dict | None


def server_message(response: Response) -> str:
    """What the server said was wrong, in one line: its `detail`, or each field with its rules."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status} {response.reason} from {response.host}"
    if isinstance(body, dict) and isinstance(body.get("detail"), str) and len(body) == 1:
        return body["detail"]
    return "; ".join(_field_messages(body)) or f"HTTP {response.status}"


def _field_messages(body, field: str = "") -> list[str]:
    if isinstance(body, dict):
        return [m for key, value in body.items() for m in _field_messages(value, f"{field}.{key}" if field else key)]
    if isinstance(body, list):
        return [m for item in body for m in _field_messages(item, field)]
    return [f"{field}: {body}" if field and field != "detail" else str(body)]


def failure(response: Response) -> Failure:
    refusal = policy_refusal(response)
    if refusal is not None:
        return refusal
    message = server_message(response)
    if response.status == 401:
        message += " (set CONTROLPLANE_TOKEN, or run `cpctl login`)"
    elif response.status == 429 and "Retry-After" in response.headers:
        message += f" (retry after {response.headers['Retry-After']} s)"
    return Failure(STATUS_EXIT.get(response.status, SERVER), message)


def policy_refusal(response: Response) -> PolicyRefused | None:
    """A `409` whose body carries a policy's decision (`{"detail": sentence, "decision": {...}}`), else None."""
    if response.status != 409:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("detail"), str) and isinstance(body.get("decision"), dict):
        return PolicyRefused(body["detail"], body)
    return None


def api(*parts: str) -> str:
    """`/api/<part>/<part>/`, each part escaped whole: an id is one path segment, whatever it holds (`..`,
    `/`, `?`), so no id can reach another endpoint than the one meant."""
    return "/api/" + "".join(quote(part, safe="").replace(".", "%2E") + "/" for part in parts)


def _given(params: dict | None) -> dict:
    return {k: v for k, v in (params or {}).items() if v is not None}


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Failure(
            USAGE, f"the control plane's URL must be http(s)://host[:port], like http://127.0.0.1:8000 (got {url!r})."
        )
    return url.rstrip("/")


def check_token(token: str) -> str:
    """The token as a header can carry it: surrounding whitespace (a file's line ending) dropped; anything
    else a bearer token cannot hold is refused without showing the token."""
    token = token.strip()
    if not token or not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise Failure(IDENTITY, "the token is empty or has characters a bearer token cannot have (not shown).")
    return token


class Client:
    def __init__(self, url: str, token: str):
        self.url, self.token = check_url(url), check_token(token)
        self.cut = False  # whether the last `items` left some out (its limit)
        self.headers = {"Authorization": f"Bearer {self.token}", "User-Agent": f"cpctl/{__version__}"}
        self.base = urlsplit(self.url)
        self._httpx_client = None
        # Plain calls over the standard library, unless a proxy is configured: then httpx, which applies it.
        self.direct = None if transport.proxied() else transport.Direct(self.base)

    @property
    def httpx_client(self):
        """An httpx client (imported only now): the streams', and every call's behind a proxy."""
        if self._httpx_client is None:
            import httpx

            self._httpx_client = httpx.Client(
                verify=transport.ssl_context(),
                timeout=httpx.Timeout(transport.TIMEOUT, connect=transport.CONNECT_TIMEOUT),
            )
        return self._httpx_client

    def target(self, path: str, params: dict | None = None) -> str:
        """What to ask the server for: an API path under the control plane's URL (its own path first), or a link
        the server gave (a list's `next`), whose path and query are asked of the same control plane, so the
        token goes nowhere else."""
        if "://" in path:
            link = urlsplit(path)
            path = link.path + (f"?{link.query}" if link.query else "")
        else:
            path = self.base.path.rstrip("/") + path
        params = _given(params)
        return path + ("&" if "?" in path else "?") + urlencode(params) if params else path

    def _unreachable(self, error: Unreachable) -> Failure:
        return Failure(SERVER, f"cannot reach the control plane at {self.url} ({error}).")

    def request(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None):
        headers = {**self.headers, "Accept": "application/json"}
        content = None
        if body is not None:
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        write = method in WRITES
        if write:  # a fresh key per write, kept across its retries: the server runs it once (docs/api.md)
            headers["Idempotency-Key"] = f'"{uuid.uuid4()}"'
        send = self.direct.send if self.direct is not None else self._through_httpx
        target = self.target(path, params)
        for attempt in range(WRITE_RETRIES + 1):
            last = attempt == WRITE_RETRIES or not write
            try:
                response = send(method, target, content, headers)
            except Unreachable as e:
                if last:
                    raise self._unreachable(e) from None
            else:
                if last or not _answer_lost(response):
                    break
            time.sleep(RETRY_BACKOFF * 2**attempt)
        if not response.is_success:
            raise failure(response)
        if response.status == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise Failure(SERVER, f"{self.url} did not answer JSON: is it a control plane?") from None

    def _through_httpx(self, method: str, target: str, content: bytes | None, headers: dict) -> Response:
        import httpx

        try:
            answer = self.httpx_client.request(method, self._absolute(target), content=content, headers=headers)
        except httpx.HTTPError as e:
            raise _httpx_unreachable(e) from None
        return _response(answer)

    def _absolute(self, target: str) -> str:
        return f"{self.base.scheme}://{self.base.netloc}{target}"

    def get(self, path: str, **params):
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict | None = None):
        return self.request("POST", path, body=body)

    def items(self, path: str, params: dict, limit: int | None) -> list[dict]:
        """A list's items in its order, following `next` until `limit` (None: all of them)."""
        params = _given(params)
        if limit is not None:
            params["pageSize"] = max(1, min(limit, 500))
        page = self.get(path, **params)
        found = list(page["results"])
        while page.get("next") and (limit is None or len(found) < limit):
            page = self.get(page["next"])  # an absolute URL: the cursor carries the filters
            found.extend(page["results"])
        self.cut = limit is not None and (len(found) > limit or bool(page.get("next")))  # more than shown
        return found if limit is None else found[:limit]

    def first(self, path: str, params: dict, match) -> dict | None:
        """The first item of a list, in its order, for which `match(item)` holds: read a page at a time, only
        as far as it is found."""
        page = self.get(path, **_given(params))
        while True:
            found = next((item for item in page["results"] if match(item)), None)
            if found is not None or not page.get("next"):
                return found
            page = self.get(page["next"])

    def tail(self, path: str, params: dict, limit: int) -> list[dict]:
        """The last `limit` items of a list, in its order (`tail=true`, then `previous`)."""
        page = self.get(path, **_given(params), tail="true", pageSize=max(1, min(limit, 500)))
        found = list(page["results"])
        while page.get("previous") and len(found) < limit:
            page = self.get(page["previous"])
            found[:0] = page["results"]
        return found[-limit:]

    def events(self, path: str, params: dict | None = None, after: str | None = None) -> Iterator[Event]:
        """A Server-Sent Events stream, for as long as the caller reads: when the server ends it (every ten
        minutes) or the connection drops, it is reopened with `Last-Event-ID`, so no event is missed or
        repeated. A refusal (401, 403, 404, 429…) is a Failure at once."""
        import httpx
        from httpx_sse import SSEError, connect_sse

        last, attempts = after, 0
        url = self._absolute(self.target(path, params))
        timeout = httpx.Timeout(transport.CONNECT_TIMEOUT, read=STREAM_READ_TIMEOUT)
        while True:
            headers = {**self.headers, "Accept": "text/event-stream", **({"Last-Event-ID": str(last)} if last else {})}
            try:
                with connect_sse(self.httpx_client, "GET", url, headers=headers, timeout=timeout) as source:
                    if not source.response.is_success:
                        source.response.read()
                        raise failure(_response(source.response))
                    for sse in source.iter_sse():
                        attempts = 0
                        last = sse.id or last
                        data = json.loads(sse.data) if sse.data else None
                        yield Event(sse.event if data is not None else "", last or "", data)
            except (httpx.HTTPError, SSEError) as e:
                attempts += 1
                if attempts > RECONNECTS:
                    raise self._unreachable(_httpx_unreachable(e)) from None
                time.sleep(min(0.5 * 2**attempts, 5.0))


def _answer_lost(response: Response) -> bool:
    """Whether a write's answer says nothing of the write: a gateway's, or the first attempt's still running."""
    if response.status in LOST:
        return True
    if response.status != 409:
        return False
    try:
        return response.json() == {"detail": STILL_PROCESSING}
    except ValueError:
        return False


def _httpx_unreachable(error: Exception) -> Unreachable:
    """An httpx (or httpx-sse) failure: its kind, and, for a connection's, httpx's words for it."""
    import httpx

    return Unreachable(type(error).__name__, str(error) if isinstance(error, httpx.TransportError) else "")


def _response(answer) -> Response:
    """An httpx answer, read whole, as cpctl reads answers."""
    return Response(answer.status_code, answer.reason_phrase, answer.headers, answer.content, answer.request.url.host)
