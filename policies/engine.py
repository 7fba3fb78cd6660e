"""Cedar, loaded once per process: the schema, the built-in policies (`policies/*.cedar`) and an operator's own
(`CONTROLPLANE_POLICY_DIR`), each file parsed and validated against the schema, so a bad one stops start-up
with one line naming its file and line.

One batch per decision: the action's own request and one request per gate (a window, a freeze, ...), each
carrying its gate's facts. A gate's request answers for the built-in policies only (an operator's `forbid` is
reported once, from the action's request, not once per gate).
"""

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import cedarpy
from django.conf import settings

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schema.cedarschema"
BUILTIN = "builtin"
_EVALUATION_ERROR = re.compile(r"error while evaluating policy `(?P<id>[^`]+)`: (?P<message>.*)", re.DOTALL)


class PolicyFileError(Exception):
    """A policy file that does not parse or fails the schema: one line, naming the file and line."""


@dataclass(frozen=True)
class Policy:
    name: str  # its @id, or <file>#<n>
    file: str  # the file's name, relative to its folder
    builtin: bool
    reason: str = ""  # its @reason annotation: what a refusal says (operators' policies)


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    forbidden_by: tuple[Policy, ...]  # the forbid policies that matched
    errors: tuple[tuple[Policy, str], ...]  # policies whose evaluation failed (each a denial)


@dataclass(frozen=True)
class Book:
    policy_set: cedarpy.PolicySet
    policies: dict[str, Policy]  # by Cedar's positional id
    files: tuple[str, ...]

    def ask(self, requests: list[tuple[dict, bool]], entities) -> list[Outcome]:
        """Each (request, builtin_only) answered: a gate's request counts the built-in policies alone."""
        results = cedarpy.is_authorized_batch([request for request, _ in requests], self.policy_set, entities)
        return [self._outcome(result, only) for result, (_, only) in zip(results, requests, strict=True)]

    def _outcome(self, result, builtin_only: bool) -> Outcome:
        errors = []
        for text in result.diagnostics.errors:
            match = _EVALUATION_ERROR.match(text)
            policy = self.policies.get(match["id"]) if match else None
            policy = policy or Policy(name="unknown", file="?", builtin=False)
            if not builtin_only or policy.builtin:
                errors.append((policy, match["message"] if match else text))
        forbidden = ()
        if not result.allowed:
            forbidden = tuple(
                self.policies[pid]
                for pid in result.diagnostics.reasons
                if pid in self.policies and (self.policies[pid].builtin or not builtin_only)
            )
        # Cedar skips a policy whose evaluation fails, so a failing `forbid` would let the request through:
        # here any failure denies, naming the policy.
        allowed = not forbidden and not errors and (result.allowed or builtin_only)
        return Outcome(allowed=allowed, forbidden_by=forbidden, errors=tuple(errors))


def _line_of(text: str, message: str) -> int:
    """Cedar's parse errors carry no line: the first line whose prefix of the file fails with the same message
    is where the offending token is (a prefix cut before it either parses or ends too early)."""
    lines = text.splitlines(keepends=True)
    for number in range(1, len(lines) + 1):
        try:
            cedarpy.PolicySet.from_str("".join(lines[:number]))
        except ValueError as exc:
            if str(exc).splitlines()[0] == message:
                return number
    return 1


def _policy_lines(text: str) -> list[int]:
    """The line each policy starts on (its effect keyword), in order."""
    effects = re.finditer(r"^\s*(permit|forbid)\s*\(", text, re.MULTILINE)
    return [text.count("\n", 0, m.start(1)) + 1 for m in effects]


def _read(folder: Path, builtin: bool, schema: str) -> list[tuple[str, str, list[Policy]]]:
    files = []
    for path in sorted(folder.glob("*.cedar")):
        name = path.name if builtin else str(path)
        text = path.read_text()
        try:
            parsed = cedarpy.PolicySet.from_str(text)
        except ValueError as exc:
            message = str(exc).splitlines()[0]
            raise PolicyFileError(f"{name}:{_line_of(text, message)}: {message}") from None
        result = cedarpy.validate_policies(text, schema)
        if not result.validation_passed:
            error = result.errors[0]
            lines = _policy_lines(text)
            index = int(error.policy_id.removeprefix("policy")) if error.policy_id.startswith("policy") else 0
            line = lines[index] if index < len(lines) else 1
            raise PolicyFileError(f"{name}:{line}: {error.error}")
        annotations = parsed.to_pst().static_policies
        policies = []
        for i in range(len(parsed)):
            notes = dict(annotations[f"policy{i}"].annotations or {})
            policies.append(
                Policy(
                    name=notes.get("id") or f"{path.name}#{i + 1}",
                    file=name,
                    builtin=builtin,
                    reason=notes.get("reason") or "",
                )
            )
        files.append((name, text, policies))
    return files


def load(operator_dir: str | None) -> Book:
    schema = SCHEMA.read_text()
    files = _read(HERE, builtin=True, schema=schema)
    if operator_dir:
        folder = Path(operator_dir)
        if not folder.is_dir():
            raise PolicyFileError(f"CONTROLPLANE_POLICY_DIR {operator_dir!r} is not a folder.")
        files += _read(folder, builtin=False, schema=schema)
    ordered = [policy for _, _, policies in files for policy in policies]
    return Book(
        policy_set=cedarpy.PolicySet.from_str("\n".join(text for _, text, _ in files)),
        policies={f"policy{i}": p for i, p in enumerate(ordered)},
        files=tuple(name for name, _, _ in files),
    )


@functools.cache
def book() -> Book:
    """The process's policies, parsed once."""
    return load(settings.CONTROLPLANE_POLICY_DIR)
