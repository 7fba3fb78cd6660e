"""`dora` (declared, with its help, in `cpctl.cli`): the DORA metrics of a window, or the deployments behind one
figure (`GET /api/metrics/dora/`, docs/metrics.md)."""

from rich.text import Text

from cpctl import render
from cpctl.client import api
from cpctl.commands.audit import relative_time

TITLES = {
    "deploymentFrequency": "Deployment frequency",
    "leadTimeForChanges": "Lead time for changes",
    "changeFailureRate": "Change failure rate",
    "failedDeploymentRecoveryTime": "Failed deployment recovery time",
    "reworkRate": "Rework rate",
}
LEVEL = {"elite": "bold green", "high": "green", "medium": "yellow", "low": "bold red"}


def duration(seconds: int | None) -> str:
    """Seconds as people read them: `45 s`, `12 min`, `3.5 h`, `2.1 d`; `—` for none."""
    if seconds is None:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def figure_rows(found: dict) -> list[tuple[str, str, str, int]]:
    """(metric, value, what it is of, how many deployments are behind it) per figure."""
    f = {metric: found[metric] for metric in TITLES}
    lead, rate, recovery, rework = (f[m] for m in list(TITLES)[1:])
    frequency = f["deploymentFrequency"]
    return [
        (
            "deploymentFrequency",
            f"{frequency['perDay']:g}/day",
            plural(frequency["count"], "deployment"),
            frequency["count"],
        ),
        (
            "leadTimeForChanges",
            duration(lead["median"]),
            f"median, p90 {duration(lead['p90'])}; from commit {lead['measuredFrom']['committedAt']}, from "
            f"release creation {lead['measuredFrom']['releaseCreatedAt']}",
            lead["count"],
        ),
        ("changeFailureRate", percent(rate["rate"]), f"{rate['failed']} of {rate['total']} failed", rate["failed"]),
        (
            "failedDeploymentRecoveryTime",
            duration(recovery["median"]),
            f"median; {recovery['count']} recovered, {recovery['unrecovered']} not yet",
            recovery["count"],
        ),
        ("reworkRate", percent(rework["rate"]), f"{rework['count']} of {rework['total']}", rework["count"]),
    ]


def dora(app, service_id, env_id, since, until, drill):
    query = {
        "serviceId": service_id,
        "envId": env_id,
        "since": relative_time(since, -1),
        "until": relative_time(until, -1),
        "drill": drill,
    }
    found = app.client.get(api("metrics", "dora"), **query)
    if app.out.json:
        return app.out.emit(found)
    scope = f"{found['serviceId'] or 'every service'} in {', '.join(found['envIds']) or 'no environment'}"
    app.out.out.print(f"{scope}, {found['since']} to {found['until']}", soft_wrap=True)
    if drill:
        return show_deployments(app, found)
    levels = found["tier"]["byMetric"]
    grid = render.table("FIGURE", "VALUE", "OF", "DEPLOYMENTS", "LEVEL")
    for metric, value, of, count in figure_rows(found):
        grid.add_row(TITLES[metric], Text(value, style="bold"), of, str(count), level(levels.get(metric)))
    app.out.show(grid)
    tier = found["tier"]
    app.out.out.print(Text("Tier: ").append_text(level(tier["level"])).append(f" ({tier['report']})"))
    return 0


def level(name: str | None) -> Text:
    return render.styled(name, LEVEL)


def show_deployments(app, found: dict) -> int:
    grid = render.table("FINISHED", "SERVICE", "ENV", "KIND", "RELEASE", "RUN", "LEAD TIME", "FAILED", "RECOVERY")
    for d in found["deployments"]:
        failed = ", ".join(d["failedBecause"]) or "—"
        grid.add_row(
            d["finishedAt"],
            d["serviceId"],
            d["envId"],
            d["kind"],
            f"{d['releaseId']} {d['version']}",
            Text(d["runId"], style=render.STATUS.get(d["state"], "")),
            duration(d["leadTimeSeconds"]),
            Text(failed, style="bold red" if d["failed"] else ""),
            duration(d["recoverySeconds"]),
        )
    app.out.out.print(f"{TITLES[found['metric']]}: {plural(found['count'], 'deployment')}")
    app.out.show(grid)
    return 0
