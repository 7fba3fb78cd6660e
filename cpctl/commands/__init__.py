"""What runs a cpctl command (declared in `cpctl.cli`): its output, its client, and the module that does it,
imported only when it runs. A Failure ends it with its message and exit code."""

import sys

from rich.text import Text

from cpctl import config, render
from cpctl.client import Client, Failure, PolicyRefused


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


def run(area: str, name: str, output: str, profile: str | None, color: bool | None, options: dict) -> None:
    """Run the command `name` of `cpctl.commands.<area>` with its options, and exit with its code."""
    app = App(output, profile, color)
    try:
        # An import statement's own machinery, which `python -X importtime` times (importlib.import_module's is not).
        code = getattr(__import__(f"{__name__}.{area}", fromlist=[name]), name)(app, **options)
    except Failure as e:
        failed(app, e)
        sys.exit(e.code)
    except KeyboardInterrupt:
        app.out.err.print("interrupted")
        sys.exit(130)
    sys.exit(code or 0)


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
