"""An audit event as a Slack-compatible message (`{"text", "attachments"}`), for incoming-webhook URLs of Slack,
Mattermost or Rocket.Chat. The attachment's colour says how bad it is: an incident's severity, else the action's."""

from incidents.models import Severity

SEVERITY_COLOURS = {
    Severity.CRITICAL: "#b60205",
    Severity.HIGH: "#d93f0b",
    Severity.MEDIUM: "#fbca04",
    Severity.LOW: "#8b949e",
}
# What an action means for whoever reads the channel, when no severity says it.
ACTION_COLOURS = {
    "release.fail": "#b60205",
    "policy.deny": "#d93f0b",
    "drift.detected": "#d93f0b",
    "run.reject": "#d93f0b",
    "run.expire": "#d93f0b",
    "release.activate": "#2da44e",
    "incident.resolve": "#2da44e",
    "drift.resolved": "#2da44e",
}
NEUTRAL = "#0969da"


def colour(action: str, data: dict) -> str:
    severity = (data.get("metadata") or {}).get("severity") or (data.get("subject") or {}).get("severity")
    if action.startswith("incident.") and action != "incident.resolve" and severity in SEVERITY_COLOURS:
        return SEVERITY_COLOURS[severity]
    return ACTION_COLOURS.get(action, NEUTRAL)


def escaped(text) -> str:
    """`text` as Slack's markup shows it as written: `&`, `<` and `>` escaped, so that nothing in it (an incident's
    title from PagerDuty, an actor's name) can become `<!channel>` or a link (Slack's "Escaping text")."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(action: str, data: dict) -> dict:
    subject = data.get("subject") or {}
    metadata = data.get("metadata") or {}
    what = f"{subject.get('type', data.get('subjectType', ''))} {subject.get('id', data.get('subjectId', ''))}".strip()
    text = escaped(f"{action}: {what} by {data.get('actor', 'unknown')}")
    fields = [
        {"title": title, "value": escaped(value), "short": True}
        for title, value in (
            ("Service", data.get("serviceId") or metadata.get("serviceId")),
            ("Environment", metadata.get("envId")),
            ("Version", metadata.get("version")),
            ("Severity", metadata.get("severity") or subject.get("severity")),
            ("Title", subject.get("title")),
        )
        if value
    ]
    return {
        "text": text,
        "attachments": [
            {
                "color": colour(action, data),
                "fallback": text,
                "fields": fields,
                "footer": escaped(" · ".join(str(p) for p in ("control plane", data.get("ts"), data.get("seq")) if p)),
            }
        ],
    }
