"""The policy-ref catalogue (docs/policies.md): what `policy:<kind>[:<arg>…]` on an environment means.

Parsing is pure (no database): the environment's validation, the policy gate and the docs read the same
catalogue. Whether a named window or environment exists is the environment's own check (`Environment.clean`).
"""

import re
from dataclasses import dataclass

SEVERITY_ORDER = ("low", "medium", "high", "critical")
DEFAULT_GATE_SEVERITY = "high"
SOAK = re.compile(r"^(?P<amount>[0-9]{1,6})(?P<unit>[smhd])$")
SOAK_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SOAK_SECONDS = 90 * 86400
MAX_APPROVALS = 10
KINDS = ("change-window", "incident-gate", "requires", "approval")


@dataclass(frozen=True)
class Ref:
    """One parsed ref: its text, kind and what its arguments say."""

    text: str
    kind: str
    window: str = ""  # change-window: the window's name
    severity: str = ""  # incident-gate: refused at or above it
    environment: str = ""  # requires: the environment it must come from
    soak_seconds: int = 0  # requires: how long the source release has been Active there, at least
    approvals: int = 0  # approval: how many


def soak_seconds(text: str) -> int:
    match = SOAK.fullmatch(text)
    if match is None:
        raise ValueError(f"soak {text!r} is not a duration like 30m, 2h or 1d.")
    seconds = int(match["amount"]) * SOAK_SECONDS[match["unit"]]
    if seconds > MAX_SOAK_SECONDS:
        raise ValueError(f"soak {text!r} is longer than 90 days.")
    return seconds


def parse(text: str) -> Ref:
    """The ref `text` means, or ValueError naming it and the rule (the catalogue's kinds and their arguments)."""
    if not isinstance(text, str) or not text.startswith("policy:"):
        raise ValueError(f"{text!r} is not of the form 'policy:<kind>[:<arg>...]'.")
    kind, *args = text.removeprefix("policy:").split(":")
    if kind not in KINDS:
        raise ValueError(f"{text!r}: unknown policy kind {kind!r}; the kinds are {', '.join(KINDS)}.")
    try:
        return _PARSERS[kind](text, args)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None


def _change_window(text, args):
    if len(args) != 1 or not args[0]:
        raise ValueError("names one change window: policy:change-window:<name>.")
    return Ref(text, "change-window", window=args[0])


def _incident_gate(text, args):
    if len(args) > 1 or (args and args[0] not in SEVERITY_ORDER):
        raise ValueError(f"takes at most one severity, one of {', '.join(SEVERITY_ORDER)}.")
    return Ref(text, "incident-gate", severity=args[0] if args else DEFAULT_GATE_SEVERITY)


def _requires(text, args):
    if not 1 <= len(args) <= 2 or not args[0]:
        raise ValueError("names one environment and an optional soak: policy:requires:<env-id>[:<soak>].")
    return Ref(text, "requires", environment=args[0], soak_seconds=soak_seconds(args[1]) if len(args) == 2 else 0)


def _approval(text, args):
    if len(args) != 1 or not args[0].isascii() or not args[0].isdigit() or not 1 <= int(args[0]) <= MAX_APPROVALS:
        raise ValueError(f"takes a number of approvals from 1 to {MAX_APPROVALS}: policy:approval:<n>.")
    return Ref(text, "approval", approvals=int(args[0]))


_PARSERS = {
    "change-window": _change_window,
    "incident-gate": _incident_gate,
    "requires": _requires,
    "approval": _approval,
}


def parse_all(refs) -> list[Ref]:
    """Every ref of a stored (validated) list, parsed; one that no longer parses is skipped by nobody: it raises."""
    return [parse(ref) for ref in refs or ()]


def format_soak(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
