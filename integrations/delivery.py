"""Sending the outbox (docs/integrations.md, "Delivery"): the worker's webhooks thread claims due deliveries, at
most one in flight per endpoint, and sends them from a pool of CONTROLPLANE_WEBHOOKS_CONCURRENCY threads, so one
slow endpoint holds one thread and delays no other (and no request: nothing here runs in the web process).

A try is a POST to the address checked for SSRF (integrations.addresses), signed with the endpoint's secrets,
10 seconds at most, redirects not followed. Only a 2xx is a success. A timeout, a connection failure, a 5xx or a
429 is tried again on SCHEDULE (with jitter; a longer Retry-After wins); 410 Gone disables the endpoint; any other
answer fails the delivery at once."""

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import urllib3
from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from controlplane.identity.context import acting_as
from controlplane.redaction import redact_text
from integrations import addresses, lifecycle, signatures
from integrations.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger("controlplane.webhooks")

# Seconds from a failed try to the next: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (8 tries over about 27.6 h).
SCHEDULE = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
JITTER = 0.2  # each wait is drawn from ±20% of its step, so endpoints that failed together do not retry together
LONGEST_WAIT = timedelta(hours=24)  # a Retry-After beyond it is read as this
TIMEOUT_SECONDS = 10
LEASE = timedelta(seconds=TIMEOUT_SECONDS * 6)  # a claim a dead worker left is taken again after this
LANE_RUN = 100  # deliveries to one endpoint a pool thread sends in a row before the next round's turn
RETRIED = frozenset({429, 500, 502, 503, 504})
RESPONSE_KEPT = 500  # characters of an answer kept in the attempt log, redacted
USER_AGENT = "controlplane-webhooks/1"


def retried(status: int) -> bool:
    return status in RETRIED or 500 <= status <= 599


def wait_after(tries: int, retry_after: timedelta | None = None) -> timedelta | None:
    """How long after the `tries`-th failed try the next comes, or None when the schedule is spent."""
    if tries > len(SCHEDULE):
        return None
    step = SCHEDULE[tries - 1]
    wait = timedelta(seconds=step * random.uniform(1 - JITTER, 1 + JITTER))
    if retry_after is not None:
        wait = max(wait, min(retry_after, LONGEST_WAIT))
    return wait


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - now, timedelta(0))


class Answer:
    def __init__(self, status: int | None, response: str = "", retry_after: str | None = None, error: str = ""):
        self.status, self.response, self.retry_after, self.error = status, response, retry_after, error


def post(target: addresses.Target, headers: dict[str, str], body: bytes) -> Answer:
    """One POST to the checked address (TLS verified against the URL's host name), redirects not followed."""
    timeout = urllib3.Timeout(total=TIMEOUT_SECONDS)
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address, target.port, timeout=timeout, server_hostname=target.host, assert_hostname=target.host
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout)
    headers = {**headers, "Host": target.host_header, "Content-Type": "application/json", "User-Agent": USER_AGENT}
    try:
        response = pool.urlopen(
            "POST", target.path, body=body, headers=headers, redirect=False, retries=False,
            preload_content=False, assert_same_host=False,
        )  # fmt: skip
        try:
            text = response.read(RESPONSE_KEPT * 4, decode_content=True).decode("utf-8", "replace")
        except urllib3.exceptions.HTTPError:
            text = ""
        finally:
            response.release_conn()
        # Cut after redacting: a secret across the cut is still seen whole, and redacting can lengthen the text.
        return Answer(response.status, redact_text(text)[:RESPONSE_KEPT], response.headers.get("Retry-After"))
    except urllib3.exceptions.NewConnectionError as e:
        # Before TimeoutError: urllib3 makes a refused or unreachable connection a ConnectTimeoutError too.
        return Answer(None, error=f"could not connect to {target.host}: {type(e.__cause__ or e).__name__}")
    except (urllib3.exceptions.TimeoutError, TimeoutError):
        return Answer(None, error=f"no answer within {TIMEOUT_SECONDS} s")
    except (urllib3.exceptions.HTTPError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        return Answer(None, error=f"could not connect to {target.host}: {type(reason).__name__}")
    finally:
        pool.close()


def attempt(delivery: WebhookDelivery) -> WebhookDelivery:
    """Try `delivery` (claimed: SENDING) once, record the try, and move it on: succeeded, failed, or pending its
    next try. A 410 disables its endpoint."""
    endpoint = delivery.endpoint
    number = delivery.attempts + 1
    started = timezone.now()
    clock = time.monotonic()
    body = delivery.body.encode()
    permanent = False
    try:
        target = addresses.target(endpoint.url)
    except addresses.Unresolved as e:  # a name server down a while: tried again, like a failed connection
        answer = Answer(None, error=str(e))
    except addresses.AddressRefused as e:
        answer, permanent = Answer(None, error=str(e)), True
    else:
        headers = signatures.standard_headers(endpoint.secrets(started), delivery.id, int(started.timestamp()), body)
        answer = post(target, headers, body)
    duration_ms = int((time.monotonic() - clock) * 1000)
    now = timezone.now()
    if answer.status is not None and 200 <= answer.status <= 299:
        state, error, next_at = DeliveryState.SUCCEEDED, "", None
    elif answer.status == 410:
        state, error, next_at = DeliveryState.FAILED, "410 Gone: the endpoint was disabled", None
    elif permanent or (answer.status is not None and not retried(answer.status)):
        state, error, next_at = DeliveryState.FAILED, answer.error or f"answered {answer.status}, not retried", None
    else:
        wait = wait_after(number, parse_retry_after(answer.retry_after, now))
        error = answer.error or f"answered {answer.status}"
        if wait is None:
            state, next_at = DeliveryState.FAILED, None
            error = f"{error}; gave up after {number} tries"
        else:
            state, next_at = DeliveryState.PENDING, now + wait
    with transaction.atomic():
        # Only under the claim this try was made under: a try that outlived its lease (a receiver dripping its
        # answer past the timeout) may have been claimed and tried again elsewhere, which then counts.
        recorded = WebhookDelivery.objects.filter(
            pk=delivery.pk, state=DeliveryState.SENDING, lease_until=delivery.lease_until
        ).update(
            state=state,
            attempts=number,
            next_attempt_at=next_at,
            lease_until=None,
            last_status=answer.status,
            last_error=error[:500],
            finished_at=None if state == DeliveryState.PENDING else now,
        )
        if not recorded:
            logger.warning("webhook %s: try %d outlived its claim and is not recorded", delivery.id, number)
            delivery.refresh_from_db()
            return delivery
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=started,
            duration_ms=duration_ms,
            status_code=answer.status,
            error=answer.error[:500],
            response=answer.response,
        )
        if answer.status == 410:
            with acting_as("worker"):
                lifecycle.disable(endpoint, f"{endpoint.host} answered 410 Gone")
    delivery.refresh_from_db()
    logger.info(
        "webhook %s to %s: try %d, %s in %d ms, %s",
        delivery.id, endpoint.host, number, answer.status or answer.error, duration_ms, state,
    )  # fmt: skip
    return delivery


def _due(now: datetime, busy: set[str]):
    """(delivery id, endpoint id) of the oldest delivery waiting for a try of each enabled endpoint that is not
    `busy` and has nothing in flight (here or in another worker), the longest waiting first. One row per endpoint:
    an endpoint with thousands waiting hides no other's behind them."""
    # `state__in` spelled out as the partial index webhook_delivery_due_idx says it, so that it serves (the waiting
    # few, not an endpoint's whole history).
    waiting = WebhookDelivery.objects.filter(state__in=[DeliveryState.PENDING, DeliveryState.SENDING])
    oldest = waiting.filter(_waiting(now), endpoint=OuterRef("pk")).order_by("next_attempt_at", "created_at", "id")
    in_flight = waiting.filter(endpoint=OuterRef("pk"), state=DeliveryState.SENDING, lease_until__gte=now)
    return (
        WebhookEndpoint.objects.filter(disabled_at__isnull=True)
        .exclude(pk__in=busy)
        .exclude(Exists(in_flight))
        .annotate(due=Subquery(oldest.values("id")[:1]), due_at=Subquery(oldest.values("next_attempt_at")[:1]))
        .filter(due__isnull=False)
        .order_by("due_at", "pk")
        .values_list("due", "pk")
    )


def _waiting(now: datetime) -> Q:
    """Due for a try: pending and due, or claimed by a worker that is gone (its lease ran out)."""
    pending = Q(state=DeliveryState.PENDING, next_attempt_at__lte=now)
    return pending | Q(state=DeliveryState.SENDING, lease_until__lt=now)


def claim(delivery_id: str, now: datetime) -> bool:
    """Take `delivery_id` for one try (compare-and-swap: of several workers, one wins)."""
    taken = WebhookDelivery.objects.filter(_waiting(now), pk=delivery_id)
    return bool(taken.update(state=DeliveryState.SENDING, lease_until=now + LEASE))


def claim_due(busy: set[str] = frozenset(), limit: int = 500) -> list[str]:
    """Claim the oldest due delivery of each endpoint not in `busy` (of `limit` endpoints at most); their ids."""
    now = timezone.now()
    return [delivery_id for delivery_id, _ in _due(now, set(busy))[:limit] if claim(delivery_id, now)]


def claim_next(endpoint_id: str) -> str | None:
    """Claim the endpoint's oldest due delivery, if it has one: the next in its lane."""
    now = timezone.now()
    waiting = WebhookDelivery.objects.filter(_waiting(now), endpoint_id=endpoint_id, endpoint__disabled_at__isnull=True)
    delivery_id = waiting.order_by("next_attempt_at", "created_at", "id").values_list("id", flat=True).first()
    return delivery_id if delivery_id is not None and claim(delivery_id, now) else None


def send(delivery_id: str) -> WebhookDelivery:
    """Try a claimed delivery, unless its endpoint was disabled since it was claimed (it then fails unsent)."""
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    if not delivery.endpoint.enabled:
        WebhookDelivery.objects.filter(pk=delivery_id, state=DeliveryState.SENDING).update(
            state=DeliveryState.FAILED,
            lease_until=None,
            last_error=f"not sent: {delivery.endpoint.disabled_reason or 'the endpoint is disabled'}"[:500],
            finished_at=timezone.now(),
        )
        delivery.refresh_from_db()
        return delivery
    return attempt(delivery)


def deliver_due() -> list[WebhookDelivery]:
    """Send every delivery due now, here and one after another: what `manage.py deliver_webhooks` and the tests do
    (the worker sends from its pool, Dispatcher)."""
    sent = []
    while claimed := claim_due():
        sent.extend(send(delivery_id) for delivery_id in claimed)
    return sent


class Dispatcher:
    """The worker's webhooks thread: every `interval` seconds, claims what is due for endpoints with nothing in
    flight and sends it from the pool."""

    def __init__(self, concurrency: int | None = None):
        self.pool = ThreadPoolExecutor(concurrency or settings.CONTROLPLANE_WEBHOOKS_CONCURRENCY, "webhook")
        self.lock = threading.Lock()
        self.in_flight: dict[str, str] = {}  # endpoint id → delivery id

    def round(self) -> int:
        with self.lock:
            busy = set(self.in_flight)
        try:
            claimed = claim_due(busy)
            rows = dict(WebhookDelivery.objects.filter(pk__in=claimed).values_list("id", "endpoint_id"))
        finally:
            connections.close_all()
        for delivery_id in claimed:
            with self.lock:
                self.in_flight[rows[delivery_id]] = delivery_id
            self.pool.submit(self._send, rows[delivery_id], delivery_id)
        return len(claimed)

    def _send(self, endpoint_id: str, delivery_id: str) -> None:
        """Send `delivery_id`, then the endpoint's next due delivery, and so on (its lane: a burst to one endpoint
        goes out as fast as it answers, not one per round), until it has none due or LANE_RUN were sent."""
        close_old_connections()
        try:
            for _ in range(LANE_RUN):
                send(delivery_id)
                delivery_id = claim_next(endpoint_id)
                if delivery_id is None:
                    break
        except Exception:  # the lease runs out and the next round tries again
            logger.exception("webhook %s could not be sent", delivery_id)
        finally:
            with self.lock:
                self.in_flight.pop(endpoint_id, None)
            connections.close_all()

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        while not stop.wait(interval):
            try:
                self.round()
            except Exception:  # the next round retries
                logger.exception("webhook dispatch failed")
        self.pool.shutdown(wait=False, cancel_futures=True)


def start(sender, stop: threading.Event, **kwargs) -> Dispatcher:
    """The worker's webhooks thread (controlplane.signals.worker_started)."""
    dispatcher = Dispatcher()
    threading.Thread(target=dispatcher.run, args=(stop,), name="webhooks", daemon=True).start()
    return dispatcher
