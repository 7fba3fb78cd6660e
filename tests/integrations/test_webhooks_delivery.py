"""Webhooks out, as a receiver sees them (docs/integrations.md, "Delivery"): real HTTP servers on 127.0.0.1 get
every try, verified with the Standard Webhooks reference library; retries are driven on a frozen clock with
`deliver_due()`, never by sleeping."""

import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from audit.models import AuditEvent
from controlplane.errors import Conflict
from controlplane.identity.context import acting_as
from incidents.models import Incident
from integrations import delivery, lifecycle, signatures
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOLD_LIMIT = 10  # seconds a held receiver waits at most for its test to let it answer: nothing can hang


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


class Receiver:
    """A webhook receiver: records every request and answers each with the next programmed (status, headers[,
    body]), then 200. While `hold` is an Event, it waits for that event (at most HOLD_LIMIT s) before answering."""

    def __init__(self):
        self.requests: list[Request] = []
        self.answers: list[tuple] = []
        self.hold: threading.Event | None = None
        self.arrived = threading.Event()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.receiver = self
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.base}/hooks/in?team=ops"

    def answer(self, *answers: int | tuple) -> None:
        self.answers.extend((*a, b"received")[:3] if isinstance(a, tuple) else (a, {}, b"received") for a in answers)

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def _any(self):
        receiver: Receiver = self.server.receiver
        sent = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with receiver.lock:
            receiver.requests.append(
                Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, sent)
            )
            status, headers, body = receiver.answers.pop(0) if receiver.answers else (200, {}, b"received")
            hold = receiver.hold
        receiver.arrived.set()
        if hold is not None:
            hold.wait(HOLD_LIMIT)
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the sender gave up waiting

    do_POST = do_GET = _any

    def log_message(self, format, *args):
        pass


@pytest.fixture
def receivers():
    """Start receivers: `receivers()` is a new one; all are stopped after the test."""
    started: list[Receiver] = []

    def start() -> Receiver:
        started.append(Receiver())
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def receiver(receivers):
    return receivers()


@pytest.fixture(autouse=True)
def private_allowed(settings):
    """The receivers listen on 127.0.0.1: allowed, as on-premises installs allow it (tests of refusals turn it off)."""
    settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = True


@pytest.fixture
def frozen():
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


def webhook(receiver: Receiver, events=("service.create",), format="standard") -> tuple[WebhookEndpoint, str]:
    with acting_as("tests"):
        return lifecycle.create_webhook(receiver.url, list(events), format=format)


def verified(secret: str, request: Request) -> dict:
    """The body of `request`, verified as any Standard Webhooks receiver verifies it (at the current time)."""
    return Webhook(secret).verify(request.body, request.headers)


def only(queryset):
    (row,) = queryset
    return row


def deliveries(endpoint) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("created_at", "id"))


def test_a_delivery_is_a_signed_post_that_the_standard_webhooks_library_verifies(frozen, receiver, make_service):
    _, secret = webhook(receiver)
    with acting_as("tests"):
        service = make_service()
    sent = delivery.deliver_due()

    assert [d.state for d in sent] == ["succeeded"]
    (request,) = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/in?team=ops")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["host"] == receiver.base.removeprefix("http://")
    assert request.headers["webhook-id"] == sent[0].id and sent[0].id.startswith("msg-")
    assert request.headers["webhook-timestamp"] == str(int(NOON.timestamp()))
    payload = verified(secret, request)
    assert payload["type"] == "service.create"
    assert payload["data"]["subject"]["id"] == service.id
    assert payload["data"]["actor"] == "system:tests"
    # Anyone else's secret, or a body changed on the way, does not verify.
    with pytest.raises(WebhookVerificationError):
        Webhook(signatures.new_secret()).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body.replace(service.id.encode(), b"svc-other"), request.headers)

    done = WebhookDelivery.objects.get(pk=sent[0].pk)
    assert (done.state, done.attempts, done.last_status, done.next_attempt_at) == ("succeeded", 1, 200, None)
    assert done.finished_at == NOON
    attempt = only(WebhookAttempt.objects.filter(delivery=done))
    assert (attempt.number, attempt.status_code, attempt.error, attempt.response) == (1, 200, "", "received")


def test_500_500_200_is_three_tries_of_one_message_each_at_its_time(frozen, receiver, make_service):
    endpoint, secret = webhook(receiver)
    receiver.answer(500, 500, 200)
    with acting_as("tests"):
        make_service()
    (pending,) = deliveries(endpoint)

    def tried() -> int:
        return len(receiver.requests)

    delivery.deliver_due()
    assert tried() == 1
    verified(secret, receiver.requests[-1])
    first = WebhookDelivery.objects.get(pk=pending.pk)
    assert (first.state, first.attempts, first.last_status) == ("pending", 1, 500)
    assert timedelta(seconds=4) <= first.next_attempt_at - NOON <= timedelta(seconds=6)  # 5 s ± 20%

    assert delivery.deliver_due() == []  # not before its time: nothing is sent right after a failure
    frozen.shift(timedelta(seconds=3.9))
    assert delivery.deliver_due() == [] and tried() == 1
    frozen.shift(timedelta(seconds=6 - 3.9))  # the schedule's 5 s, jittered by 20% at most
    delivery.deliver_due()
    assert tried() == 2
    verified(secret, receiver.requests[-1])  # signed again when sent: its timestamp is now's
    assert receiver.requests[-1].headers["webhook-timestamp"] == str(int(timezone.now().timestamp()))
    second = WebhookDelivery.objects.get(pk=pending.pk)
    assert (second.state, second.attempts) == ("pending", 2)
    assert timedelta(minutes=4) <= second.next_attempt_at - timezone.now() <= timedelta(minutes=6)  # 5 min ± 20%

    frozen.shift(timedelta(seconds=239))
    assert delivery.deliver_due() == [] and tried() == 2
    frozen.shift(timedelta(seconds=360 - 239))
    (done,) = delivery.deliver_due()
    assert tried() == 3
    verified(secret, receiver.requests[-1])

    assert {r.headers["webhook-id"] for r in receiver.requests} == {pending.id}
    assert {r.body for r in receiver.requests} == {pending.body.encode()}  # the same bytes every time
    assert (done.state, done.attempts, done.last_status, done.last_error) == ("succeeded", 3, 200, "")
    tries = WebhookAttempt.objects.filter(delivery=done).order_by("number")
    assert [(t.number, t.status_code) for t in tries] == [(1, 500), (2, 500), (3, 200)]


def test_a_receiver_that_never_succeeds_gets_eight_tries_over_a_day_then_the_delivery_fails(
    frozen, receiver, make_service
):
    endpoint, _ = webhook(receiver)
    receiver.answer(*[503] * 20)
    with acting_as("tests"):
        make_service()
    (pending,) = deliveries(endpoint)
    delivery.deliver_due()
    while WebhookDelivery.objects.get(pk=pending.pk).state == "pending":
        frozen.move_to(WebhookDelivery.objects.get(pk=pending.pk).next_attempt_at)
        delivery.deliver_due()
        assert len(receiver.requests) <= 8
    failed = WebhookDelivery.objects.get(pk=pending.pk)
    assert len(receiver.requests) == 8 == failed.attempts
    assert failed.state == "failed" and failed.next_attempt_at is None
    assert failed.last_error == "answered 503; gave up after 8 tries"
    # 5 s + 5 min + 30 min + 2 h + 5 h + 10 h + 10 h, each ±20%.
    spent = (failed.finished_at - NOON).total_seconds()
    assert 0.8 * sum(delivery.SCHEDULE) <= spent <= 1.2 * sum(delivery.SCHEDULE)
    frozen.shift(timedelta(days=2))
    assert delivery.deliver_due() == []


def test_a_change_rolled_back_writes_no_delivery_and_sends_nothing(frozen, receiver, make_service, make_environment):
    endpoint, _ = webhook(receiver, ["service.*", "environment.*"])
    with pytest.raises(RuntimeError), transaction.atomic(), acting_as("tests"):
        make_service()
        raise RuntimeError("changed my mind")
    assert deliveries(endpoint) == []
    assert delivery.deliver_due() == []
    assert receiver.requests == []

    with acting_as("tests"):
        make_environment()
    delivery.deliver_due()
    assert [json.loads(r.body)["type"] for r in receiver.requests] == ["environment.create"]


def test_each_matching_enabled_endpoint_gets_one_delivery_of_a_change(receivers, make_service, make_environment):
    with acting_as("tests"):
        environment = make_environment()
    services, creations, everything, releases, off = (receivers() for _ in range(5))
    services_hook, _ = webhook(services, ["service.*"])
    creations_hook, _ = webhook(creations, ["*.create"])
    everything_hook, _ = webhook(everything, ["*"])
    releases_hook, _ = webhook(releases, ["release.*", "incident.create"])
    off_hook, _ = webhook(off, ["*"])
    with acting_as("tests"):
        lifecycle.update_webhook(off_hook, enabled=False)
    WebhookDelivery.objects.all().delete()  # the endpoints' own webhook.* events: not what is looked at here

    with acting_as("tests"):
        service = make_service(environments=[environment])  # service.create, then service.link

    def received(endpoint):
        return [(d.event_type, json.loads(d.body)["data"]["subjectId"]) for d in deliveries(endpoint)]

    assert received(services_hook) == [("service.create", service.id), ("service.link", service.id)]
    assert received(creations_hook) == [("service.create", service.id)]
    assert received(everything_hook) == [("service.create", service.id), ("service.link", service.id)]
    assert received(releases_hook) == []
    assert received(off_hook) == []

    delivery.deliver_due()
    assert [len(r.requests) for r in (services, creations, everything, releases, off)] == [2, 1, 2, 0, 0]
    # One audit event, one webhook-id per endpoint: the same event to two endpoints is two messages.
    ids = {r.requests[0].headers["webhook-id"] for r in (services, creations, everything)}
    assert len(ids) == 3


def test_410_disables_the_endpoint_and_fails_what_it_still_had_without_sending_it(frozen, receiver, make_service):
    endpoint, _ = webhook(receiver)
    receiver.answer(410)
    with acting_as("tests"):
        make_service()
        make_service()
    first, second = deliveries(endpoint)

    delivery.deliver_due()
    assert len(receiver.requests) == 1
    endpoint.refresh_from_db()
    assert endpoint.disabled_at == NOON and not endpoint.enabled
    assert "410" in endpoint.disabled_reason
    event = only(AuditEvent.objects.filter(action="webhook.disable"))
    assert (event.subject_id, event.actor) == (endpoint.id, "system:worker")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.attempts, first.last_status) == ("failed", 1, 410)
    assert (second.state, second.attempts) == ("failed", 0)
    assert second.last_error.startswith("not sent:") and second.finished_at == NOON

    with acting_as("tests"):
        make_service()  # a disabled endpoint is owed nothing new
    frozen.shift(timedelta(days=1))
    assert delivery.deliver_due() == []
    assert len(receiver.requests) == 1 and len(deliveries(endpoint)) == 2


def test_429_waits_at_least_its_retry_after(frozen, receiver, make_service):
    endpoint, secret = webhook(receiver)
    receiver.answer((429, {"Retry-After": "120"}), 200)
    with acting_as("tests"):
        make_service()
    delivery.deliver_due()
    (waiting,) = deliveries(endpoint)
    assert (waiting.state, waiting.last_status) == ("pending", 429)
    assert waiting.next_attempt_at - NOON >= timedelta(seconds=120)

    frozen.shift(timedelta(seconds=119))
    assert delivery.deliver_due() == [] and len(receiver.requests) == 1
    frozen.shift(timedelta(seconds=1))
    (done,) = delivery.deliver_due()
    assert done.state == "succeeded" and len(receiver.requests) == 2
    verified(secret, receiver.requests[-1])


def test_429_with_an_http_date_retry_after_waits_until_then(frozen, receiver, make_service):
    endpoint, _ = webhook(receiver)
    receiver.answer((429, {"Retry-After": "Mon, 02 Mar 2026 12:10:00 GMT"}))
    with acting_as("tests"):
        make_service()
    delivery.deliver_due()
    (waiting,) = deliveries(endpoint)
    assert waiting.next_attempt_at == NOON + timedelta(minutes=10)


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_a_client_error_fails_at_once_without_a_retry(frozen, receiver, make_service, status):
    endpoint, _ = webhook(receiver)
    receiver.answer(status)
    with acting_as("tests"):
        make_service()
    delivery.deliver_due()
    (failed,) = deliveries(endpoint)
    assert (failed.state, failed.attempts, failed.last_status, failed.next_attempt_at) == ("failed", 1, status, None)
    assert failed.last_error == f"answered {status}, not retried"
    frozen.shift(timedelta(days=2))
    assert delivery.deliver_due() == [] and len(receiver.requests) == 1
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled


def test_a_redirect_is_not_followed_and_fails(frozen, receiver, make_service):
    endpoint, _ = webhook(receiver)
    receiver.answer((302, {"Location": f"{receiver.base}/elsewhere"}))
    with acting_as("tests"):
        make_service()
    delivery.deliver_due()
    assert [(r.method, r.path) for r in receiver.requests] == [("POST", "/hooks/in?team=ops")]
    (failed,) = deliveries(endpoint)
    assert (failed.state, failed.attempts, failed.last_status) == ("failed", 1, 302)


def test_a_receiver_that_does_not_answer_in_time_is_tried_again(frozen, receiver, make_service, monkeypatch):
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.5)
    endpoint, secret = webhook(receiver)
    receiver.hold = threading.Event()  # answers only when the test lets it, far beyond 0.5 s
    with acting_as("tests"):
        make_service()
    clock = time.monotonic()
    delivery.deliver_due()
    assert time.monotonic() - clock < 5
    (waiting,) = deliveries(endpoint)
    assert (waiting.state, waiting.attempts, waiting.last_status) == ("pending", 1, None)
    assert waiting.last_error == "no answer within 0.5 s"
    assert only(WebhookAttempt.objects.filter(delivery=waiting)).error == "no answer within 0.5 s"

    receiver.hold.set()
    receiver.hold = None
    frozen.shift(timedelta(seconds=6))
    (done,) = delivery.deliver_due()
    assert (done.state, done.attempts) == ("succeeded", 2)
    assert len(receiver.requests) == 2
    verified(secret, receiver.requests[-1])


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_says_so_and_is_tried_again(frozen, receiver, make_service):
    endpoint, _ = webhook(receiver)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=f"http://127.0.0.1:{unused_port()}/hooks")
    with acting_as("tests"):
        make_service()
    delivery.deliver_due()
    (waiting,) = deliveries(endpoint)
    assert (waiting.state, waiting.attempts) == ("pending", 1)
    assert waiting.last_error == "could not connect to 127.0.0.1: ConnectionRefusedError"  # not a timeout


def test_a_name_that_does_not_resolve_is_tried_again(frozen, receiver, make_service):
    endpoint, _ = webhook(receiver)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url="http://receiver.invalid/hooks")
    with acting_as("tests"):
        make_service()
    delivery.deliver_due()
    (waiting,) = deliveries(endpoint)
    assert (waiting.state, waiting.attempts) == ("pending", 1)  # DNS can be down for a while: not given up
    assert waiting.last_error.startswith("receiver.invalid does not resolve")


def test_a_delivery_to_a_private_address_fails_without_connecting_once_private_is_refused(
    frozen, receiver, make_service, settings
):
    endpoint, _ = webhook(receiver)  # created while private receivers were allowed
    settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = False
    with acting_as("tests"):
        make_service()
    delivery.deliver_due()
    assert receiver.requests == []
    (failed,) = deliveries(endpoint)
    assert (failed.state, failed.attempts, failed.last_status) == ("failed", 1, None)
    assert "127.0.0.1, a loopback address" in failed.last_error
    assert "/hooks" not in failed.last_error  # the host only: a URL's path may be its secret
    frozen.shift(timedelta(days=1))
    assert delivery.deliver_due() == [] and receiver.requests == []


def test_after_a_rotation_requests_carry_both_signatures_until_the_old_secret_expires(frozen, receiver, make_service):
    endpoint, old = webhook(receiver)
    with acting_as("tests"):
        endpoint, new = lifecycle.rotate_webhook_secret(endpoint)
        make_service()
    delivery.deliver_due()
    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verified(old, request) == verified(new, request)

    frozen.shift(timedelta(hours=24, seconds=1))  # the old secret's 24 hours are over
    with acting_as("tests"):
        make_service()
    delivery.deliver_due()
    latest = receiver.requests[-1]
    assert len(latest.headers["webhook-signature"].split(" ")) == 1
    verified(new, latest)
    with pytest.raises(WebhookVerificationError):
        verified(old, latest)


def test_a_slack_endpoint_gets_a_message_coloured_by_the_incident_severity(frozen, receiver, make_service):
    _, secret = webhook(receiver, ["incident.*"], format="slack")
    with acting_as("tests"):
        service = make_service()
        incident = Incident(
            service=service, severity="critical", title="<!channel> & db down", link="https://pd.example.com/1"
        )
        incident.save()
    delivery.deliver_due()
    (request,) = receiver.requests
    message = verified(secret, request)
    assert set(message) == {"text", "attachments"}
    assert message["text"] == f"incident.create: Incident {incident.id} by system:tests"
    (attachment,) = message["attachments"]
    assert attachment["color"] == "#b60205"
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields["Severity"] == "critical" and fields["Service"] == service.id
    # Slack's markup escaped: a title cannot mention the whole channel.
    assert fields["Title"] == "&lt;!channel&gt; &amp; db down"
    assert "<!channel>" not in request.body.decode()


def test_a_ping_is_delivered_like_any_event(db, frozen, receiver):
    endpoint, secret = webhook(receiver)
    with acting_as("tests"):
        ping = lifecycle.ping(endpoint)
    (sent,) = delivery.deliver_due()
    assert sent.id == ping.id and sent.state == "succeeded"
    payload = verified(secret, only(receiver.requests))
    assert payload["type"] == "webhook.ping"
    assert payload["data"]["subject"] == {"type": "WebhookEndpoint", "id": endpoint.id}


def test_a_redelivery_sends_the_same_message_again(frozen, receiver, make_service):
    endpoint, secret = webhook(receiver)
    with acting_as("tests"):
        make_service()
    (first,) = delivery.deliver_due()
    with acting_as("tests"):
        with pytest.raises(Conflict):
            lifecycle.redeliver(lifecycle.ping(endpoint))  # still waiting: nothing to send again
        WebhookDelivery.objects.filter(event_type="webhook.ping").delete()
        lifecycle.redeliver(first)
    frozen.shift(timedelta(minutes=1))
    (again,) = delivery.deliver_due()
    assert again.id == first.id and (again.state, again.attempts) == ("succeeded", 2)
    one, two = receiver.requests
    assert one.headers["webhook-id"] == two.headers["webhook-id"] == first.id
    assert one.body == two.body
    verified(secret, two)


def test_the_answer_kept_is_redacted_and_short(frozen, receiver, make_service):
    webhook(receiver)
    receiver.answer((500, {}, b"see https://status.example.com/?token=s3 and https://ops:hunter2@example.com/ " * 40))
    with acting_as("tests"):
        make_service()
    delivery.deliver_due()
    kept = only(WebhookAttempt.objects.all()).response
    assert kept.startswith("see https://status.example.com/?token=[REDACTED] and https://REDACTED@example.com/")
    assert "s3 " not in kept and "hunter2" not in kept
    assert len(kept) <= delivery.RESPONSE_KEPT  # what the column holds (PostgreSQL refuses a longer one)


def test_an_endpoint_with_a_backlog_hides_no_other_endpoint(frozen, receivers, make_service):
    busy, other = receivers(), receivers()
    busy_hook, _ = webhook(busy)
    other_hook, _ = webhook(other)
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            id=f"msg-backlog{n:04d}",
            endpoint=busy_hook,
            event_type="service.create",
            body="{}",
            next_attempt_at=NOON - timedelta(hours=1),
        )
        for n in range(600)
    )
    with acting_as("tests"):
        make_service()
    waiting = only(WebhookDelivery.objects.filter(endpoint=other_hook))
    # The worker claims for endpoints with nothing in flight: the busy one's 600 come first, yet do not hide it.
    assert delivery.claim_due(busy={busy_hook.id}) == [waiting.id]
    WebhookDelivery.objects.filter(pk=waiting.pk).update(state="pending", lease_until=None)
    assert delivery.claim_due() == ["msg-backlog0000", waiting.id]  # one each, the longest waiting first


def test_an_endpoint_with_a_try_in_flight_elsewhere_gets_no_other_until_its_lease_runs_out(
    frozen, receiver, make_service
):
    endpoint, _ = webhook(receiver)
    with acting_as("tests"):
        make_service()
        make_service()
    first, second = deliveries(endpoint)
    # Another worker claimed the first, and died sending it.
    WebhookDelivery.objects.filter(pk=first.pk).update(state="sending", lease_until=NOON + delivery.LEASE)
    assert delivery.deliver_due() == [] and receiver.requests == []
    frozen.shift(delivery.LEASE + timedelta(seconds=1))
    assert [d.id for d in delivery.deliver_due()] == [first.id, second.id]
    assert [r.headers["webhook-id"] for r in receiver.requests] == [first.id, second.id]
    assert only(WebhookAttempt.objects.filter(delivery=first)).number == 1


def test_a_try_that_outlived_its_claim_is_not_recorded_over_the_one_that_took_it_over(frozen, receiver, make_service):
    endpoint, _ = webhook(receiver)
    with acting_as("tests"):
        make_service()
    (waiting,) = deliveries(endpoint)
    assert delivery.claim(waiting.id, NOON)
    slow = WebhookDelivery.objects.select_related("endpoint").get(pk=waiting.pk)
    # Its lease ran out while the receiver dripped its answer; another worker claimed it and was answered.
    frozen.shift(delivery.LEASE + timedelta(seconds=1))
    assert [d.state for d in delivery.deliver_due()] == ["succeeded"]
    delivery.attempt(slow)  # the slow try comes back at last
    waiting.refresh_from_db()
    assert (waiting.state, waiting.attempts) == ("succeeded", 1)
    assert only(WebhookAttempt.objects.filter(delivery=waiting)).number == 1
    assert len(receiver.requests) == 2  # both were sent; one is on record


def test_a_delivery_claimed_before_its_endpoint_was_disabled_fails_unsent(frozen, receiver, make_service):
    endpoint, _ = webhook(receiver)
    with acting_as("tests"):
        make_service()
    (claimed,) = deliveries(endpoint)
    assert delivery.claim(claimed.id, NOON)
    with acting_as("tests"):
        lifecycle.disable(endpoint, "disabled by tests")
    claimed = delivery.send(claimed.id)
    assert (claimed.state, claimed.attempts, claimed.last_error) == ("failed", 0, "not sent: disabled by tests")
    assert receiver.requests == []


def test_each_wait_is_its_step_give_or_take_a_fifth():
    for tries, step in enumerate(delivery.SCHEDULE, start=1):
        waits = [delivery.wait_after(tries).total_seconds() / step for _ in range(200)]
        assert 0.8 <= min(waits) < 0.9 and 1.1 < max(waits) <= 1.2  # spread, and within ±20%
    assert delivery.wait_after(len(delivery.SCHEDULE) + 1) is None
    assert delivery.wait_after(1, timedelta(hours=30)) == timedelta(hours=24)  # a Retry-After beyond a day: a day


def test_retry_after_is_read_in_seconds_or_as_a_date():
    assert delivery.parse_retry_after("120", NOON) == timedelta(seconds=120)
    assert delivery.parse_retry_after("Mon, 02 Mar 2026 12:01:00 GMT", NOON) == timedelta(minutes=1)
    assert delivery.parse_retry_after("Mon, 02 Mar 2026 11:00:00 GMT", NOON) == timedelta(0)
    for unreadable in (None, "", "soon", "-5", "1.5"):
        assert delivery.parse_retry_after(unreadable, NOON) is None


# --- the worker's dispatcher ---


def eventually(condition, seconds: float = 10, what: str = "") -> None:
    """Wait until `condition()` holds, at most `seconds`."""
    pause = threading.Event()
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what or condition}"
        pause.wait(0.02)


def states(endpoint) -> list[str]:
    return [d.state for d in deliveries(endpoint)]


@pytest.mark.django_db(transaction=True)
def test_a_slow_endpoint_delays_no_other(receivers, make_service):
    slow, fast = receivers(), receivers()
    slow.hold = threading.Event()
    slow_hook, _ = webhook(slow)
    fast_hook, fast_secret = webhook(fast)
    with acting_as("tests"):
        make_service()
        make_service()
    dispatcher = delivery.Dispatcher(concurrency=4)
    try:
        assert dispatcher.round() == 2  # one of each endpoint's: one in flight per endpoint
        assert slow.arrived.wait(HOLD_LIMIT)
        # The fast endpoint's lane goes on to its second at once, without waiting for another round.
        eventually(lambda: states(fast_hook) == ["succeeded", "succeeded"], what="the fast endpoint's two")
        assert states(slow_hook) == ["sending", "pending"] and len(slow.requests) == 1  # delaying nothing
        assert dispatcher.round() == 0  # the slow one has one in flight already; the fast one has none due
        assert len(fast.requests) == 2
        for request in fast.requests:
            verified(fast_secret, request)

        slow.hold.set()
        slow.hold = None
        eventually(lambda: states(slow_hook) == ["succeeded", "succeeded"], what="the slow endpoint's second")
        eventually(lambda: not dispatcher.in_flight, what="its lane to end")
    finally:
        slow.hold and slow.hold.set()
        dispatcher.pool.shutdown(wait=True, cancel_futures=True)
    assert dispatcher.in_flight == {}


# --- signatures ---

# PagerDuty's own test vector (github.com/PagerDuty/go-pagerduty, webhookv3/webhookv3_test.go).
PAGERDUTY_SECRET = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"
PAGERDUTY_BODY = (
    b'{"event":{"id":"01BWDWL3NYY7LUFPZCC28QUCMK","event_type":"incident.priority_updated","resource_type":"incident",'
    b'"occurred_at":"2021-04-26T17:36:27.458Z","agent":{"html_url":"https://acme.pagerduty.com/users/PLH1HKV",'
    b'"id":"PLH1HKV","self":"https://api.pagerduty.com/users/PLH1HKV","summary":"Tenex Engineer",'
    b'"type":"user_reference"},"client":null,"data":{"id":"PGR0VU2","type":"incident",'
    b'"self":"https://api.pagerduty.com/incidents/PGR0VU2","html_url":"https://acme.pagerduty.com/incidents/PGR0VU2",'
    b'"number":2,"status":"triggered","title":"A little bump in the road","service":{'
    b'"html_url":"https://acme.pagerduty.com/services/PF9KMXH","id":"PF9KMXH",'
    b'"self":"https://api.pagerduty.com/services/PF9KMXH","summary":"API Service","type":"service_reference"},'
    b'"assignees":[{"html_url":"https://acme.pagerduty.com/users/PTUXL6G","id":"PTUXL6G",'
    b'"self":"https://api.pagerduty.com/users/PTUXL6G","summary":"User 123","type":"user_reference"}],'
    b'"escalation_policy":{"html_url":"https://acme.pagerduty.com/escalation_policies/PUS0KTE","id":"PUS0KTE",'
    b'"self":"https://api.pagerduty.com/escalation_policies/PUS0KTE","summary":"Default",'
    b'"type":"escalation_policy_reference"},"teams":[{"html_url":"https://acme.pagerduty.com/teams/PFCVPS0",'
    b'"id":"PFCVPS0","self":"https://api.pagerduty.com/teams/PFCVPS0","summary":"Engineering","type":"team_reference"}],'
    b'"priority":{"html_url":"https://acme.pagerduty.com/account/incident_priorities","id":"PSO75BM",'
    b'"self":"https://api.pagerduty.com/priorities/PSO75BM","summary":"P1","type":"priority_reference"},'
    b'"urgency":"high","conference_bridge":{"conference_number":1000,"conference_url":"https://example.com"},'
    b'"resolve_reason":null}}}'
)
PAGERDUTY_SIGNATURE = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"


def test_pagerduty_signatures_verify_as_pagerduty_documents_them():
    signatures.verify_pagerduty([PAGERDUTY_SECRET], PAGERDUTY_SIGNATURE, PAGERDUTY_BODY)
    # Several signatures while PagerDuty rotates (comma-separated), and several secrets on our side.
    other = "v1=" + hmac.new(b"another-secret-of-32-characters!", PAGERDUTY_BODY, hashlib.sha256).hexdigest()
    signatures.verify_pagerduty(["x" * 32, PAGERDUTY_SECRET], f"{other},{PAGERDUTY_SIGNATURE}", PAGERDUTY_BODY)
    signatures.verify_pagerduty([PAGERDUTY_SECRET], f"{other}, {PAGERDUTY_SIGNATURE}", PAGERDUTY_BODY)
    refused = [
        ([PAGERDUTY_SECRET], "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5", PAGERDUTY_BODY),
        ([PAGERDUTY_SECRET], PAGERDUTY_SIGNATURE, PAGERDUTY_BODY + b" "),  # a changed body
        (["y" * 32], PAGERDUTY_SIGNATURE, PAGERDUTY_BODY),  # another secret
        ([PAGERDUTY_SECRET], PAGERDUTY_SIGNATURE.replace("v1=", "v0="), PAGERDUTY_BODY),
        ([PAGERDUTY_SECRET], "", PAGERDUTY_BODY),
    ]
    for secrets_, header, body in refused:
        with pytest.raises(signatures.SignatureRefused):
            signatures.verify_pagerduty(secrets_, header, body)


def test_standard_webhooks_from_a_sender_using_the_reference_library_verify():
    secret = signatures.new_secret()
    body = b'{"type":"incident.triggered"}'
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now, body),
    }
    assert signatures.verify_standard([secret], headers, body, now) == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    previous = signatures.new_secret()
    assert signatures.verify_standard([previous, secret], headers, body, now)  # during a rotation
    refusals = [
        ([secret], headers, body + b" ", now),
        ([previous], headers, body, now),
        ([secret], headers, body, now + timedelta(minutes=5, seconds=1)),  # replayed later
        ([secret], headers, body, now - timedelta(minutes=5, seconds=1)),  # or dated ahead
        ([secret], {**headers, "webhook-id": "msg_other"}, body, now),
        ([secret], {**headers, "webhook-signature": ""}, body, now),
        ([secret], {**headers, "webhook-timestamp": "yesterday"}, body, now),
    ]
    for secrets_, given, signed, at in refusals:
        with pytest.raises(signatures.SignatureRefused):
            signatures.verify_standard(secrets_, given, signed, at)


def test_our_signing_matches_the_reference_library():
    secret = signatures.new_secret()
    assert secret.startswith("whsec_")
    at = datetime(2026, 3, 2, 12, 0, 7, tzinfo=UTC)
    body = '{"type":"release.activate","data":{"note":"ünïcode"}}'.encode()
    headers = signatures.standard_headers([secret], "msg-1", int(at.timestamp()), body)
    assert headers["webhook-signature"] == Webhook(secret).sign("msg-1", at, body)


def test_a_bearer_token_must_be_the_secret():
    signatures.verify_bearer(["s3cret-token-value"], "Bearer s3cret-token-value")
    signatures.verify_bearer(["old-token", "s3cret-token-value"], "bearer  s3cret-token-value ")
    for header in ("", "Bearer", "Basic s3cret-token-value", "Bearer s3cret-token-valuX", "s3cret-token-value"):
        with pytest.raises(signatures.SignatureRefused):
            signatures.verify_bearer(["s3cret-token-value"], header)
