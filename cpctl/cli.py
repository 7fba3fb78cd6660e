"""`cpctl`: the control plane from a terminal (docs/cli.md).

A thin client of the REST API and its streams. Every command takes `--output table|json`, `--profile` and
`--color/--no-color`; exit codes are in `cpctl.client` and docs/cli.md.
"""

import functools
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import click
from rich.text import Text

from cpctl import __version__, config, render
from cpctl.client import CONFLICT, FAILED, SERVER, USAGE, Client, Failure, PolicyRefused, api
from cpctl.follow import follow, log_line

OUTCOME_WAIT_SECONDS = 120  # after the run's end, for the audit event that records it (committed with it)


class App:
    """What a command runs with: its output, and (asked for lazily) the client of the chosen control plane."""

    def __init__(self, output: str, profile: str | None, color: bool | None):
        self.out = render.Output(output, color)
        self.profile = profile
        self._client = None

    def listed(self, path: str, params: dict, limit: int) -> list[dict]:
        """Up to `limit` items of a list; a table says when there were more."""
        found = self.client.items(path, params, limit)
        if self.client.cut and not self.out.json:
            self.out.err.print(f"The first {limit} shown; there are more (--limit).", style="dim")
        return found

    @property
    def client(self) -> Client:
        if self._client is None:
            target = config.resolve(self.profile)
            self._client = Client(target.url, target.token)
        return self._client


def command(group, name: str | None = None, **kwargs):
    """A cpctl command: the common options, and every Failure turned into its message and exit code."""

    def decorate(function):
        @group.command(name, **kwargs)
        @click.option(
            "-o",
            "--output",
            type=click.Choice(["table", "json"]),
            default="table",
            show_default=True,
            help="table for people, json for scripts (docs/cli.md).",
        )
        @click.option("--profile", envvar="CONTROLPLANE_PROFILE", help="A profile stored by `cpctl login`.")
        @click.option("--color/--no-color", default=None, help="Force colour, or turn it off (also NO_COLOR).")
        @functools.wraps(function)
        def run(output, profile, color, **options):
            app = App(output, profile, color)
            try:
                code = function(app, **options)
            except Failure as e:
                failed(app, e)
                sys.exit(e.code)
            except KeyboardInterrupt:
                app.out.err.print("interrupted")
                sys.exit(130)
            sys.exit(code or 0)

        return run

    return decorate


def failed(app: App, failure: Failure) -> None:
    """A failure as one `error:` line on stderr. A policy's refusal adds when the action is next allowed, in
    UTC and in the zones of the environment's windows; with `-o json`, its body (the sentence and the decision)
    is also the JSON document on stdout, for a script to wait on `decision.nextAllowedAt`."""
    refusal = failure if isinstance(failure, PolicyRefused) else None
    if refusal is not None and app.out.json:
        app.out.emit(refusal.body)
    app.out.error(failure.message)
    if refusal is not None and refusal.decision.get("nextAllowedAt"):
        shown = render.opening(refusal.decision["nextAllowedAt"], refusal.zones)
        app.out.err.print(Text(f"next allowed: {shown}"), soft_wrap=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cpctl")
def cli():
    """The deployment control plane from a terminal.

    Configure it with CONTROLPLANE_URL and CONTROLPLANE_TOKEN, or `cpctl login`.
    Exit codes: 0 done, 1 the operation failed, 2 usage or confirmation refused, 3 not authenticated or
    not allowed, 4 not found, 5 conflict or refused by policy, 6 server or network error.
    """


# --- identity ---


@command(cli)
@click.option("--url", required=True, help="The control plane, e.g. http://127.0.0.1:8000")
@click.option("--token", help="A bearer token; asked for (not echoed) when left out, or read from stdin.")
def login(app, url, token):
    """Check a token against a control plane and store them as a profile (mode 0600)."""
    if token is None:
        token = click.prompt("Token", hide_input=True, err=True) if sys.stdin.isatty() else sys.stdin.readline()
    client = Client(url, token)
    me = client.get("/api/me/")
    name = app.profile or config.DEFAULT_PROFILE
    stored = config.load()
    stored["profiles"][name] = {"url": client.url, "token": client.token}
    stored["current"] = name
    where = config.save(stored)
    result = {"profile": name, "url": url.rstrip("/"), "actor": me["actor"], "role": me["role"], "path": str(where)}
    if app.out.json:
        return app.out.emit(result)
    app.out.out.print(f"Logged in to {result['url']} as {me['actor']} ({me['role']}); profile {name!r} in {where}.")


@command(cli)
def logout(app):
    """Forget a stored profile (the current one, or --profile)."""
    stored = config.load()
    name = app.profile or stored["current"]
    if not name or stored["profiles"].pop(name, None) is None:
        raise Failure(USAGE, f"no profile {name or config.DEFAULT_PROFILE!r} to forget.")
    if stored["current"] == name:
        stored["current"] = None  # never another profile unasked: it may be another control plane
    config.save(stored)
    if app.out.json:
        return app.out.emit({"profile": name, "forgotten": True})
    app.out.out.print(f"Forgot profile {name!r}." + (" No profile is current now." if not stored["current"] else ""))


@command(cli)
def whoami(app):
    """Who the control plane sees: actor, role and how you signed in."""
    me = app.client.get("/api/me/")
    if app.out.json:
        return app.out.emit(me)
    app.out.out.print(f"{me['actor']} ({me['role']}, {me['authMethod']}) at {app.client.url}")


# --- services ---


@command(cli)
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="At most this many services.")
def services(app, limit):
    """The services index: per environment what runs now and what was released last; open incidents."""
    entries = app.listed("/api/services/index/", {}, limit)
    if app.out.json:
        return app.out.emit(entries)
    grid = render.table("SERVICE", "ENVIRONMENT", "CURRENT", "LATEST", "INCIDENTS")
    for entry in entries:
        incidents = render.open_incidents(entry["incidents"]["open"])
        for i, env in enumerate(entry["environments"] or [{"id": "—", "currentRelease": None, "latestRelease": None}]):
            current, newer = env["currentRelease"], render.newer(env)
            grid.add_row(
                entry["id"] if i == 0 else "",
                env["id"],
                render.release(current),
                render.release(newer, with_status=True) if newer else Text(""),
                incidents if i == 0 else Text(""),
            )
    app.out.show(grid)


@cli.group()
def service():
    """One service."""


@command(service, "show")
@click.argument("service_id")
def service_show(app, service_id):
    """A service: its repo and adapters, per environment what runs and what came last, its open incidents."""
    found = app.client.get(api("services", service_id))
    index = [e for e in app.client.items("/api/services/index/", {"q": service_id}, None) if e["id"] == service_id]
    environments = index[0]["environments"] if index else []
    incidents = app.client.items("/api/incidents/", {"serviceId": service_id, "open": "true"}, None)
    if app.out.json:
        return app.out.emit({"service": found, "environments": environments, "openIncidents": incidents})
    app.out.show(
        render.key_values(
            [
                ("Service", f"{found['id']} ({found['name']})"),
                ("Repo", found["repo"]),
                ("Adapters", ", ".join(found["adapters"]["deployments"])),
                ("Archived", "yes" if found.get("archived") else "no"),
            ]
        )
    )
    grid = render.table("ENVIRONMENT", "CURRENT", "SINCE", "LATEST")
    for env in environments:
        current, newer = env["currentRelease"], render.newer(env)
        grid.add_row(
            env["id"],
            render.release(current),
            render.when(current and current.get("activatedAt")),
            render.release(newer, with_status=True) if newer else Text(""),
        )
    app.out.out.print()
    app.out.show(grid)
    app.out.out.print()
    app.out.show(incident_table(incidents) if incidents else "No open incidents.")


# --- releases ---


@command(cli)
@click.option("--service", "service_id", help="Only this service's releases.")
@click.option("--env", "env_id", help="Only releases in this environment.")
@click.option("--status", type=click.Choice(["Draft", "Promoting", "Active", "Failed"]))
@click.option("--current", is_flag=True, help="Only what runs now (one per service and environment).")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def releases(app, service_id, env_id, status, current, limit):
    """Releases, newest first."""
    params = {"serviceId": service_id, "envId": env_id, "status": status, "isCurrent": "true" if current else None}
    found = app.listed("/api/releases/", params, limit)
    if app.out.json:
        return app.out.emit(found)
    grid = render.table("RELEASE", "SERVICE", "ENVIRONMENT", "VERSION", "SHA", "STATUS", "CREATED", "CURRENT")
    for r in found:
        grid.add_row(
            r["id"],
            r["serviceId"],
            r["envId"],
            r["version"],
            r["sha"][:7],
            render.status(r["status"]),
            render.when(r["createdAt"]),
            "yes" if r["isCurrent"] else "",
        )
    app.out.show(grid)


@cli.group()
def release():
    """Create and look at releases."""


def show_release(app, found: dict) -> None:
    if app.out.json:
        return app.out.emit(found)
    app.out.show(
        render.key_values(
            [
                ("Release", found["id"]),
                ("Service", found["serviceId"]),
                ("Environment", found["envId"]),
                ("Version", found["version"]),
                ("Sha", found["sha"]),
                ("Status", render.status(found["status"])),
                ("Created", render.when(found["createdAt"])),
                ("Activated", render.when(found.get("activatedAt"))),
                ("Current", "yes" if found["isCurrent"] else "no"),
                ("Superseded by", found.get("supersededBy")),
            ]
        )
    )


@command(release, "create")
@click.option("--service", "service_id", required=True)
@click.option("--env", "env_id", required=True)
@click.option("--sha", required=True, help="The commit: 7-40 lower-case hex characters.")
@click.option("--version", "version", required=True)
@click.option("--id", "release_id", help="Choose the id (rel-…); the server makes one otherwise.")
def release_create(app, service_id, env_id, sha, version, release_id):
    """A Draft release of a service in an environment. Prints its id (`-o json` prints it whole)."""
    body = {"serviceId": service_id, "envId": env_id, "sha": sha, "version": version}
    created = app.client.post("/api/releases/", {**body, **({"id": release_id} if release_id else {})})
    if app.out.json:
        return app.out.emit(created)
    click.echo(created["id"])  # bare, so that `R=$(cpctl release create …)` holds the id


@command(release, "show")
@click.argument("release_id")
def release_show(app, release_id):
    """One release."""
    show_release(app, app.client.get(api("releases", release_id)))


# --- deploy, promote and rollback ---


def rollout_options(function):
    """The options deploy, promote and rollback share."""
    function = click.option(
        "--break-glass",
        "break_glass",
        metavar="REASON",
        help="Override what the policies refuse (windows, freezes, incident gates, promotion order), with this "
        "reason (10-500 characters). Allowed to the roles in CONTROLPLANE_BREAK_GLASS_ROLES; audited as "
        "policy.override.",
    )(function)
    function = click.option(
        "--follow/--no-follow",
        default=True,
        help="Follow the run to its end (default; through its approvals, when it needs them), or return at once.",
    )(function)
    return click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")(function)


@command(cli)
@click.argument("release_id")
@rollout_options
def deploy(app, release_id, yes, follow, break_glass):
    """Roll a Draft release out to its own environment, and follow it until the audit trail records the outcome.
    Into an environment that needs approvals, the run waits for them first (cpctl approvals)."""
    return rollout(app, "deploy", release_id, None, yes, follow, break_glass)


@command(cli)
@click.argument("release_id")
@click.option("--to", "env_id", required=True, help="The environment to promote to.")
@rollout_options
def promote(app, release_id, env_id, yes, follow, break_glass):
    """Take an Active release to another environment (a new release there), and follow it to its outcome.
    Into an environment that needs approvals, the run waits for them first (cpctl approvals)."""
    return rollout(app, "promote", release_id, env_id, yes, follow, break_glass)


def rollout(
    app: App,
    action: str,
    release_id: str,
    env_id: str | None,
    yes: bool,
    follow_run: bool,
    break_glass: str | None = None,
) -> int:
    client = app.client
    # What will change, said by the server (the dashboard's confirmation, over REST). A refusal, a missing
    # release or a role that may not do it ends here, before anything is asked or changed.
    preview = client.get(api("releases", release_id, f"{action}-preview"), envId=env_id)
    if not yes:
        glass = ", breaking glass" if break_glass is not None else ""
        question = f"{action.capitalize()} {preview['releaseId']} to {preview['envId']}{glass}?"
        confirm(app, action, preview["text"], question)
    body = {"envId": env_id} if action == "promote" else {}
    if break_glass is not None:
        body["breakGlass"] = {"reason": break_glass}
    post = functools.partial(client.post, api("releases", release_id, action), body or None)
    return launch(app, action, post, preview["serviceId"], preview["envId"], release_id, follow_run)


@command(cli)
@click.argument("service_id", metavar="SERVICE")
@click.option("--env", "env_id", required=True, help="The environment to roll back in.")
@click.option("--reason", required=True, help="Why (10-500 characters); kept in the audit trail.")
@click.option(
    "--to",
    "to_release_id",
    metavar="REL",
    help="The earlier Active release of the service there to restore; by default the one the current release replaced.",
)
@rollout_options
def rollback(app, service_id, env_id, reason, to_release_id, yes, follow, break_glass):
    """Put an earlier release of SERVICE back in an environment: a new release with its sha and version, rolled
    out by a Rollback run and followed until the audit trail records the outcome."""
    if not yes:
        current, restored = rollback_targets(app.client, service_id, env_id, to_release_id)
        glass = ", breaking glass" if break_glass is not None else ""
        sentence = (
            f"{service_id} in {env_id} goes from {render.version(current)} back to {render.version(restored)}: "
            f"a new release restoring {restored['id']} replaces {current['id']}."
        )
        confirm(app, "roll back", sentence, f"Roll back {service_id} in {env_id} to {restored['id']}{glass}?")
    body = {"envId": env_id, "reason": reason}
    body |= {"toReleaseId": to_release_id} if to_release_id else {}
    body |= {"breakGlass": {"reason": break_glass}} if break_glass is not None else {}
    post = functools.partial(app.client.post, api("services", service_id, "rollback"), body)
    return launch(app, "rollback", post, service_id, env_id, None, follow)


def rollback_targets(client: Client, service_id: str, env_id: str, to_release_id: str | None) -> tuple[dict, dict]:
    """For the confirmation: the release current in the environment and the one a rollback restores (`--to`,
    or the release the current one superseded), read from the releases list. The server decides which it
    restores (its answer is the release.rollback event); a target it would refuse is its 409, after the
    question, with nothing changed."""
    params = {"serviceId": service_id, "envId": env_id}
    current = client.first("/api/releases/", params | {"isCurrent": "true"}, lambda r: True)
    if current is None:
        client.get(api("services", service_id))  # an unknown service is its 404
        raise Failure(CONFLICT, f"{service_id} has no current release in {env_id}: there is nothing to roll back.")
    if to_release_id:
        return current, client.get(api("releases", to_release_id))
    restored = client.first(
        "/api/releases/", params | {"status": "Active"}, lambda r: r.get("supersededBy") == current["id"]
    )
    if restored is None:
        raise Failure(
            CONFLICT,
            f"{current['id']} replaced no release of {service_id} in {env_id}: there is nothing to roll back to "
            "(--to names an earlier Active release).",
        )
    return current, restored


def launch(app: App, action: str, post, service_id: str, env_id: str, asked_for: str | None, follow_run: bool) -> int:
    """Post the action (`post()`: its 202 run) and, unless --no-follow, follow the run to the audit event
    that records how it ended. `asked_for` is the release the action names (for its break-glass record)."""
    client, out = app.client, app.out
    # Listen before acting: once connected, every audit event committed later reaches this stream, so the one
    # recording the outcome cannot slip by however fast the run is.
    outcomes = client.events("/api/audit-events/stream", {"serviceId": service_id})
    if follow_run:
        next(outcomes)  # the connected block: the stream's position
    try:
        run = post()
    except PolicyRefused as refusal:
        refusal.zones = window_zones(client, env_id, service_id, action, refusal.decision)
        raise
    title = f"{run['kind']} of {run['releaseId']} to {env_id}"
    waits = run["state"] == WAITING
    if not follow_run:
        if out.json:
            return out.emit(run)
        out.out.print(awaiting(run) if waits else f"{run['id']} started: {title}.")
        out.out.print(f"Follow it with: cpctl runs logs {run['id']} --follow")
        return 0
    if waits:  # on stderr in every mode: someone else has to act before anything happens
        out.err.print(Text(f"{awaiting(run)}; waiting for it to start.", style="bold"), soft_wrap=True)
    elif not out.json:
        out.err.print(Text(f"{run['id']} started: {title}", style="bold"))
    try:
        progress = follow(client, run["id"], out, title, waiting=f"{run['id']} awaits approval" if waits else "")
        ended = outcome(outcomes, run, asked_for)
    except (KeyboardInterrupt, Failure):  # only the following stops: the run is the server's
        out.err.print(f"Stopped following; {run['id']} goes on. Follow it: cpctl runs logs {run['id']} --follow")
        raise
    final = client.get(api("workflow-runs", run["id"]))
    if out.json:
        result = {"run": final, "release": client.get(api("releases", run["releaseId"])), "auditEvent": ended.event}
        result |= {"policyOverride": ended.override} if ended.override else {}
        out.emit(result | ({"rollbackEvent": ended.rollback} if ended.rollback else {}))
    else:
        report(app, final, env_id, progress, ended)
    return 0 if ended.state == "Active" else FAILED


WAITING = "AwaitingApproval"


def approved(run: dict) -> list[dict]:
    return [a for a in run.get("approvals") or () if a.get("decision") == "approve"]


def awaiting(run: dict) -> str:
    """`run-… awaits 2 approvals (cpctl approve run-…)`, or, approved, what keeps it from starting."""
    given, required = len(approved(run)), run.get("approvalsRequired") or 0
    left = required - given
    if left <= 0:
        why = run.get("waitingReason") or "the worker starts it"
        return f"{run['id']} is approved ({given}/{required}) and waits to start: {why}"
    more = " more" if given else ""
    return f"{run['id']} awaits {left}{more} approval{'s' if left != 1 else ''} (cpctl approve {run['id']})"


# How a followed run ended, as the audit trail records it: the outcome of the release it rolled out, or, when
# it never started, the end of its wait for approval (its release stays Draft).
RELEASE_OUTCOMES = {"release.activate": "Active", "release.fail": "Failed"}
RUN_ENDINGS = {"run.reject": "Rejected", "run.expire": "Expired", "run.cancel": "Cancelled"}


@dataclass
class Ended:
    event: dict
    state: str
    override: dict | None = None  # the policy.override break-glass wrote with the action
    rollback: dict | None = None  # a rollback's release.rollback event


def outcome(events, run: dict, asked_for: str | None) -> Ended:
    """The audit event that records how the run ended: `release.activate` or `release.fail` for its release,
    or `run.reject`, `run.expire`, `run.cancel` for the run itself. With it, the `policy.override` break-glass
    wrote with the action, if it did (its subject is the release the action named: the one deployed, promoted
    from, or rolled back), and a rollback's `release.rollback`."""
    deadline = datetime.now(UTC) + timedelta(seconds=OUTCOME_WAIT_SECONDS)
    overrides, rolled_back = {}, None
    for event in events:
        data = event.data or {}
        subject, action = data.get("subjectId"), data.get("action")
        if action == "policy.override":
            overrides[subject] = data
        elif subject == run["releaseId"] and action == "release.rollback":
            rolled_back = data
        elif (subject == run["releaseId"] and action in RELEASE_OUTCOMES) or (
            subject == run["id"] and action in RUN_ENDINGS
        ):
            named = asked_for or (rolled_back or {}).get("metadata", {}).get("rollbackOf")
            state = RELEASE_OUTCOMES.get(action) or RUN_ENDINGS[action]
            return Ended(data, state, overrides.get(named), rolled_back)
        if datetime.now(UTC) > deadline:
            break
    raise Failure(SERVER, f"the run ended, but no audit event recorded the outcome of {run['id']} in time.")


def report(app: App, run: dict, env_id: str, progress, ended: Ended) -> None:
    """How the run ended, one line, confirmed by its audit event; then who approved it, a rollback's record
    and a break-glass record."""
    out, event, release_id = app.out, ended.event, run["releaseId"]
    confirmed = f"Confirmed by audit event #{event['seq']}."
    meta = event.get("metadata") or {}
    what = release_id
    if ended.rollback:
        restores = ended.rollback["metadata"].get("restores")
        what = f"{release_id} (restoring {restores})"
    if ended.state == "Active":
        out.out.print(
            Text("✓ ", style="green").append(f"{what} is Active in {env_id}, confirmed by audit event #{event['seq']}.")
        )
    elif ended.state == "Failed":
        at = f" at step {progress.failed_step}" if progress.failed_step else ""
        why = f": {progress.reason}" if progress.reason else ""
        out.out.print(
            Text("✗ ", style="bold red").append(
                f"{what} is Failed in {env_id}: run {run['id']} failed{at}{why}. {confirmed}"
            )
        )
    else:
        why = {
            "Rejected": f"rejected by {event['actor']}: {meta.get('comment') or '(no comment)'}",
            "Expired": f"expired with {len(approved(run))} of {run.get('approvalsRequired')} approvals given "
            f"within its time to live ({meta.get('ttl') or 'CONTROLPLANE_APPROVAL_TTL'})",
            "Cancelled": f"cancelled by {event['actor']}",
        }[ended.state]
        out.out.print(
            Text("✗ ", style="bold red").append(
                f"{run['id']} was {why}; nothing was rolled out and {release_id} stays Draft. {confirmed}"
            ),
            soft_wrap=True,
        )
    if approved(run) and ended.state in RELEASE_OUTCOMES.values():
        by = ", ".join(a["actor"] for a in approved(run))
        out.out.print(f"Approved by {by} ({len(approved(run))}/{run['approvalsRequired']}).")
    if ended.rollback:
        rollback_meta = ended.rollback["metadata"]
        out.out.print(
            f"Rollback recorded as audit event #{ended.rollback['seq']}: {rollback_meta.get('rollbackOf')} rolled "
            f"back to {rollback_meta.get('restores')} ({rollback_meta.get('reason')})."
        )
    if ended.override:
        overridden = ended.override["metadata"].get("overridden") or ()
        overrode = ", ".join(d["policy"] for d in overridden) or "nothing refused it"
        out.out.print(f"Break-glass recorded as audit event #{ended.override['seq']} (overrode: {overrode}).")


def window_zones(client: Client, env_id: str, service_id: str, action: str, decision: dict) -> list[str]:
    """The time zones to show a refusal's next opening in: its environment's windows' (the policy endpoint's
    answer names them); none when that cannot be read, and the opening is shown in UTC alone."""
    try:
        found = client.get(api("environments", env_id, "policy"), serviceId=service_id, action=action)
    except Failure:
        return []
    windows = found.get("windows") if isinstance(found, dict) else None
    return render.window_zones(decision, windows if isinstance(windows, list) else [])


def confirm(app: App, action: str, sentence: str, question: str) -> None:
    """Say what will change, then ask on the terminal; without one, refuse (exit 2): nothing has been changed.
    For a deploy or promotion, what will change is the server's own sentence (the preview's `text`, the
    dashboard's confirmation): said again here, it could come to say something else."""
    app.out.err.print(Text(sentence), soft_wrap=True)  # one line, as sent: a terminal wraps it
    if not sys.stdin.isatty():
        raise Failure(USAGE, f"no terminal to confirm on, so nothing was changed; pass --yes to {action} anyway.")
    try:
        confirmed = click.confirm(question, default=False, err=True)
    except click.Abort:  # Ctrl-C or Ctrl-D at the question: a no
        confirmed = False
    if not confirmed:
        raise Failure(USAGE, "not confirmed: nothing was changed.")


# --- approvals ---


@command(cli)
@click.option("--service", "service_id", help="Only this service's runs.")
@click.option("--env", "env_id", help="Only runs into this environment.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def approvals(app, service_id, env_id, limit):
    """Runs awaiting approval, newest first: what would roll out where, who asked, approvals so far, since when."""
    params = {"state": WAITING, "serviceId": service_id, "envId": env_id}
    found = app.listed("/api/workflow-runs/", params, limit)
    if app.out.json:
        return app.out.emit(found)
    if not found:
        return app.out.err.print("No run awaits approval.")
    releases = {r["releaseId"]: app.client.get(api("releases", r["releaseId"])) for r in found}
    grid = render.table("RUN", "SERVICE", "ENVIRONMENT", "RELEASE", "KIND", "ASKED BY", "APPROVALS", "SINCE")
    for run in found:
        rel = releases[run["releaseId"]]
        given = f"{len(approved(run))}/{run['approvalsRequired']}"
        if run.get("waitingReason"):
            given += f", held: {run['waitingReason']}"
        grid.add_row(
            run["id"],
            rel["serviceId"],
            rel["envId"],
            render.release(rel),
            run["kind"],
            run["actor"],
            given,
            render.when(run["startedAt"]),
        )
    app.out.show(grid)


def decided(app: App, run: dict, verb: str) -> None:
    """The run after a decision on it, as the server answered: still waiting, started, or ended."""
    if app.out.json:
        return app.out.emit(run)
    state = run["state"]
    if state == WAITING:
        said = awaiting(run)
    elif state == "Running":
        said = f"{run['id']} has its approvals ({len(approved(run))}/{run['approvalsRequired']}) and is Running; "
        said += f"follow it: cpctl runs logs {run['id']} --follow"
    elif state in ("Rejected", "Cancelled", "Expired"):
        said = f"{run['id']} is {state}: nothing rolls out, and {run['releaseId']} stays Draft."
    else:
        said = f"{run['id']} is {state}."
    app.out.out.print(Text(f"{verb}. {said}", style=render.STATUS.get(state, "")), soft_wrap=True)


@command(cli)
@click.argument("run_id", metavar="RUN")
@click.option("--comment", help="Said with the approval; kept in the run and the audit trail.")
def approve(app, run_id, comment):
    """Approve a run awaiting approval (never your own). The last approval it needs starts it."""
    body = {"comment": comment} if comment is not None else {}
    decided(app, app.client.post(api("workflow-runs", run_id, "approve"), body), "Approved")


@command(cli)
@click.argument("run_id", metavar="RUN")
@click.option("--comment", required=True, help="Why it is rejected; kept in the run and the audit trail.")
def reject(app, run_id, comment):
    """Reject a run awaiting approval (never your own): it ends Rejected, and nothing rolls out."""
    decided(app, app.client.post(api("workflow-runs", run_id, "reject"), {"comment": comment}), "Rejected")


@command(cli)
@click.argument("run_id", metavar="RUN")
def cancel(app, run_id):
    """Cancel a run awaiting approval (your own, or any as an admin): it ends Cancelled, and nothing rolls out."""
    decided(app, app.client.post(api("workflow-runs", run_id, "cancel")), "Cancelled")


# --- policies ---


@cli.group()
def policy():
    """Policies: whether an action is allowed into an environment, why not, and until when."""


@command(policy, "explain")
@click.argument("env_id")
@click.option("--service", "service_id", help="The service the action is for (its incidents, its releases).")
@click.option("--action", type=click.Choice(["deploy", "promote", "rollback"]), default="deploy", show_default=True)
@click.option("--at", help="At this instant, past or future (RFC 3339, e.g. 2026-12-12T12:00:00Z); default now.")
def policy_explain(app, env_id, service_id, action, at):
    """Whether ACTION into ENV would be allowed (now, or --at): what denies it, when it is next allowed (in UTC
    and in each window's zone), and each change window: open or closed, and until when. Exit 0 either way."""
    found = app.client.get(api("environments", env_id, "policy"), serviceId=service_id, action=action, at=at)
    if app.out.json:
        return app.out.emit(found)
    out, windows = app.out, found.get("windows") or []
    what = f"{action.capitalize()}{f' of {service_id}' if service_id else ''} into {env_id}"
    out.out.print(Text(f"{what} {f'at {at}' if at else 'now'}: ").append_text(render.allowed(found["allowed"])))
    rows = []
    if not found["allowed"]:
        opens = found["nextAllowedAt"]
        shown = render.opening(opens, render.window_zones(found, windows)) if opens else "not by time alone"
        rows.append(("Next allowed", shown))
    rows.append(("Evaluated", ", ".join(found.get("evaluated") or ()) or "no policy applies"))
    out.show(render.key_values(rows))
    if found["deniedBy"]:
        denied = render.table("DENIED BY", "REASON")
        for d in found["deniedBy"]:
            denied.add_row(d["policy"], d["reason"])
        out.out.print()
        out.show(denied)
    if windows:
        grid = render.table("WINDOW", "SCHEDULE", "NOW", "NEXT CHANGE")
        for w in windows:
            state = Text("open", style="green") if w["open"] else Text("closed", style="yellow")
            verb = "closes" if w["open"] else "opens"
            change = f"{verb} {render.opening(w['nextChangeAt'], [w['timezone']])}" if w["nextChangeAt"] else "never"
            grid.add_row(w["name"], w["summary"], state, change)
        out.out.print()
        out.show(grid)
    return 0


# --- runs ---


@cli.group()
def runs():
    """Workflow runs."""


@command(runs, "logs")
@click.argument("run_id")
@click.option("-f", "--follow", "follow_run", is_flag=True, help="Stream new entries until the run ends.")
def runs_logs(app, run_id, follow_run):
    """A run's log. With --follow, live until the run ends; the exit code is then 1 if it Failed."""
    if not follow_run:
        run = app.client.get(api("workflow-runs", run_id))
        if app.out.json:
            return app.out.emit(run["logs"])
        for entry in run["logs"]:
            app.out.out.print(log_line(entry))
        return 0
    progress = follow(app.client, run_id, app.out, f"Following {run_id}", to_stdout=True)
    if not app.out.json:
        app.out.err.print(Text(f"{run_id} {progress.state}", style=render.STATUS.get(progress.state, "")))
    return 0 if progress.state == "Succeeded" else FAILED


# --- incidents ---


def incident_table(found: list[dict]):
    grid = render.table("INCIDENT", "SERVICE", "SEVERITY", "STATUS", "STARTED", "TITLE")
    for i in found:
        grid.add_row(
            i["id"],
            i["serviceId"],
            render.severity(i["severity"]),
            render.status(i["status"]),
            render.when(i["startedAt"]),
            i.get("title") or "",
        )
    return grid


@command(cli)
@click.option("--open", "only_open", is_flag=True, help="Only open ones (not resolved yet).")
@click.option("--severity", type=click.Choice(list(render.SEVERITIES)))
@click.option("--service", "service_id")
@click.option("--status", type=click.Choice(["triggered", "acknowledged", "resolved"]))
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def incidents(app, only_open, severity, service_id, status, limit):
    """Incidents, newest first, coloured by severity."""
    params = {"open": "true" if only_open else None, "severity": severity, "serviceId": service_id, "status": status}
    found = app.listed("/api/incidents/", params, limit)
    if app.out.json:
        return app.out.emit(found)
    app.out.show(incident_table(found))


@cli.group()
def incident():
    """Open, acknowledge and resolve incidents."""


def show_incident(app, found: dict, verb: str) -> None:
    if app.out.json:
        return app.out.emit(found)
    text = Text(f"{found['id']} ")
    text.append_text(render.severity(found["severity"])).append(f" on {found['serviceId']}: {verb}, now ")
    app.out.out.print(text.append_text(render.status(found["status"])))


@command(incident, "create")
@click.option("--service", "service_id", required=True)
@click.option("--severity", type=click.Choice(list(render.SEVERITIES)), required=True)
@click.option("--link", required=True, help="The incident in its source system (http(s) URL).")
@click.option("--title", default=None)
@click.option("--id", "incident_id", help="Choose the id (inc-…).")
def incident_create(app, service_id, severity, link, title, incident_id):
    """Record an incident on a service (triggered)."""
    body = {"serviceId": service_id, "severity": severity, "link": link}
    body |= {k: v for k, v in {"title": title, "id": incident_id}.items() if v is not None}
    show_incident(app, app.client.post("/api/incidents/", body), "created")


@command(incident, "ack")
@click.argument("incident_id")
def incident_ack(app, incident_id):
    """Acknowledge an incident."""
    show_incident(app, app.client.post(api("incidents", incident_id, "acknowledge")), "acknowledged")


@command(incident, "resolve")
@click.argument("incident_id")
def incident_resolve(app, incident_id):
    """Resolve an incident."""
    show_incident(app, app.client.post(api("incidents", incident_id, "resolve")), "resolved")


# --- audit ---

DURATION = re.compile(r"(\d+)([smhd])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def since_time(value: str | None) -> str | None:
    """`--since 15m` (s, m, h, d ago) or an RFC 3339 time, as the API takes it."""
    if value is None:
        return None
    match = DURATION.fullmatch(value)
    if match:
        ago = datetime.now(UTC) - timedelta(**{UNITS[match[2]]: int(match[1])})
        return ago.isoformat(timespec="seconds").replace("+00:00", "Z")
    return value  # the server checks it, naming `since`


def audit_row(event: dict) -> list:
    return [
        Text(f"#{event['seq']}", style="bold"),
        render.when(event["ts"]),
        event["actor"],
        Text(event["action"], style="cyan"),
        f"{event['subjectType']} {event['subjectId']}",
    ]


FOLLOWED_WIDTHS = (8, 20, 24, 22)  # columns fixed when followed, so rows printed one by one line up


def audit_table(events: list[dict], followed: bool = False, header: bool = True):
    grid = render.table("SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT")
    grid.show_header = header
    if followed:
        for column, width in zip(grid.columns, FOLLOWED_WIDTHS, strict=False):
            column.width, column.no_wrap, column.overflow = width, True, "ellipsis"
    for event in events:
        grid.add_row(*audit_row(event))
    return grid


@command(cli)
@click.option("--actor")
@click.option("--action", help="e.g. release.activate")
@click.option("--service", "service_id")
@click.option("--subject", "subject_id", help="Only events about this id (a release, an incident…).")
@click.option("--since", help="From this time on: RFC 3339, or ago as 30s, 15m, 2h, 7d.")
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    help="The newest this many (from --since: the first this many).",
)
@click.option("-f", "--follow", "follow_trail", is_flag=True, help="Then stream new events as they are committed.")
def audit(app, actor, action, service_id, subject_id, since, limit, follow_trail):
    """The audit trail, oldest first: the newest events, or from --since; --follow streams what comes next."""
    filters = {"actor": actor, "action": action, "serviceId": service_id, "subjectId": subject_id}
    live = None
    if follow_trail:
        # Connected first: its position is the head, and everything after it comes through the stream.
        live = app.client.events("/api/audit-events/stream", filters)
        head = int(next(live).id or 0)
    params = {**filters, "since": since_time(since)}
    if since:  # forward from a time; followed, all of it up to where the stream starts, so that none is skipped
        found = app.client.items("/api/audit-events/", params, None if live else limit)
    else:
        found = app.client.tail("/api/audit-events/", params, limit)
    if live is None:
        return app.out.emit(found) if app.out.json else app.out.show(audit_table(found))
    found = [e for e in found if e["seq"] <= head]  # the rest comes through the stream

    def show(events, header=False):  # followed: JSON Lines with -o json; rows whose columns line up
        for event in events if app.out.json else ():
            app.out.line(event)
        if not app.out.json:
            app.out.show(audit_table(events, followed=True, header=header))

    show(found, header=True)
    for event in live:
        if event.name == "audit":
            show([event.data])
