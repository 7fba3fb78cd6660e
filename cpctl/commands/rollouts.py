"""`deploy`, `promote` and `rollback` (declared, with their help, in `cpctl.cli`): previewed, confirmed, launched,
then followed to the audit event that records the outcome."""

import functools
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import click
from rich.text import Text

from cpctl import render
from cpctl.client import CONFLICT, FAILED, SERVER, USAGE, Client, Failure, PolicyRefused, api
from cpctl.commands import App
from cpctl.commands.approvals import WAITING, approved, awaiting
from cpctl.follow import follow

OUTCOME_WAIT_SECONDS = 120  # after the run's end, for the audit event that records it (committed with it)


def deploy(app, release_id, yes, follow, break_glass):
    return rollout(app, "deploy", release_id, None, yes, follow, break_glass)


def promote(app, release_id, env_id, yes, follow, break_glass):
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


def rollback(app, service_id, env_id, reason, to_release_id, yes, follow, break_glass):
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
    mode = f" ({run['mode']})" if run.get("mode") else ""  # live, or simulated: no platform is touched
    waits = run["state"] == WAITING
    if not follow_run:
        if out.json:
            return out.emit(run)
        out.out.print(awaiting(run) if waits else f"{run['id']} started: {title}{mode}.")
        out.out.print(f"Follow it with: cpctl runs logs {run['id']} --follow")
        return 0
    if waits:  # on stderr in every mode: someone else has to act before anything happens
        out.err.print(Text(f"{awaiting(run)}; waiting for it to start.", style="bold"), soft_wrap=True)
    elif not out.json:
        out.err.print(Text(f"{run['id']} started: {title}{mode}", style="bold"))
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
