"""Pages rendered once and served many times (docs/pages.md, "The index, cached"): HTML with holes where what a
page shows depends on the request or the clock, filled in per request.

A template marks a hole with a tag that renders `<!--hole:KIND ARG…-->DEFAULT<!--/hole-->`: `{% ago t %}`
(`controlplane/templatetags/ui.py`), or a page's own. Served as rendered, a hole shows its default, what it
held when rendered; `Holed.of(html)` keeps the text between the holes and each hole's kind and arguments, and
`fill(fillers)` writes the page again with each hole's text from `fillers[KIND](*ARGS)`. Holes do not nest.

Data never forms a marker: the templates escape `<` in it, and a hole's arguments are URL-quoted.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from django.middleware.csrf import get_token
from django.template.loader import get_template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

_HOLE = re.compile(r"<!--hole:(\w+)((?: [^ >]*)*)-->.*?<!--/hole-->", re.S)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def marker(kind: str, *args, default: str = "") -> SafeString:
    """A hole of `kind` with `args` (text, quoted here), showing `default` (HTML) until it is filled."""
    quoted = "".join(" " + quote(str(arg), safe="") for arg in args)
    return mark_safe(f"<!--hole:{kind}{quoted}-->{default}<!--/hole-->")


@dataclass(frozen=True)
class Holed:
    """Rendered HTML as its text and its holes: `parts` alternates text and (kind, args), text first and last."""

    parts: tuple

    @classmethod
    def of(cls, html: str) -> "Holed":
        pieces = _HOLE.split(html)  # text, kind, args, text, kind, args, …, text
        parts = [pieces[0]]
        for i in range(1, len(pieces), 3):
            args = tuple(unquote(arg) for arg in pieces[i + 1].split(" ")[1:])
            parts += [(pieces[i], args), pieces[i + 2]]
        return cls(tuple(parts))

    def args(self, kind: str) -> list[tuple]:
        """The arguments of each hole of `kind`, in the page's order."""
        return [part[1] for part in self.parts[1::2] if part[0] == kind]

    def fill(self, fillers: dict) -> str:
        """The page, each hole written by its filler: `fillers[kind](*args) -> str` (HTML)."""
        parts = self.parts
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            kind, args = parts[i]
            out += [fillers[kind](*args), parts[i + 1]]
        return "".join(out)


def micros(instant: datetime | str) -> int:
    """`instant` (aware, or RFC 3339 text) as whole microseconds since the epoch: a hole's argument, exact."""
    if isinstance(instant, str):
        instant = datetime.fromisoformat(instant)
    return (instant - _EPOCH) // _MICROSECOND


def instant(micros_text: str) -> datetime:
    return _EPOCH + int(micros_text) * _MICROSECOND


def ago(seconds: int) -> str:
    """How long ago, in the largest unit that fits: `just now`, `5 min ago`, `3 h ago`, `2 d ago`."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def filling_ago(now: datetime | None = None):
    """The filler of `{% ago %}` holes: how long before `now` (by default, the time it is made) each was."""
    now_micros = micros(now or timezone.now())
    return lambda at: ago((now_micros - int(at)) // 1_000_000)


# --- a page's shell ---

_shells: dict = {}  # (template, actor, role, path) -> Holed; per process
_SHELLS_KEPT = 1000


class _ShellRequest:
    """The request as a shell is rendered with: its CSP nonce, which must be new in every response, a hole."""

    csp_nonce = marker("csp_nonce")

    def __init__(self, request):
        self._request = request

    def __getattr__(self, name):
        return getattr(self._request, name)


def page(request, template_name: str, content: str) -> str:
    """`template_name`, a page extending base.html whose content block is `{{ content }}`, around `content`
    (HTML). Besides its own blocks such a page shows who is signed in, the navigation their role allows (which
    marks the current path) and the sign-out form, so its shell is rendered once per principal and path in
    each process, and the CSRF token and the CSP nonce are written per response. Whatever else base.html comes
    to show of the request must join the key."""
    principal = request.principal
    template = get_template(template_name)
    # The compiled template is part of the key: a template edited under `runserver` is reloaded, and so is this.
    key = (template.template, principal.actor, principal.role, request.path)
    shell = _shells.get(key)
    if shell is None:
        if len(_shells) >= _SHELLS_KEPT:
            _shells.clear()
        context = {
            "principal": principal,
            "request": _ShellRequest(request),
            "content": marker("content"),
            "csrf_token": marker("csrf"),
        }
        shell = _shells[key] = Holed.of(template.render(context, request))
    return shell.fill(
        {
            "content": lambda: content,
            "csrf": lambda: get_token(request),
            "csp_nonce": lambda: str(request.csp_nonce),
        }
    )
