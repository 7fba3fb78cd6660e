"""Windows, freezes and environments made through the ORM, and the gate asked at a frozen instant."""

import itertools
from datetime import datetime

import pytest
import time_machine

from policies import engine, gate
from services.models import ChangeWindow

_names = itertools.count(1)


def instant(text: str) -> datetime:
    """'2026-03-30T07:00:00Z' (or with an offset) → an aware datetime."""
    return datetime.fromisoformat(text)


def decide_at(when: str, environment, action="deploy", service_id="", release=None, source=None, explain=False):
    """The gate's decision with the clock frozen at `when` (the facts gathered and decided at that instant)."""
    with time_machine.travel(instant(when), tick=False):
        s = gate.situation(action, environment, service_id, release=release, source=source)
        return gate.decide(s, explain=explain)


def states_at(when: str, environment) -> list[gate.WindowState]:
    with time_machine.travel(instant(when), tick=False):
        return gate.window_states(gate.situation("deploy", environment, ""), instant(when))


@pytest.fixture
def window(db):
    """A saved ChangeWindow (defaults: Mon-Fri 09:00-17:00 Europe/Berlin)."""

    def make(timezone="Europe/Berlin", days=(1, 2, 3, 4, 5), start="09:00", end="17:00", name=None):
        w = ChangeWindow(
            name=name or f"window-{next(_names)}", timezone=timezone, days=list(days), start=start, end=end
        )
        w.save()
        return w

    return make


@pytest.fixture
def gated(make_environment, window):
    """An environment whose refs name the given windows (made with `window`'s arguments) and other refs."""

    def make(*windows, refs=()):
        made = [window(**w) if isinstance(w, dict) else w for w in windows]
        return make_environment(policy_refs=[f"policy:change-window:{w.name}" for w in made] + list(refs))

    return make


@pytest.fixture
def operator_policies(settings, tmp_path):
    """Write an operator's policy file into a CONTROLPLANE_POLICY_DIR of this test's own; the process's policy
    book is reloaded with it, and reloaded without it afterwards."""
    folder = tmp_path / "operator-policies"
    folder.mkdir()

    def install(text: str, name: str = "operator.cedar"):
        (folder / name).write_text(text)
        settings.CONTROLPLANE_POLICY_DIR = str(folder)
        engine.book.cache_clear()
        return folder

    yield install
    engine.book.cache_clear()
