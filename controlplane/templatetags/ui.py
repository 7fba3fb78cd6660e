"""What every page shows the same way (docs/pages.md): severity and status badges, times, shas, the
navigation, the role an action needs. One place, so a severity has one colour and a status one badge on every
page."""

from datetime import datetime
from urllib.parse import urlsplit

from django import template
from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import mark_safe

from controlplane import holes
from controlplane.identity.roles import can, needed
from controlplane.timestamps import rfc3339

register = template.Library()

# (label, path, permission): the pages of the dashboard, in the navigation's order.
NAVIGATION = (
    ("Services", "/", "read"),
    ("Environments", "/environments/", "read"),
    ("Approvals", "/approvals/", "read"),
    ("Incidents", "/incidents/", "read"),
    ("Metrics", "/metrics/", "read"),
    ("Audit", "/audit/", "read"),
    ("Tokens", "/tokens/", "read"),
    ("Integrations", "/integrations/", "integration.read"),
    ("GraphQL", "/graphql/", "read"),
    ("API", "/api/docs/", "read"),
    ("Admin", "/admin/", "admin.access"),
)


# Pages that belong under a navigation item besides its own path: a service's, release's or run's under Services,
# a webhook's under Integrations.
UNDER = {"/": ("/services/", "/releases/", "/runs/"), "/integrations/": ("/webhooks/",)}


@register.simple_tag
def navigation(request, principal):
    def current(path: str) -> bool:
        if path == "/":
            return request.path == "/" or request.path.startswith(UNDER["/"])
        return request.path.startswith((path, *UNDER.get(path, ())))

    count = APPROVALS_COUNT if can(principal, "run.approve") else ""  # a viewer approves nothing: no count
    items = [
        (path, "page" if current(path) else "false", label, count if path == "/approvals/" else "")
        for label, path, permission in NAVIGATION
        if can(principal, permission)
    ]
    links = format_html_join("", '<li><a href="{}" aria-current="{}">{}{}</a></li>', items)
    return format_html("<ul>{}</ul>", links)


# The "awaiting your approval" count beside Approvals, for a principal who may approve: rendered empty (no query
# on every page) and fetched by live.js at once (`data-live-refresh-in="0"`), then again on the audit actions
# that change it (`data-live-actions`); `templates/releases/_approvals_count.html` is the fragment it becomes.
APPROVALS_COUNT = format_html(
    '<span id="approvals-count" class="badge count" data-live-src="/approvals/count" data-live-actions="{}"'
    ' data-live-refresh-in="0" hidden></span>',
    "approval.request run.approve run.reject run.cancel run.expire deploy.create release.promote",
)


@register.simple_tag
def role_for(action: str) -> str:
    """The role `action` needs, from the permission table: `needs the {% role_for "release.deploy" %} role`."""
    return str(needed(action))


@register.simple_tag
def severity(value: str | None):
    """An incident severity as its badge (nothing when there is none)."""
    if not value:
        return ""
    return format_html('<span class="badge {}">{}</span>', value, value)


@register.simple_tag
def status(value: str | None):
    """A release status, run state or incident status as its badge."""
    if not value:
        return ""
    return format_html('<span class="badge {}">{}</span>', value, value)


@register.filter
def since(value: datetime | str | None) -> str:
    """How long ago, in the largest unit that fits: `just now`, `5 min ago`, `3 h ago`, `2 d ago`."""
    if not value:
        return ""
    return holes.ago((holes.micros(timezone.now()) - holes.micros(value)) // 1_000_000)


@register.simple_tag
def ago(value: datetime | str | None):
    """`since`, as a `<time>` whose text is a hole (controlplane.holes): a page rendered once and served later
    says how long ago as of each request."""
    if not value:
        return ""
    at = holes.micros(value)
    now = holes.ago((holes.micros(timezone.now()) - at) // 1_000_000)
    stamp = value if isinstance(value, str) else rfc3339(value)  # a string is the API's RFC 3339 already
    # Built by hand, not format_html: a page of the index has some 200 of these.
    return mark_safe(f'<time datetime="{escape(stamp)}">{holes.marker("ago", at, default=now)}</time>')


@register.filter
def http_link(value: str | None) -> str:
    """`value` when it is an http(s) URL, else "": a link from another system (an incident's) never becomes a
    `javascript:` or `data:` href, whatever reached the row (the model validates on save; update() and older
    rows do not)."""
    value = (value or "").strip()
    return value if urlsplit(value).scheme.lower() in ("http", "https") else ""


@register.filter
def short_sha(value: str | None) -> str:
    return (value or "")[:7]
