"""Benchmark: what the policy gate costs, in process and on a deploy or promote request.

Usage: python -m bench.policies [--decisions 2000] [--rounds 60] [--no-write]

On a fresh SQLite database with the demo data:

- in process, the decision for promoting svc-demo's rel-123 to env-prod (the demo's three refs: a change window,
  promotion order, an incident gate): `gate.decide` on facts gathered once (one Cedar batch of four requests),
  the same with its facts gathered each time (`gate.situation`: the database queries), and a refusal (on a
  Sunday, outside the window), which also looks for `nextAllowedAt`;
- against the production web server (`manage.py web`, one process), the same REST request with and without
  policies, alternating: `POST /api/releases/<id>/promote/` into an environment with the demo's three refs
  and into one with none, and `POST /api/releases/<id>/deploy/` into an environment with the demo's window and
  incident gate (a deploy never passes `policy:requires`: it is refused) and into one with none. "Without" is an
  environment without refs, not a switch: the gate still gathers its facts and asks Cedar the action's own
  request (an operator's policies and freezes apply everywhere), so the ratio is what refs add. The window is a
  copy of the demo's open around the clock, so the figures do not depend on the hour the benchmark runs at; it
  asks Cedar the same requests whatever it answers. Each round uses a service of its own (one rollout at a
  time per service and environment; no worker runs them).
"""

import argparse
import http.client
import json
import os
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime

from bench.api import server_env
from bench.report import write_section
from bench.servers import web_server

OPEN_AT = datetime(2026, 12, 9, 9, 0, tzinfo=UTC)  # Wednesday 10:00 in Berlin: the demo's window is open
CLOSED_AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # Sunday 13:00 in Berlin
DEMO_REFS = ["policy:change-window:{window}", "policy:requires:env-staging", "policy:incident-gate:critical"]
WARM_UP_ROUNDS = 2  # requests not counted: the server's first (its imports, the policy book, the zone files)
BY = "\N{MULTIPLICATION SIGN}"
AIMS = {"decision": 1.0, "ratio": 1.2}  # ms median in process; with/without policies, per request


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=2000, help="in-process decisions of each kind")
    parser.add_argument("--rounds", type=int, default=60, help="requests of each kind against the server")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md alone")
    return parser.parse_args()


def setup(token: str) -> dict:
    """A fresh database with the demo, Django set up in this process on it; the server's environment."""
    folder = tempfile.mkdtemp(prefix="cp-bench-policies-")
    env = {
        **server_env(token),
        "CONTROLPLANE_DEV_TOKENS": json.dumps({token: {"id": "bench", "role": "deployer"}}),
        "DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3",
        "CONTROLPLANE_POLICY_DIR": "",
    }
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("load_demo", verbosity=0)
    return env


def timed_ms(fn, n: int) -> list[float]:
    for _ in range(min(50, n)):  # warm: the policy book parsed, the zone files read
        fn()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def in_process(n: int) -> dict[str, list[float]]:
    from policies import gate
    from releases.models import Release
    from services.models import Environment

    prod, source = Environment.objects.get(pk="env-prod"), Release.objects.get(pk="rel-123")

    def facts():
        return gate.situation("promote", prod, source.service_id, source=source, at=OPEN_AT)

    s = facts()
    allowed, refused = gate.decide(s, at=OPEN_AT), gate.decide(s, at=CLOSED_AT)
    assert allowed.allowed and len(allowed.evaluated) == 3, allowed.as_json()
    assert not refused.allowed and refused.next_allowed_at, refused.as_json()
    return {
        "allowed": timed_ms(lambda: gate.decide(s, at=OPEN_AT), n),
        "gathered": timed_ms(lambda: gate.decide(facts(), at=OPEN_AT), n),
        "refused": timed_ms(lambda: gate.decide(s, at=CLOSED_AT), n),
    }


def request_data(rounds: int) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The environments (gated and plain, for promotions and for deploys) and, per round, a service's releases:
    one Active in env-staging (to promote) and a Draft in each deploy environment."""
    from django.db import connection

    from releases import lifecycle
    from releases.models import Release
    from services.models import ChangeWindow, Environment, Service

    demo = ChangeWindow.objects.get(name="weekday")
    always = ChangeWindow(
        name="around-the-clock", timezone=demo.timezone, days=[1, 2, 3, 4, 5, 6, 7], start="00:00", end="24:00"
    )
    always.save()
    refs = [ref.format(window=always.name) for ref in DEMO_REFS]
    envs = {}
    for key, name, policy_refs in [
        ("promote-gated", "gated", refs),
        ("promote-plain", "plain", []),
        ("deploy-gated", "gated-deploys", [refs[0], refs[2]]),
        ("deploy-plain", "plain-deploys", []),
    ]:
        env = Environment(name=name, policy_refs=policy_refs)
        env.save()
        envs[key] = env
    staging = Environment.objects.get(pk="env-staging")
    per_round = []
    for n in range(rounds):
        service = Service(name=f"Bench {n}", repo=f"github.com/acme/bench-{n}", deployment_adapters=["k8s"])
        service.save()
        service.environments.set([staging, *envs.values()])
        source = Release(service=service, environment=staging, sha="4f2a9c1", version=f"1.{n}.0")
        source.save()
        lifecycle.activate(lifecycle.begin_rollout(source))
        releases = {"source": source.pk}
        for key in ("deploy-gated", "deploy-plain"):
            draft = Release(service=service, environment=envs[key], sha="4f2a9c1", version=f"1.{n}.0")
            draft.save()
            releases[key] = draft.pk
        per_round.append(releases)
    connection.close()  # the server's from here on
    return {key: env.pk for key, env in envs.items()}, per_round


def over_http(port: int, token: str, envs: dict[str, str], per_round: list[dict[str, str]]) -> dict[str, list]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(path: str, body: dict | None) -> float:
        started = time.perf_counter()
        conn.request("POST", path, json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        text = response.read()
        took = (time.perf_counter() - started) * 1000
        if response.status != 202:
            raise SystemExit(f"POST {path}: {response.status} {text[:500]!r}")
        return took

    requests = {
        "promote-gated": lambda r: post(f"/api/releases/{r['source']}/promote/", {"envId": envs["promote-gated"]}),
        "promote-plain": lambda r: post(f"/api/releases/{r['source']}/promote/", {"envId": envs["promote-plain"]}),
        "deploy-gated": lambda r: post(f"/api/releases/{r['deploy-gated']}/deploy/", None),
        "deploy-plain": lambda r: post(f"/api/releases/{r['deploy-plain']}/deploy/", None),
    }
    samples = {key: [] for key in requests}
    for n, releases in enumerate(per_round):
        order = list(requests) if n % 2 == 0 else list(reversed(requests))  # alternating: the same database
        for key in order:
            took = requests[key](releases)
            if n >= WARM_UP_ROUNDS:
                samples[key].append(took)
    conn.close()
    return samples


def load_note() -> str:
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    shared = " (other work shared the machine: absolute times are inflated, the ratios less so)" if load > cores else ""
    return f"Load average at the end of the run: {load:.1f} on {cores} cores{shared}."


def verdict(value: float, aim: str) -> str:
    return "met" if value <= AIMS[aim] else "missed"


def row(label: str, values: list[float]) -> str:
    return f"| {label} | {statistics.median(values):.2f} ms | {quantile(values, 0.9):.2f} ms |"


def main():
    args = parse_args()
    token = secrets.token_urlsafe(24)
    env = setup(token)
    decisions = in_process(args.decisions)
    envs, per_round = request_data(args.rounds + WARM_UP_ROUNDS)
    with web_server(env) as server:
        port = server.port
        requests = over_http(port, token, envs, per_round)

    median = {key: statistics.median(values) for key, values in {**decisions, **requests}.items()}
    ratios = {kind: median[f"{kind}-gated"] / median[f"{kind}-plain"] for kind in ("deploy", "promote")}
    lines = [
        f"decision, allowed: {median['allowed']:.3f} ms median (aim ≤ {AIMS['decision']:.0f} ms); "
        f"with its facts gathered {median['gathered']:.3f} ms; refused, with nextAllowedAt {median['refused']:.3f} ms",
        *(
            f"{kind} request: without policies {median[f'{kind}-plain']:.1f} ms, with {median[f'{kind}-gated']:.1f} ms "
            f"median, ratio {ratios[kind]:.2f} (aim ≤ {AIMS['ratio']})"
            for kind in ("deploy", "promote")
        ),
    ]
    body = "\n".join(
        [
            "## Policies (`bench/policies.py`)",
            "",
            "The policy gate on a fresh SQLite database with the demo data. In process: the decision for promoting"
            " svc-demo's rel-123 to env-prod, whose three refs are the demo's (a change window, promotion order, an"
            f" incident gate), {args.decisions} times each. `gate.decide` asks Cedar one batch of four requests (the"
            " action's own and one per ref); with its facts gathered, `gate.situation` reads the window, the freezes"
            " and the open incidents first (three queries); a refusal (Sunday, outside the window) also looks for"
            " `nextAllowedAt`, asking Cedar again at each instant the window could open.",
            "",
            "| Decision, in process | median | p90 |",
            "| --- | ---: | ---: |",
            row("allowed (`gate.decide`, facts gathered once)", decisions["allowed"]),
            row("allowed, its facts gathered each time (`gate.situation` + `gate.decide`)", decisions["gathered"]),
            row("refused, with `nextAllowedAt` (the window's next opening)", decisions["refused"]),
            "",
            f"Against the production web server (`manage.py web`, one process), {args.rounds} requests of each kind,"
            " alternating, each round on a service of its own. With policies: the demo's three refs (promote), or"
            " its window and incident gate (deploy: `policy:requires` refuses every deploy). Without: an"
            " environment with no refs, which still asks Cedar the action's own request (operators' policies and"
            " freezes apply everywhere), so the ratio is what refs add. The window is the demo's, open around the"
            " clock, so the figures do not depend on the hour; Cedar is asked the same requests either way.",
            "",
            "| Request | without policies | with policies | ratio |",
            "| --- | ---: | ---: | ---: |",
            *(
                f"| `POST /api/releases/<id>/{kind}/` | {median[f'{kind}-plain']:.1f} ms |"
                f" {median[f'{kind}-gated']:.1f} ms | {ratios[kind]:.2f} |"
                for kind in ("deploy", "promote")
            ),
            "",
            load_note(),
            "",
            f"Aims: a decision ≤ {AIMS['decision']:.0f} ms median in process"
            f" ({verdict(median['allowed'], 'decision')});"
            f" a request with policies ≤ {AIMS['ratio']}{BY} one without ({verdict(max(ratios.values()), 'ratio')}).",
        ]
    )
    print(body, "", *lines, sep="\n")
    if not args.no_write:
        write_section("policies", body)


if __name__ == "__main__":
    main()
