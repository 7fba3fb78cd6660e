"""`cpctl`: the control plane from a terminal (docs/cli.md).

A thin client of the REST API and its streams. Every command takes `--output table|json`, `--profile` and
`--color/--no-color`; exit codes are in `cpctl.client` and docs/cli.md.

This module declares the commands: their names, arguments, options and help, which is all `cpctl --help` (or
`cpctl COMMAND --help`) needs, so it imports click and nothing heavier. What a command does is the function of
the same name in its `cpctl.commands` module, imported when the command runs: `cpctl whoami` loads neither
the streams nor the tables it does not use (tests/cli/test_startup.py holds it to that).
"""

import functools

import click

from cpctl import __version__

SEVERITIES = ["critical", "high", "medium", "low"]  # highest first; `cpctl.render.SEVERITY` colours each


def command(group, area: str, name: str | None = None, **kwargs):
    """A cpctl command of `group`, run by the function of the same name in `cpctl.commands.<area>`; with the
    common options, and every Failure turned into its message and exit code (`cpctl.commands.run`)."""

    def decorate(declared):
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
        @functools.wraps(declared)
        def run(output, profile, color, **options):
            from cpctl import commands  # rich, the HTTP client and the command's module: only now

            commands.run(area, declared.__name__, output, profile, color, options)

        return run

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cpctl")
def cli():
    """The deployment control plane from a terminal.

    Configure it with CONTROLPLANE_URL and CONTROLPLANE_TOKEN, or `cpctl login`.
    Exit codes: 0 done, 1 the operation failed, 2 usage or confirmation refused, 3 not authenticated or
    not allowed, 4 not found, 5 conflict or refused by policy, 6 server or network error, 7 drift found
    (cpctl drift).
    """


# --- identity ---


@command(cli, "identity")
@click.option("--url", required=True, help="The control plane, e.g. http://127.0.0.1:8000")
@click.option("--token", help="A bearer token; asked for (not echoed) when left out, or read from stdin.")
def login(app, url, token):
    """Check a token against a control plane and store them as a profile (mode 0600)."""


@command(cli, "identity")
def logout(app):
    """Forget a stored profile (the current one, or --profile)."""


@command(cli, "identity")
def whoami(app):
    """Who the control plane sees: actor, role and how you signed in."""


# --- services ---


@command(cli, "services")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="At most this many services.")
def services(app, limit):
    """The services index: per environment what runs now and what was released last; open incidents."""


@cli.group()
def service():
    """One service."""


@command(service, "services", "show")
@click.argument("service_id")
def service_show(app, service_id):
    """A service: its repo and adapters, per environment what runs and what came last, its open incidents."""


# --- environments and drift ---


@command(cli, "environments")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def environments(app, limit):
    """Environments: region, cluster, and their mode: live (a connection deploys there for real) or simulated."""


@command(cli, "environments")
@click.argument("env_id", metavar="ENV")
@click.option("--check", is_flag=True, help="Ask the platform now (deployers and up), rather than show the last check.")
def drift(app, env_id, check):
    """Whether ENV's platform runs each service's current release (drift): the expected and the running image of
    each, from the last check (the worker's, every CONTROLPLANE_DRIFT_INTERVAL) or, with --check, now.
    Exit 7 when a service has drifted, 1 when the platform could not be asked; a simulated ENV has nothing to
    compare (exit 0; with --check, the server's 409: exit 5)."""


# --- releases ---


@command(cli, "releases")
@click.option("--service", "service_id", help="Only this service's releases.")
@click.option("--env", "env_id", help="Only releases in this environment.")
@click.option("--status", type=click.Choice(["Draft", "Promoting", "Active", "Failed"]))
@click.option("--current", is_flag=True, help="Only what runs now (one per service and environment).")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def releases(app, service_id, env_id, status, current, limit):
    """Releases, newest first."""


@cli.group()
def release():
    """Create and look at releases."""


@command(release, "releases", "create")
@click.option("--service", "service_id", required=True)
@click.option("--env", "env_id", required=True)
@click.option("--sha", required=True, help="The commit: 7-40 lower-case hex characters.")
@click.option("--version", "version", required=True)
@click.option("--id", "release_id", help="Choose the id (rel-…); the server makes one otherwise.")
@click.option(
    "--committed-at",
    "committed_at",
    metavar="TIME",
    help="When the commit was made (RFC 3339, e.g. `git log -1 --format=%cI`): where its lead time starts.",
)
def release_create(app, service_id, env_id, sha, version, release_id, committed_at):
    """A Draft release of a service in an environment. Prints its id (`-o json` prints it whole)."""


@command(release, "releases", "show")
@click.argument("release_id")
def release_show(app, release_id):
    """One release."""


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


@command(cli, "rollouts")
@click.argument("release_id")
@rollout_options
def deploy(app, release_id, yes, follow, break_glass):
    """Roll a Draft release out to its own environment, and follow it until the audit trail records the outcome.
    Into an environment that needs approvals, the run waits for them first (cpctl approvals)."""


@command(cli, "rollouts")
@click.argument("release_id")
@click.option("--to", "env_id", required=True, help="The environment to promote to.")
@rollout_options
def promote(app, release_id, env_id, yes, follow, break_glass):
    """Take an Active release to another environment (a new release there), and follow it to its outcome.
    Into an environment that needs approvals, the run waits for them first (cpctl approvals)."""


@command(cli, "rollouts")
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


# --- approvals ---


@command(cli, "approvals")
@click.option("--service", "service_id", help="Only this service's runs.")
@click.option("--env", "env_id", help="Only runs into this environment.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def approvals(app, service_id, env_id, limit):
    """Runs awaiting approval, newest first: what would roll out where, who asked, approvals so far, since when."""


@command(cli, "approvals")
@click.argument("run_id", metavar="RUN")
@click.option("--comment", help="Said with the approval; kept in the run and the audit trail.")
def approve(app, run_id, comment):
    """Approve a run awaiting approval (never your own). The last approval it needs starts it."""


@command(cli, "approvals")
@click.argument("run_id", metavar="RUN")
@click.option("--comment", required=True, help="Why it is rejected; kept in the run and the audit trail.")
def reject(app, run_id, comment):
    """Reject a run awaiting approval (never your own): it ends Rejected, and nothing rolls out."""


@command(cli, "approvals")
@click.argument("run_id", metavar="RUN")
def cancel(app, run_id):
    """Cancel a run awaiting approval (your own, or any as an admin): it ends Cancelled, and nothing rolls out."""


# --- policies ---


@cli.group()
def policy():
    """Policies: whether an action is allowed into an environment, why not, and until when."""


@command(policy, "policies", "explain")
@click.argument("env_id")
@click.option("--service", "service_id", help="The service the action is for (its incidents, its releases).")
@click.option("--action", type=click.Choice(["deploy", "promote", "rollback"]), default="deploy", show_default=True)
@click.option("--at", help="At this instant, past or future (RFC 3339, e.g. 2026-12-12T12:00:00Z); default now.")
def policy_explain(app, env_id, service_id, action, at):
    """Whether ACTION into ENV would be allowed (now, or --at): what denies it, when it is next allowed (in UTC
    and in each window's zone), and each change window: open or closed, and until when. Exit 0 either way."""


# --- DORA metrics ---

DORA_METRICS = [
    "deploymentFrequency",
    "leadTimeForChanges",
    "changeFailureRate",
    "failedDeploymentRecoveryTime",
    "reworkRate",
]


@command(cli, "metrics")
@click.option("--service", "service_id", help="One service; default: every service.")
@click.option("--env", "env_id", help="One environment; default: every production one.")
@click.option("--since", help="From (inclusive): RFC 3339, or ago as 7d, 12h; default: 30 days before --until.")
@click.option("--until", help="To (exclusive): RFC 3339, or ago as 1d; default: now.")
@click.option("--drill", type=click.Choice(DORA_METRICS), help="The deployments behind this figure instead.")
def dora(app, service_id, env_id, since, until, drill):
    """DORA metrics from the control plane's records: deployment frequency, lead time for changes, change failure
    rate, failed deployment recovery time and rework rate, with the DORA 2024 tier; by default every service in
    production over the last 30 days (docs/metrics.md)."""


# --- runs ---


@cli.group()
def runs():
    """Workflow runs."""


@command(runs, "runs", "show")
@click.argument("run_id")
def runs_show(app, run_id):
    """A run: its kind, release, state, mode (live or simulated), actor, approvals and times."""


@command(runs, "runs", "logs")
@click.argument("run_id")
@click.option("-f", "--follow", "follow_run", is_flag=True, help="Stream new entries until the run ends.")
def runs_logs(app, run_id, follow_run):
    """A run's log. With --follow, live until the run ends; the exit code is then 1 if it Failed."""


# --- incidents ---


@command(cli, "incidents")
@click.option("--open", "only_open", is_flag=True, help="Only open ones (not resolved yet).")
@click.option("--severity", type=click.Choice(SEVERITIES))
@click.option("--service", "service_id")
@click.option("--status", type=click.Choice(["triggered", "acknowledged", "resolved"]))
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def incidents(app, only_open, severity, service_id, status, limit):
    """Incidents, newest first, coloured by severity."""


@cli.group()
def incident():
    """Open, acknowledge and resolve incidents."""


@command(incident, "incidents", "create")
@click.option("--service", "service_id", required=True)
@click.option("--severity", type=click.Choice(SEVERITIES), required=True)
@click.option("--link", required=True, help="The incident in its source system (http(s) URL).")
@click.option("--title", default=None)
@click.option("--id", "incident_id", help="Choose the id (inc-…).")
def incident_create(app, service_id, severity, link, title, incident_id):
    """Record an incident on a service (triggered)."""


@command(incident, "incidents", "ack")
@click.argument("incident_id")
def incident_ack(app, incident_id):
    """Acknowledge an incident."""


@command(incident, "incidents", "resolve")
@click.argument("incident_id")
def incident_resolve(app, incident_id):
    """Resolve an incident."""


# --- API tokens ---


@cli.group()
def tokens():
    """API tokens for machines (CI): a role up to yours, optionally limited to environments, expiring."""


@command(tokens, "tokens", "create")
@click.option("--name", required=True, help="What uses it, e.g. ci-payments-deploy.")
@click.option("--role", type=click.Choice(["viewer", "deployer", "admin"]), required=True, help="At most yours.")
@click.option("--env", "env_ids", multiple=True, help="An environment it may deploy to (repeat); none: all.")
@click.option("--expires", required=True, help="When it expires: ahead as 30d, 12h, or an RFC 3339 time (≤ 1 year).")
def tokens_create(app, name, role, env_ids, expires):
    """Issue a token. It is printed once (stored nowhere, the server keeps a hash): put it in your CI's secrets."""


@command(tokens, "tokens", "list")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def tokens_list(app, limit):
    """Your tokens (an admin: every one), newest first: never their secrets."""


@command(tokens, "tokens", "revoke")
@click.argument("token_id")
def tokens_revoke(app, token_id):
    """Revoke a token at once: its next request is refused."""


# --- audit ---


@command(cli, "audit")
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


# --- integrations: incidents in, webhooks out (admins; docs/integrations.md) ---


@cli.group()
def integrations():
    """Incidents in: PagerDuty, Alertmanager and generic senders post to an integration's URL (admins)."""


@command(integrations, "webhooks", "list")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def integrations_list(app, limit):
    """Integrations: kind, name, service map, and the URL their source posts to (never their secrets)."""


@command(integrations, "webhooks", "create")
@click.option("--kind", type=click.Choice(["pagerduty", "alertmanager", "generic"]), required=True)
@click.option("--name", required=True, help="What posts to it, e.g. pagerduty-payments.")
@click.option("--id", "integration_id", help="Choose the id (int-…), so its URL is known before it exists.")
@click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="EXTERNAL=SERVICE",
    help="A PagerDuty service id or Alertmanager `service` label value, and our service id (repeat).",
)
@click.option(
    "--secret",
    help="PagerDuty only: the signing secret PagerDuty showed for the subscription; `-` asks for it (no echo) or "
    "reads it from stdin. Other kinds get a secret made by the control plane.",
)
def integrations_create(app, kind, name, integration_id, mappings, secret):
    """Create an integration. Prints the URL to give the source and, made here, its secret: shown this once."""


@command(integrations, "webhooks", "deliveries")
@click.argument("integration_id")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
def integrations_deliveries(app, integration_id, limit):
    """What an integration received, newest first: each request's status, outcome and the incidents it touched."""


@cli.group()
def webhooks():
    """Events out: signed webhooks (Standard Webhooks, or Slack's format) for audit actions (admins)."""


@command(webhooks, "webhooks", "list")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def webhooks_list(app, limit):
    """Webhook endpoints: host, events, format, enabled (the full URL with -o json: it may be a credential)."""


@command(webhooks, "webhooks", "create")
@click.argument("url")
@click.option(
    "--events",
    multiple=True,
    required=True,
    help="Audit actions to send: release.activate, release.*, *.create, * (repeat, or separate with commas).",
)
@click.option("--format", "format_", type=click.Choice(["standard", "slack"]), default="standard", show_default=True)
@click.option("--description", help="What it is for.")
def webhooks_create(app, url, events, format_, description):
    """Subscribe URL to audit actions. Prints its signing secret (whsec_…) on stdout: shown this once."""


@command(webhooks, "webhooks", "deliveries")
@click.argument("webhook_id")
@click.option("--state", type=click.Choice(["pending", "sending", "succeeded", "failed"]), help="Only these.")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
def webhooks_deliveries(app, webhook_id, state, limit):
    """A webhook's deliveries, newest first: event, state, tries, the last answer, the next try or when it ended."""


@command(webhooks, "webhooks", "ping")
@click.argument("webhook_id")
@click.option("--wait/--no-wait", default=True, help="Wait (up to 20 s) for the first try's answer (default).")
def webhooks_ping(app, webhook_id, wait):
    """Send a webhook.ping event now. Exit 1 if its try fails (or is not made within the wait)."""


@command(webhooks, "webhooks", "redeliver")
@click.argument("webhook_id")
@click.argument("delivery_id")
@click.option("--wait/--no-wait", default=True, help="Wait (up to 20 s) for the try's answer (default).")
def webhooks_redeliver(app, webhook_id, delivery_id, wait):
    """Send a finished delivery again, with its id and body unchanged. Exit 1 if the try fails."""
