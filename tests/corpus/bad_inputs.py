#!/usr/bin/env python3
"""Replay a corpus of bad inputs against a live control plane and report how it answered.

Standalone (standard library only; it never imports Django), so it runs against any server:

    python tests/corpus/bad_inputs.py --url http://127.0.0.1:8000 --token $T [--json] \
        [--verify-cmd '.venv/bin/python manage.py audit_verify']

`--token` is an admin token. The corpus is generated systematically: every write endpoint (create,
PUT, PATCH, DELETE and the actions) gets a valid body mutated field by field and malformed as a whole,
and every list endpoint gets bad query parameters; the two event streams get bad resume points. Each
case names the statuses that are right for it (400; 404 for a bad id in the path; 405; 409 where the
state conflicts; 413; 415). A 5xx, or a 2xx for bad input, is a failure; so is any audit event written
while the corpus runs (bad input changes nothing) and an `audit_verify` that no longer passes.

Before the corpus runs, the script creates what it needs through the API with valid requests (a few
environments and services, Draft releases, open incidents, archived entities; their names start with
`corpus-<tag>`), and finds an Active release to promote. Should a bad request wrongly succeed on one
of these objects, the object is replaced before the next case that needs it; the audit events those
replacements write are counted separately and are not held against the server.

The valid bodies the cases mutate are sent first and must be accepted (else a refusal proves nothing);
with `--action-controls`, each action is afterwards taken properly on the objects the bad requests were
aimed at, and must succeed (this deploys and promotes for real). `--list` prints the corpus.

Exit status: 0 when no case got a 5xx, a 2xx or no answer, the audit trail did not grow, the controls
were accepted, and `--verify-cmd` (if given) passes after as before; 1 otherwise; 2 when the set-up
itself failed. docs/reliability.md describes the corpus and its latest figures.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

JSON_TYPE = "application/json"
MIB = 1024 * 1024

# ---------------------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One bad request. `path` and `body` may hold `@@name@@` placeholders, filled in from the objects
    the setup made (`@@uniq@@` is a fresh token per request, for names that must be unique)."""

    category: str
    name: str
    method: str
    path: str
    body: bytes | None = None
    headers: tuple[tuple[str, str | bytes], ...] = ()
    expect: frozenset[int] = frozenset({400})
    target: str | None = None  # the setup object a wrongful 2xx would change (it is then replaced)
    stream: bool = False  # read the status line only, then hang up
    needs: tuple[str, ...] = ()  # setup objects without which the case cannot run (skipped)
    graphql: bool = False  # a /graphql/ case: its answer must be a refusal in GraphQL's terms (classify)

    def key(self):
        return (self.method, self.path, self.body, self.headers)


def dumps(value) -> bytes:
    # ensure_ascii: lone surrogates and NULs go out as \ud800 / \u0000 escapes, as a client would send them.
    return json.dumps(value, ensure_ascii=True).encode()


def raw_object(pairs) -> bytes:
    """An object as JSON text, keeping duplicate keys (a dict cannot)."""
    return ("{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}").encode()


def nested(depth: int, leaf: str = "1", kind: str = "list") -> str:
    if kind == "list":
        return "[" * depth + leaf + "]" * depth
    return '{"a": ' * depth + leaf + "}" * depth


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return urllib.parse.quote(base64.b64encode(raw).decode(), safe="")


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


# Values of the wrong JSON type, and strings no string field takes.
WRONG_TYPES = [
    ("number", 1),
    ("float", 1.5),
    ("true", True),
    ("false", False),
    ("empty-list", []),
    ("list", ["x"]),
    ("empty-object", {}),
    ("object", {"a": "b"}),
]
BAD_STRINGS = [
    ("lone-high-surrogate", "\ud800"),
    ("lone-low-surrogate", "a\udc00b"),
    ("nul-byte", "a\x00b"),
]

# RFC 3339 needs a full date, a full time with seconds, and an offset.
BAD_TIMES = [
    ("date-only", "2024-01-01"),
    ("no-offset", "2024-01-01T00:00:00"),
    ("iso-week", "2024-W01"),
    ("iso-week-time", "2024-W01-1T00:00:00Z"),
    ("basic-format", "20240101T000000Z"),
    ("no-seconds", "2024-01-01T00:00Z"),
    ("comma-fraction", "2024-01-01T00:00:00,5Z"),
    ("empty-fraction", "2024-01-01T00:00:00.Z"),
    ("word", "yesterday"),
    ("month-13", "2024-13-01T00:00:00Z"),
    ("feb-30", "2024-02-30T00:00:00Z"),
    ("hour-24", "2024-01-01T24:00:00Z"),
    ("offset-25h", "2024-01-01T00:00:00+25:00"),
    ("fullwidth-digits", "\uff12\uff10\uff12\uff14-01-01T00:00:00Z"),
    ("year-0", "0000-01-01T00:00:00Z"),
    ("year-10000", "10000-01-01T00:00:00Z"),
    ("past-year-9999-in-utc", "9999-12-31T23:59:59-23:59"),
]


@dataclass
class Field:
    """A writable field of a resource, how to break it, and (for duplicate keys) a second valid value."""

    name: str
    valid: object
    required: bool = True
    string: bool = True  # takes a JSON string
    nullable: bool = False
    blank_ok: bool = False
    overlong: str | None = None
    semantic: list = field(default_factory=list)  # (label, bad value, expected statuses or None)
    alt: object = None  # another valid value, for duplicate keys that disagree
    create_only: bool = False


def string_mutations(f: Field):
    out = [(label, value, None) for label, value in WRONG_TYPES]
    out += [(label, value, None) for label, value in BAD_STRINGS]
    if not f.nullable:
        out.append(("null", None, None))
    if not f.blank_ok:
        out += [("empty", "", None), ("whitespace", "  \t\n ", None)]
    if f.overlong is not None:
        out.append(("overlong", f.overlong, None))
    return out


def structure_mutations(kind: str):
    """Wrong JSON types for an object- or list-valued field."""
    values = {
        "object": [("string", "k8s"), ("number", 1), ("true", True), ("null", None), ("list", ["k8s"])],
        "list": [("string", "x"), ("number", 1), ("true", True), ("null", None), ("object", {"id": "x"})],
    }[kind]
    return [(label, value, None) for label, value in values]


REPO_BAD = [
    ("repo-word", "nope"),
    ("repo-javascript", "javascript:alert(1)"),
    ("repo-relative-absolute-path", "/corpus/relative"),
    ("repo-relative-path", "corpus/relative"),
    ("repo-dot-dot-url", "https://github.com/a/b/../../etc"),
    ("repo-trailing-dot-dot", "github.com/a/b/.."),
    ("repo-dot-segment", "github.com/a/./b"),
    ("repo-leading-dot-dot", "github.com/../b/c"),
    ("repo-owner-only", "https://github.com/a"),
    ("repo-ftp", "ftp://github.com/a/b"),
    ("repo-file", "file:///etc/passwd"),
    ("repo-query", "github.com/a/b?x=1"),
    ("repo-fragment", "github.com/a/b#frag"),
    ("repo-empty-owner", "github.com//b"),
    ("repo-newline", "github.com/a/b\nx"),
]
LINK_BAD = [
    ("link-ftp", "ftp://x.example.com/1"),
    ("link-javascript", "javascript:alert(1)"),
    ("link-relative", "/relative/1"),
    ("link-no-scheme", "example.com/1"),
    ("link-scheme-only", "https://"),
    ("link-space-in-host", "http://exa mple.com/"),
    ("link-mailto", "mailto:a@example.com"),
    ("link-double-quote", 'https://pd.example.com/i/"1"'),
    ("link-angle-bracket", "https://pd.example.com/i/<b>"),
    ("link-lone-percent", "https://pd.example.com/i/100%"),
]
ADAPTERS_BAD = [
    ("adapters-empty", {"deployments": []}),
    ("adapters-unknown", {"deployments": ["heroku"]}),
    ("adapters-duplicate", {"deployments": ["k8s", "k8s"]}),
    ("adapters-upper-case", {"deployments": ["K8S"]}),
    ("adapters-string", {"deployments": "k8s"}),
    ("adapters-number-item", {"deployments": [1]}),
    ("adapters-null-item", {"deployments": [None]}),
    ("adapters-surrogate-item", {"deployments": ["\ud800"]}),
    ("adapters-extra-key", {"deployments": ["k8s"], "extra": 1}),
    ("adapters-no-key", {}),
]
ENV_REFS_BAD = [
    ("environments-dangling", ["env-corpus-missing"]),
    ("environments-dangling-object", [{"id": "env-corpus-missing"}]),
    ("environments-archived", ["@@env_arch@@"]),
    ("environments-duplicate-id", ["@@env_a@@", "@@env_a@@"]),
    ("environments-duplicate-mixed", ["@@env_a@@", {"id": "@@env_a@@"}]),
    ("environments-duplicate-objects", [{"id": "@@env_a@@"}, {"id": "@@env_a@@"}]),
    ("environments-ref-extra-key", [{"id": "@@env_a@@", "colour": "blue"}]),
    ("environments-ref-wrong-key", [{"ID": "@@env_a@@"}]),
    ("environments-ref-empty-object", [{}]),
    ("environments-ref-number-id", [{"id": 1}]),
    ("environments-ref-null-id", [{"id": None}]),
    ("environments-ref-empty-id", [""]),
    ("environments-number-item", [1]),
    ("environments-null-item", [None]),
    ("environments-nested-list", [["@@env_a@@"]]),
    ("environments-wrong-type-id", ["@@svc@@"]),
    ("environments-surrogate-id", ["\ud800"]),
    ("environments-nul-id", ["@@env_a@@\x00"]),
]
POLICY_BAD = [
    ("policy-malformed", ["nope"]),
    ("policy-no-kind", ["policy:"]),
    ("policy-upper-case", ["POLICY:x"]),
    ("policy-empty", [""]),
    ("policy-duplicate", ["policy:a", "policy:a"]),
    ("policy-number-item", [1]),
    ("policy-null-item", [None]),
    ("policy-nested-list", [["policy:a"]]),
    ("policy-object-item", [{"a": 1}]),
    ("policy-surrogate", ["policy:\ud800"]),
    ("policy-nul", ["policy:a\x00"]),
    ("policy-unknown-kind", ["policy:two-person"]),
    ("policy-unknown-window", ["policy:change-window:corpus-missing"]),
    ("policy-unknown-environment", ["policy:requires:env-corpus-missing"]),
    ("policy-bad-soak", ["policy:requires:@@env_a@@:2w"]),
    ("policy-bad-severity", ["policy:incident-gate:sev1"]),
    ("policy-approvals-zero", ["policy:approval:0"]),
]
ID_BAD = [
    ("id-upper-case", "{p}UPPER"),
    ("id-underscore", "{p}a_b"),
    ("id-space", "{p}a b"),
    ("id-non-ascii", "{p}d\u00e9mo"),
    ("id-leading-dash", "-{p}a"),
    ("id-no-prefix", "corpus"),
]
SHA_BAD = [
    ("sha-non-hex", "xyz1234"),
    ("sha-upper-case", "4F2A9C1"),
    ("sha-3-chars", "abc"),
    ("sha-6-chars", "abcdef"),
    ("sha-0x-prefix", "0x4f2a9c1"),
    ("sha-fullwidth-digit", "\uff14f2a9c1"),
    ("sha-inner-space", "4f2a 9c1"),
]
SEVERITY_BAD = [
    ("severity-unknown", "sev1"),
    ("severity-upper-case", "HIGH"),
    ("severity-title-case", "High"),
    ("severity-trailing-space", "critical "),
    ("severity-info", "info"),
]
ENV_NAME_BAD = [
    ("name-space", "q a"),
    ("name-upper-case", "UPPER"),
    ("name-leading-dash", "-lead"),
    ("name-underscore", "a_b"),
    ("name-non-ascii", "\u00e4"),
]
TIMEZONE_BAD = [
    ("timezone-unknown", "Mars/Olympus"),
    ("timezone-lower-case", "europe/berlin"),
    ("timezone-dot-dot", "../../etc/passwd"),
    ("timezone-absolute-path", "/etc/localtime"),
    ("timezone-offset", "+01:00"),
    ("timezone-inner-space", "Europe/ Berlin"),
    ("timezone-directory", "Europe"),
]
DAYS_BAD = [
    ("days-empty", []),
    ("days-zero", [0]),
    ("days-eight", [8]),
    ("days-negative", [-1]),
    ("days-duplicate", [1, 1]),
    ("days-string-item", ["1"]),
    ("days-float-item", [1.5]),
    ("days-whole-float-item", [1.0]),
    ("days-true-item", [True]),
    ("days-null-item", [None]),
    ("days-huge-item", [10**30]),
    ("days-nested-list", [[1]]),
]
CLOCK_BAD = [
    ("clock-no-colon", "0900"),
    ("clock-one-digit-hour", "9:00"),
    ("clock-minute-60", "09:60"),
    ("clock-hour-25", "25:00"),
    ("clock-seconds", "09:00:00"),
    ("clock-am-pm", "9am"),
    ("clock-fullwidth-digits", "\uff10\uff19:00"),
]
FREEZE_ENVS_BAD = [
    ("envids-empty", []),
    ("envids-dangling", ["env-corpus-missing"]),
    ("envids-duplicate", ["@@env_c@@", "@@env_c@@"]),
    ("envids-wrong-type", ["@@svc@@"]),
    ("envids-upper-case", ["ENV-PROD"]),
    ("envids-number-item", [1]),
    ("envids-null-item", [None]),
    ("envids-object-item", [{"id": "@@env_c@@"}]),
    ("envids-nested-list", [["@@env_c@@"]]),
    ("envids-surrogate", ["\ud800"]),
    ("envids-nul", ["@@env_c@@\x00"]),
]


def resources():
    """The writable resources: their collection, setup objects, and fields."""
    svc_fields = [
        Field("id", "svc-corpus-x", required=False, create_only=True, overlong="svc-" + "a" * 60),
        Field("name", "Corpus Service", overlong="a" * 101, alt="Corpus Service 2"),
        Field(
            "repo",
            "github.com/corpus/service",
            overlong="github.com/corpus/" + "a" * 240,
            semantic=[(label, value, None) for label, value in REPO_BAD],
            alt="https://github.com/corpus/service.git",
        ),
        Field(
            "adapters",
            {"deployments": ["k8s"]},
            string=False,
            semantic=structure_mutations("object") + [(label, value, None) for label, value in ADAPTERS_BAD],
            alt={"deployments": ["aws"]},
        ),
        Field(
            "environments",
            ["@@env_a@@"],
            required=False,
            string=False,
            semantic=structure_mutations("list") + [(label, value, None) for label, value in ENV_REFS_BAD],
            alt=[{"id": "@@env_a@@"}],
        ),
    ]
    env_fields = [
        Field("id", "env-corpus-x", required=False, create_only=True, overlong="env-" + "a" * 60),
        Field(
            "name",
            "@@uniq@@",
            overlong="a" * 64,
            semantic=[(label, value, None) for label, value in ENV_NAME_BAD],
            alt="@@uniq@@-2",
        ),
        Field("region", "eu-west-1", required=False, nullable=True, blank_ok=True, overlong="a" * 64, alt="eu-west-2"),
        Field("cluster", "blue", required=False, nullable=True, blank_ok=True, overlong="a" * 101, alt="green"),
        Field(
            "policyRefs",
            ["policy:change-window:weekday"],
            required=False,
            string=False,
            semantic=structure_mutations("list") + [(label, value, None) for label, value in POLICY_BAD],
            alt=["policy:incident-gate"],
        ),
    ]
    rel_fields = [
        Field("id", "rel-corpus-x", required=False, create_only=True, overlong="rel-" + "a" * 60),
        Field(
            "serviceId",
            "@@svc@@",
            overlong="svc-" + "a" * 60,
            semantic=[
                ("service-dangling", "svc-corpus-missing", None),
                ("service-wrong-type", "@@env_a@@", None),
                ("service-archived", "@@svc_archived@@", None),
            ],
        ),
        Field(
            "envId",
            "@@env_a@@",
            overlong="env-" + "a" * 60,
            semantic=[
                ("env-dangling", "env-corpus-missing", None),
                ("env-unlinked", "@@env_c@@", None),
                ("env-wrong-type", "@@svc@@", None),
                ("env-archived", "@@env_arch@@", None),
            ],
            alt="@@env_b@@",
        ),
        Field("sha", "4f2a9c1", overlong="a" * 41, semantic=[(label, v, None) for label, v in SHA_BAD], alt="4f2a9c2"),
        Field("version", "1.0.0", overlong="a" * 65, alt="1.0.1"),
    ]
    inc_fields = [
        Field("id", "inc-corpus-x", required=False, create_only=True, overlong="inc-" + "a" * 60),
        Field(
            "serviceId",
            "@@svc@@",
            overlong="svc-" + "a" * 60,
            semantic=[
                ("service-dangling", "svc-corpus-missing", None),
                ("service-wrong-type", "@@env_a@@", None),
                ("service-archived", "@@svc_archived@@", None),
            ],
        ),
        Field("title", "Corpus incident", required=False, blank_ok=True, overlong="a" * 201, alt="Corpus 2"),
        Field("severity", "high", semantic=[(label, v, None) for label, v in SEVERITY_BAD], alt="low"),
        Field(
            "link",
            "https://pd.example.com/i/1",
            overlong="https://example.com/" + "a" * 500,
            semantic=[(label, v, None) for label, v in LINK_BAD],
            alt="https://pd.example.com/i/2",
        ),
        Field(
            "startedAt",
            "2024-01-01T00:00:00Z",
            required=False,
            # More than 5 minutes ahead of the server's clock, as well as not RFC 3339.
            semantic=[(f"time-{label}", v, None) for label, v in [*BAD_TIMES, ("year-2999", "2999-01-01T00:00:00Z")]],
        ),
    ]
    window_fields = [
        Field("id", "cw-corpus-x", required=False, create_only=True, overlong="cw-" + "a" * 61),
        Field(
            "name",
            "@@uniq@@",
            overlong="a" * 64,
            semantic=[(label, value, None) for label, value in ENV_NAME_BAD],
            alt="@@uniq@@-2",
        ),
        Field(
            "timezone",
            "Europe/Berlin",
            overlong="Europe/" + "a" * 60,
            semantic=[(label, value, None) for label, value in TIMEZONE_BAD],
            alt="Asia/Kolkata",
        ),
        Field(
            "days",
            [1, 2, 3, 4, 5],
            string=False,
            semantic=structure_mutations("list") + [(label, value, None) for label, value in DAYS_BAD],
            alt=[6, 7],
        ),
        Field(
            "start",
            "09:00",
            overlong="09:00:00.000",
            semantic=[(label, v, None) for label, v in [*CLOCK_BAD, ("clock-24", "24:00")]],
            alt="08:00",
        ),
        Field(
            "end",
            "17:00",
            overlong="17:00:00.000",
            semantic=[
                (label, v, None) for label, v in [*CLOCK_BAD, ("clock-24-01", "24:01"), ("end-is-start", "09:00")]
            ],
            alt="18:00",
        ),
    ]
    freeze_fields = [
        Field("id", "frz-corpus-x", required=False, create_only=True, overlong="frz-" + "a" * 60),
        Field("title", "Corpus freeze", overlong="a" * 201, alt="Corpus freeze 2"),
        # In the past, on an environment nothing deploys to: the corpus's freezes never gate its controls.
        Field(
            "startsAt",
            "2024-01-01T00:00:00Z",
            semantic=[(f"time-{label}", v, None) for label, v in BAD_TIMES],
            alt="2024-01-01T01:00:00+01:00",
        ),
        Field(
            "endsAt",
            "2024-01-02T00:00:00Z",
            semantic=[
                *((f"time-{label}", v, None) for label, v in BAD_TIMES),
                ("before-startsAt", "2023-12-31T00:00:00Z", None),
                ("at-startsAt", "2024-01-01T00:00:00Z", None),
            ],
            alt="2024-01-03T00:00:00Z",
        ),
        Field(
            "envIds",
            ["@@env_c@@"],
            string=False,
            semantic=structure_mutations("list") + [(label, value, None) for label, value in FREEZE_ENVS_BAD],
            alt=["@@env_b@@"],
        ),
        Field("reason", "Corpus", required=False, blank_ok=True, overlong="a" * 2001, alt="Corpus 2"),
    ]
    return [
        {
            "name": "services",
            "prefix": "svc-",
            "collection": "/api/services/",
            "update_target": "svc_upd",
            "fields": svc_fields,
            "read_only": {"createdAt": "2024-01-01T00:00:00Z", "archivedAt": "2024-01-01T00:00:00Z"},
            "unknown_variants": {"case": "Name", "snake": "created_at"},
            "deletable": True,
        },
        {
            "name": "environments",
            "prefix": "env-",
            "collection": "/api/environments/",
            "update_target": "env_upd",
            "fields": env_fields,
            "read_only": {"createdAt": "2024-01-01T00:00:00Z", "archivedAt": "2024-01-01T00:00:00Z"},
            "unknown_variants": {"case": "Region", "snake": "policy_refs"},
            "deletable": True,
        },
        {
            "name": "releases",
            "prefix": "rel-",
            "collection": "/api/releases/",
            "update_target": "rel_upd",
            "fields": rel_fields,
            "read_only": {
                "status": "Active",
                "createdAt": "2024-01-01T00:00:00Z",
                "activatedAt": "2024-01-01T00:00:00Z",
            },
            "unknown_variants": {"case": "SHA", "snake": "service_id"},
            "deletable": False,
        },
        {
            "name": "incidents",
            "prefix": "inc-",
            "collection": "/api/incidents/",
            "update_target": "inc_upd",
            "fields": inc_fields,
            "read_only": {
                "status": "resolved",
                "acknowledgedAt": "2024-01-01T00:00:00Z",
                "resolvedAt": "2024-01-01T00:00:00Z",
            },
            "unknown_variants": {"case": "Severity", "snake": "started_at"},
            "deletable": False,
        },
        {
            "name": "change-windows",
            "prefix": "cw-",
            "collection": "/api/change-windows/",
            "update_target": "cw_upd",
            "fields": window_fields,
            "read_only": {"createdAt": "2024-01-01T00:00:00Z"},
            "unknown_variants": {"case": "TimeZone", "snake": "created_at"},
            "deletable": False,
        },
        {
            "name": "freezes",
            "prefix": "frz-",
            "collection": "/api/freezes/",
            "update_target": "frz_upd",
            "fields": freeze_fields,
            "read_only": {"createdAt": "2024-01-01T00:00:00Z"},
            "unknown_variants": {"case": "EnvIds", "snake": "env_ids"},
            "deletable": False,
        },
    ]


def unknown_keys(variants):
    return [
        ("unknown-field", "colour"),
        ("unknown-field-case-variant", variants["case"]),
        ("unknown-field-snake-case", variants["snake"]),
        ("unknown-field-empty-key", ""),
        ("unknown-field-surrogate-key", "\ud800"),
        ("unknown-field-nul-key", "a\x00b"),
        ("unknown-field-proto", "__proto__"),
    ]


# The framing cases a PUT, PATCH or second body-less action gets (they share the create's or deploy's
# parsing; the full set runs once per kind of endpoint).
SHORT_FRAMING = {
    "malformed-open-brace",
    "malformed-trailing-garbage",
    "malformed-invalid-utf8",
    "nan",
    "huge-float",
    "body-list-of-object",
    "body-null",
    "deep-list-10000",
    "deep-object-value-10000",
    "content-type-text-plain",
    "content-type-missing",
    "oversize-1MiB+",
}


def framing_cases(category_prefix, name, method, path, target, field_name, bodyless=False, needs=(), short=False):
    """Bodies that are not a JSON object of this endpoint's fields: malformed, not an object, nested
    10 000 deep, not JSON at all, or too large. `field_name` is a field the endpoint knows."""
    f = json.dumps(field_name)
    cases = []
    bad_json = [
        ("malformed-open-brace", b"{"),
        ("malformed-missing-value", f"{{{f}: }}".encode()),
        ("malformed-single-quotes", f"{{'{field_name}': 'x'}}".encode()),
        ("malformed-trailing-comma", f'{{{f}: "x",}}'.encode()),
        ("malformed-trailing-garbage", f'{{{f}: "x"}} x'.encode()),
        ("malformed-two-objects", b"{}{}"),
        ("malformed-unterminated-string", f'{{{f}: "x'.encode()),
        ("malformed-raw-newline-in-string", f'{{{f}: "a\nb"}}'.encode()),
        ("malformed-comment", f'{{{f}: "x" /* c */}}'.encode()),
        ("malformed-invalid-utf8", f'{{{f}: "\xff"}}'.encode("latin-1")),
        ("malformed-utf16", f'{{{f}: "x"}}'.encode("utf-16")),
        ("nan", f"{{{f}: NaN}}".encode()),
        ("infinity", f"{{{f}: Infinity}}".encode()),
        ("minus-infinity", f"{{{f}: -Infinity}}".encode()),
        ("huge-integer", f"{{{f}: {'9' * 5000}}}".encode()),
        ("huge-float", f"{{{f}: 1e999}}".encode()),
        ("not-json", b"not json"),
    ]
    not_objects = [
        ("body-empty-list", b"[]"),
        ("body-list-of-object", f'[{{{f}: "x"}}]'.encode()),
        ("body-string", b'"x"'),
        ("body-number", b"1"),
        ("body-true", b"true"),
        ("body-null", b"null"),
    ]
    deep = [
        ("deep-list-10000", nested(10_000).encode()),
        ("deep-object-10000", nested(10_000, kind="object").encode()),
        ("deep-list-value-10000", f"{{{f}: {nested(10_000)}}}".encode()),
        ("deep-object-value-10000", f"{{{f}: {nested(10_000, kind='object')}}}".encode()),
    ]
    for label, body in bad_json:
        cases.append(Case(f"{category_prefix}malformed-json", f"{name} {label}", method, path, body, target=target))
    for label, body in not_objects:
        cases.append(Case(f"{category_prefix}non-object-body", f"{name} {label}", method, path, body, target=target))
    for label, body in deep:
        cases.append(Case(f"{category_prefix}deep-nesting", f"{name} {label}", method, path, body, target=target))
    valid_text = f'{{{f}: "x"}}'.encode()
    content_types = [
        ("content-type-text-plain", "text/plain", valid_text),
        ("content-type-form", "application/x-www-form-urlencoded", f"{field_name}=x".encode()),
        (
            "content-type-multipart",
            "multipart/form-data; boundary=xx",
            b"--xx\r\nContent-Disposition: form-data; " + f'name="{field_name}"\r\n\r\nx\r\n--xx--\r\n'.encode(),
        ),
        ("content-type-missing", None, valid_text),
        ("content-type-xml", "application/xml", b"<a/>"),
        ("content-type-text-json", "text/json", valid_text),
        ("content-type-json-patch", "application/json-patch+json", b'[{"op": "add", "path": "/x", "value": 1}]'),
    ]
    for label, ctype, body in content_types:
        headers = (("Content-Type", ctype),) if ctype else (("Content-Type", None),)
        expect = frozenset({400, 415}) if bodyless else frozenset({415})
        cases.append(
            Case(f"{category_prefix}content-type", f"{name} {label}", method, path, body, headers, expect, target)
        )
    oversize = f'{{{f}: "'.encode() + b"a" * (MIB + 1) + b'"}'
    cases.append(
        Case(
            f"{category_prefix}oversize",
            f"{name} oversize-1MiB+",
            method,
            path,
            oversize,
            expect=frozenset({413}),
            target=target,
        )
    )
    if short:
        cases = [c for c in cases if c.name.split(" ")[-1] in SHORT_FRAMING]
    return [c if not needs else Case(**{**c.__dict__, "needs": needs}) for c in cases]


def body_cases(resource):
    """Create, PUT and PATCH with each field broken in turn, plus whole-body defects."""
    out = []
    coll = resource["collection"]
    detail = f"{coll}@@{resource['update_target']}@@/"
    target = resource["update_target"]
    fields = resource["fields"]
    base_create = {f.name: f.valid for f in fields if f.name != "id"}
    base_put = {f.name: f.valid for f in fields if not f.create_only}
    rname = resource["name"]
    ops = [("create", "POST", coll, None, base_create), ("put", "PUT", detail, target, base_put)]

    def mutations(f: Field, semantic=True):
        muts = string_mutations(f) if f.string else []
        # PUT shares the create's rules: it gets the type mutations, and the field rules only for
        # fields that are not strings (their wrong types).
        return muts + (f.semantic if semantic or not f.string else [])

    for op, method, path, tgt, base in ops:
        for f in fields:
            if f.create_only and op != "create":
                continue
            for label, value, expect in mutations(f, semantic=op == "create"):
                body = dumps({**base, f.name: value})
                out.append(
                    Case(
                        f"{rname}: field values",
                        f"{op} {rname} {f.name}={label}",
                        method,
                        path,
                        body,
                        expect=frozenset(expect or {400}),
                        target=tgt,
                    )
                )
            if f.required:
                body = dumps({k: v for k, v in base.items() if k != f.name})
                out.append(
                    Case(f"{rname}: missing fields", f"{op} {rname} without {f.name}", method, path, body, target=tgt)
                )
    # PATCH: one field at a time (every mutation), and the read-only id.
    for f in fields:
        if f.create_only:
            continue
        for label, value, expect in mutations(f):
            out.append(
                Case(
                    f"{rname}: field values",
                    f"patch {rname} {f.name}={label}",
                    "PATCH",
                    detail,
                    dumps({f.name: value}),
                    expect=frozenset(expect or {400}),
                    target=target,
                )
            )
    # Client-chosen ids on create.
    prefix = resource["prefix"]
    for label, template in ID_BAD:
        value = template.format(p=prefix)
        out.append(Case(f"{rname}: ids", f"create {rname} {label}", "POST", coll, dumps({**base_create, "id": value})))
    out.append(
        Case(
            f"{rname}: ids",
            f"create {rname} id-already-taken",
            "POST",
            coll,
            dumps({**base_create, "id": f"@@{target}@@"}),
        )
    )
    out.append(
        Case(
            f"{rname}: ids",
            f"patch {rname} id-changed",
            "PATCH",
            detail,
            dumps({"id": f"{prefix}corpus-other"}),
            target=target,
        )
    )
    out.append(
        Case(
            f"{rname}: ids",
            f"put {rname} id-changed",
            "PUT",
            detail,
            dumps({**base_put, "id": f"{prefix}corpus-other"}),
            target=target,
        )
    )
    # Read-only fields, unknown fields, duplicate keys: on create, PUT and PATCH.
    first = next(f for f in fields if f.name != "id")
    bodies = [
        ("create", "POST", coll, None, base_create),
        ("put", "PUT", detail, target, base_put),
        ("patch", "PATCH", detail, target, {first.name: first.valid}),
    ]
    for op, method, path, tgt, base in bodies:
        for key, value in resource["read_only"].items():
            out.append(
                Case(
                    f"{rname}: read-only fields",
                    f"{op} {rname} read-only {key}",
                    method,
                    path,
                    dumps({**base, key: value}),
                    target=tgt,
                )
            )
        for label, key in unknown_keys(resource["unknown_variants"]):
            out.append(
                Case(
                    f"{rname}: unknown fields",
                    f"{op} {rname} {label}",
                    method,
                    path,
                    dumps({**base, key: "x"}),
                    target=tgt,
                )
            )
        dup_fields = [f for f in fields if f.name in base] if op != "patch" else [first]
        for f in dup_fields:
            pairs = list(base.items())
            out.append(
                Case(
                    f"{rname}: duplicate keys",
                    f"{op} {rname} duplicate {f.name} same value",
                    method,
                    path,
                    raw_object([*pairs, (f.name, base[f.name])]),
                    target=tgt,
                )
            )
            if f.alt is not None:
                out.append(
                    Case(
                        f"{rname}: duplicate keys",
                        f"{op} {rname} duplicate {f.name} other value",
                        method,
                        path,
                        raw_object([*pairs, (f.name, f.alt)]),
                        target=tgt,
                    )
                )
        out += framing_cases(f"{rname}: ", f"{op} {rname}", method, path, tgt, first.name, short=op != "create")
    # Resource-specific rules.
    if rname == "environments":
        out.append(
            Case(
                "environments: field values",
                "create production environment without region",
                "POST",
                coll,
                dumps({"name": "prod-@@uniq@@", "cluster": "c1"}),
            )
        )
        out.append(
            Case(
                "environments: field values",
                "create production environment with null cluster",
                "POST",
                coll,
                dumps({"name": "production-@@uniq@@", "region": "eu-west-1", "cluster": None}),
            )
        )
    if rname == "releases":
        out.append(
            Case(
                "releases: field values",
                "patch releases sha changed (immutable)",
                "PATCH",
                detail,
                dumps({"sha": "1234567"}),
                target=target,
            )
        )
        out.append(
            Case(
                "releases: field values",
                "patch releases serviceId changed (immutable)",
                "PATCH",
                detail,
                dumps({"serviceId": "@@svc_upd@@"}),
                target=target,
            )
        )
    if rname == "incidents":
        out.append(
            Case(
                "incidents: field values",
                "patch incidents serviceId changed (immutable)",
                "PATCH",
                detail,
                dumps({"serviceId": "@@svc_upd@@"}),
                target=target,
            )
        )
    return out


BAD_PATH_IDS = [
    ("missing-id", "{p}corpus-missing"),
    ("upper-case-id", "{P}DEMO"),
    ("underscore-id", "{p}a_b"),
    ("too-long-id", "{p}" + "a" * 70),
    ("dot-dot-id", "%2e%2e"),
    ("non-ascii-id", "{p}d%C3%A9mo"),
    ("wrong-type-id", "{other}corpus-missing"),
]


def path_id_cases():
    """Writes addressed to ids that do not exist or cannot: 404 (the body itself is valid)."""
    out = []
    specs = [
        (
            "services",
            "svc-",
            "env-",
            [
                ("PUT", "", {"name": "x"}),
                ("PATCH", "", {"name": "x"}),
                ("DELETE", "", None),
                ("POST", "restore/", None),
            ],
        ),
        (
            "environments",
            "env-",
            "svc-",
            [
                ("PUT", "", {"name": "x"}),
                ("PATCH", "", {"name": "x"}),
                ("DELETE", "", None),
                ("POST", "restore/", None),
            ],
        ),
        (
            "releases",
            "rel-",
            "inc-",
            [
                ("PUT", "", {"version": "x"}),
                ("PATCH", "", {"version": "x"}),
                ("POST", "deploy/", None),
                ("POST", "promote/", {"envId": "@@env_b@@"}),
            ],
        ),
        (
            "incidents",
            "inc-",
            "rel-",
            [
                ("PUT", "", {"title": "x"}),
                ("PATCH", "", {"title": "x"}),
                ("POST", "acknowledge/", None),
                ("POST", "resolve/", None),
            ],
        ),
        ("change-windows", "cw-", "frz-", [("PUT", "", {"name": "x"}), ("PATCH", "", {"name": "x"})]),
        ("freezes", "frz-", "cw-", [("PUT", "", {"title": "x"}), ("PATCH", "", {"title": "x"})]),
    ]
    for rname, p, other, ops in specs:
        for method, suffix, body in ops:
            for label, template in BAD_PATH_IDS:
                ident = template.format(p=p, P=p.upper(), other=other)
                out.append(
                    Case(
                        "bad ids in the path",
                        f"{method} {rname}/{{{label}}}/{suffix}",
                        method,
                        f"/api/{rname}/{ident}/{suffix}",
                        dumps(body) if body is not None else None,
                        expect=frozenset({404}),
                    )
                )
    # A NUL in the path: refused either way.
    out.append(
        Case(
            "bad ids in the path",
            "PATCH services/{nul-id}/",
            "PATCH",
            "/api/services/svc-demo%00/",
            dumps({"name": "x"}),
            expect=frozenset({400, 404}),
        )
    )
    return out


def method_cases():
    """Methods an endpoint does not have: 405."""
    m = frozenset({405})
    rows = [
        ("PUT", "/api/services/"),
        ("PATCH", "/api/services/"),
        ("DELETE", "/api/services/"),
        ("PUT", "/api/environments/"),
        ("DELETE", "/api/environments/"),
        ("DELETE", "/api/releases/@@rel_upd@@/"),
        ("PUT", "/api/releases/"),
        ("DELETE", "/api/releases/"),
        ("POST", "/api/releases/@@rel_upd@@/"),
        ("DELETE", "/api/incidents/@@inc_upd@@/"),
        ("PUT", "/api/incidents/"),
        ("POST", "/api/incidents/@@inc_upd@@/"),
        ("POST", "/api/workflow-runs/"),
        ("PUT", "/api/workflow-runs/@@run@@/"),
        ("PATCH", "/api/workflow-runs/@@run@@/"),
        ("DELETE", "/api/workflow-runs/@@run@@/"),
        ("POST", "/api/audit-events/"),
        ("PUT", "/api/audit-events/1/"),
        ("PATCH", "/api/audit-events/1/"),
        ("DELETE", "/api/audit-events/1/"),
        ("GET", "/api/releases/@@rel_upd@@/deploy/"),
        ("GET", "/api/releases/@@rel_upd@@/promote/"),
        ("GET", "/api/incidents/@@inc_upd@@/acknowledge/"),
        ("GET", "/api/incidents/@@inc_upd@@/resolve/"),
        ("GET", "/api/services/@@svc_upd@@/restore/"),
        ("GET", "/api/environments/@@env_upd@@/restore/"),
        ("PUT", "/api/releases/@@rel_upd@@/deploy/"),
        ("DELETE", "/api/incidents/@@inc_upd@@/resolve/"),
        ("POST", "/api/services/index/"),
        ("POST", "/api/releases/@@rel_upd@@/timeline/"),
        ("POST", "/api/audit-events/stream"),
        ("POST", "/api/workflow-runs/@@run@@/logs/stream"),
        ("DELETE", "/api/change-windows/@@cw_upd@@/"),
        ("PUT", "/api/change-windows/"),
        ("DELETE", "/api/change-windows/"),
        ("DELETE", "/api/freezes/@@frz_upd@@/"),
        ("PUT", "/api/freezes/"),
        ("DELETE", "/api/freezes/"),
        ("POST", "/api/environments/@@env_a@@/policy/"),
        ("PUT", "/api/environments/@@env_a@@/policy/"),
        ("DELETE", "/api/environments/@@env_a@@/policy/"),
    ]
    out = []
    for method, path in rows:
        # No body: the method is the request's only defect (a bad body could rightly be refused first).
        needs = ("run",) if "@@run@@" in path else ()
        out.append(Case("methods not allowed", f"{method} {path}", method, path, expect=m, needs=needs))
    return out


BODYLESS_BODIES = [
    ("unknown-field", {"colour": "x"}),
    ("force-flag", {"force": True}),
    ("reason", {"reason": "x"}),
    ("status", {"status": "resolved"}),
    ("env-id", {"envId": "@@env_b@@"}),
    ("surrogate-key", {"\ud800": 1}),
    ("nul-key", {"a\x00b": 1}),
]

BREAK_GLASS_BAD = [
    ("string", "because"),
    ("number", 1),
    ("true", True),
    ("null", None),
    ("list", [{"reason": "a reason long enough"}]),
    ("empty-object", {}),
    ("reason-number", {"reason": 1234567890}),
    ("reason-null", {"reason": None}),
    ("reason-empty", {"reason": ""}),
    ("reason-9-chars", {"reason": "too short"}),
    ("reason-whitespace", {"reason": " " * 20}),
    ("reason-501-chars", {"reason": "a" * 501}),
    ("reason-surrogate", {"reason": "a reason \ud800 long enough"}),
    ("reason-nul", {"reason": "a reason \x00 long enough"}),
    ("unknown-key", {"reason": "a reason long enough", "force": True}),
    ("misspelt-key", {"Reason": "a reason long enough"}),
]


def action_cases():
    """The actions: bodies where none belongs, promote's one field broken, and state conflicts (409)."""
    out = []
    bodyless = [
        ("deploy", "POST", "/api/releases/@@rel_deploy@@/deploy/", "rel_deploy"),
        ("acknowledge", "POST", "/api/incidents/@@inc_ack@@/acknowledge/", "inc_ack"),
        ("resolve", "POST", "/api/incidents/@@inc_res@@/resolve/", "inc_res"),
        ("restore service", "POST", "/api/services/@@svc_restore@@/restore/", "svc_restore"),
        ("restore environment", "POST", "/api/environments/@@env_restore@@/restore/", "env_restore"),
        ("archive service", "DELETE", "/api/services/@@svc_del@@/", "svc_del"),
        ("archive environment", "DELETE", "/api/environments/@@env_del@@/", "env_del"),
    ]
    for name, method, path, target in bodyless:
        for label, body in BODYLESS_BODIES:
            out.append(
                Case(
                    "actions: bodies on body-less actions",
                    f"{name} with body {label}",
                    method,
                    path,
                    dumps(body),
                    target=target,
                )
            )
        out.append(
            Case(
                "actions: duplicate keys",
                f"{name} with duplicate keys",
                method,
                path,
                raw_object([("colour", "x"), ("colour", "x")]),
                target=target,
            )
        )
        out += framing_cases("actions: ", name, method, path, target, "colour", bodyless=True, short=name != "deploy")
    # promote: {"envId": ...} to an environment the Active source can go to.
    path, target, needs = "/api/releases/@@rel_active@@/promote/", "promote_env", ("rel_active",)
    env = promote_env_field()
    for label, value, expect in string_mutations(env) + env.semantic:
        out.append(
            Case(
                "actions: promote fields",
                f"promote envId={label}",
                "POST",
                path,
                dumps({"envId": value}),
                expect=frozenset(expect or {400}),
                target=target,
                needs=needs,
            )
        )
    out.append(
        Case("actions: promote fields", "promote without envId", "POST", path, dumps({}), target=target, needs=needs)
    )
    for label, key in unknown_keys({"case": "EnvId", "snake": "env_id"}):
        out.append(
            Case(
                "actions: unknown fields",
                f"promote {label}",
                "POST",
                path,
                dumps({"envId": "@@promote_env@@", key: "x"}),
                target=target,
                needs=needs,
            )
        )
    for label, key in [("status", "status"), ("sha", "sha"), ("version", "version"), ("serviceId", "serviceId")]:
        out.append(
            Case(
                "actions: unknown fields",
                f"promote with release field {label}",
                "POST",
                path,
                dumps({"envId": "@@promote_env@@", key: "x"}),
                target=target,
                needs=needs,
            )
        )
    out.append(
        Case(
            "actions: duplicate keys",
            "promote duplicate envId same value",
            "POST",
            path,
            raw_object([("envId", "@@promote_env@@"), ("envId", "@@promote_env@@")]),
            target=target,
            needs=needs,
        )
    )
    out.append(
        Case(
            "actions: duplicate keys",
            "promote duplicate envId other value",
            "POST",
            path,
            raw_object([("envId", "@@env_c@@"), ("envId", "@@promote_env@@")]),
            target=target,
            needs=needs,
        )
    )
    out += framing_cases("actions: ", "promote", "POST", path, target, "envId", needs=needs)
    # breakGlass on deploy and promote: the corpus's token is an admin's, so what is refused is the value
    # (its reason 10-500 characters), never the role; a valid one would go through (the targets are ungated).
    gated = [
        ("deploy", "/api/releases/@@rel_deploy@@/deploy/", {}, "rel_deploy", ()),
        ("promote", "/api/releases/@@rel_active@@/promote/", {"envId": "@@promote_env@@"}, "promote_env", needs),
    ]
    for name, path, base, target, case_needs in gated:
        for label, value in BREAK_GLASS_BAD:
            out.append(
                Case(
                    "actions: break-glass",
                    f"{name} breakGlass={label}",
                    "POST",
                    path,
                    dumps({**base, "breakGlass": value}),
                    target=target,
                    needs=case_needs,
                )
            )
    # State conflicts: well-formed requests the current state does not allow.
    c = frozenset({409})
    conflicts = [
        (
            "deploy an Active release",
            "POST",
            "/api/releases/@@rel_active@@/deploy/",
            None,
            "rel_active_deploy",
            ("rel_active",),
        ),
        (
            "promote a Draft release",
            "POST",
            "/api/releases/@@rel_upd@@/promote/",
            {"envId": "@@env_b@@"},
            "rel_upd",
            (),
        ),
        (
            "promote to its own environment",
            "POST",
            "/api/releases/@@rel_active@@/promote/",
            {"envId": "@@rel_active_env@@"},
            "promote_env",
            ("rel_active",),
        ),
        (
            "acknowledge a resolved incident",
            "POST",
            "/api/incidents/@@inc_resolved@@/acknowledge/",
            None,
            "inc_resolved",
            (),
        ),
        ("resolve a resolved incident", "POST", "/api/incidents/@@inc_resolved@@/resolve/", None, "inc_resolved", ()),
        (
            "acknowledge an acknowledged incident",
            "POST",
            "/api/incidents/@@inc_acked@@/acknowledge/",
            None,
            "inc_acked",
            (),
        ),
        ("restore a service in use", "POST", "/api/services/@@svc_upd@@/restore/", None, "svc_upd", ()),
        ("restore an environment in use", "POST", "/api/environments/@@env_upd@@/restore/", None, "env_upd", ()),
        ("archive an archived service", "DELETE", "/api/services/@@svc_archived@@/", None, "svc_archived", ()),
        ("archive an archived environment", "DELETE", "/api/environments/@@env_arch@@/", None, "env_arch", ()),
    ]
    for name, method, path, body, target, needs in conflicts:
        out.append(
            Case(
                "state conflicts",
                name,
                method,
                path,
                dumps(body) if body is not None else None,
                expect=c,
                target=target,
                needs=needs,
            )
        )
    return out


ROLLBACK_REASON = "the corpus rolls this back, for no good reason"


def approval_and_rollback_cases():
    """Approvals (`…/approve/`, `…/reject/`, `…/cancel/` on a run awaiting approval that the corpus asked for) and
    rollback (`POST /api/services/{id}/rollback/`, on a service with nothing to roll back): each field broken, bodies
    that are not objects, and the state conflicts (a finished run; nothing to restore)."""
    out = []
    wait = ("run_wait",)
    comment = Field("comment", "a corpus comment", blank_ok=True, overlong="a" * 2001)
    for action in ("approve", "reject"):
        path = f"/api/workflow-runs/@@run_wait@@/{action}/"
        mutations = string_mutations(comment)
        if action == "reject":  # a reject must say why
            mutations += [("empty", "", None), ("whitespace", "  \t\n ", None)]
        for label, value, _ in mutations:
            out.append(
                Case(
                    "actions: approvals",
                    f"{action} comment={label}",
                    "POST",
                    path,
                    dumps({"comment": value}),
                    target="run_wait",
                    needs=wait,
                )
            )
        for label, key in unknown_keys({"case": "Comment", "snake": "comment_text"}):
            body = {"comment": "a corpus comment", key: "x"}
            out.append(
                Case(
                    "actions: unknown fields",
                    f"{action} {label}",
                    "POST",
                    path,
                    dumps(body),
                    target="run_wait",
                    needs=wait,
                )
            )
        out += framing_cases("actions: ", action, "POST", path, "run_wait", "comment", needs=wait, short=True)
    out.append(
        Case(
            "actions: approvals",
            "reject without comment",
            "POST",
            "/api/workflow-runs/@@run_wait@@/reject/",
            dumps({}),
            target="run_wait",
            needs=wait,
        )
    )
    cancel = "/api/workflow-runs/@@run_wait@@/cancel/"
    for label, body in [*BODYLESS_BODIES, ("comment", {"comment": "x"})]:
        out.append(
            Case(
                "actions: bodies on body-less actions",
                f"cancel with body {label}",
                "POST",
                cancel,
                dumps(body),
                target="run_wait",
                needs=wait,
            )
        )
    out += framing_cases(
        "actions: ", "cancel", "POST", cancel, "run_wait", "colour", bodyless=True, needs=wait, short=True
    )
    # Rollback: the corpus's service has no release anywhere, so a body that gets past its checks is a 409.
    path = "/api/services/@@svc@@/rollback/"
    base = {"envId": "@@env_a@@", "reason": ROLLBACK_REASON}
    fields = [
        Field(
            "envId",
            "@@env_a@@",
            overlong="env-" + "a" * 60,
            semantic=[
                ("env-dangling", "env-corpus-missing", None),
                ("env-wrong-type", "@@svc@@", None),
                ("env-ref-object", {"id": "@@env_a@@"}, None),
            ],
        ),
        Field(
            "reason",
            ROLLBACK_REASON,
            overlong="a" * 501,
            semantic=[
                ("reason-9-chars", "too short", None),
                ("reason-padded-9-chars", "   too short   ", None),
            ],
        ),
        Field("toReleaseId", "rel-corpus-missing", required=False),
    ]
    for f in fields:
        for label, value, expect in string_mutations(f) + f.semantic:
            out.append(
                Case(
                    "actions: rollback fields",
                    f"rollback {f.name}={label}",
                    "POST",
                    path,
                    dumps({**base, f.name: value}),
                    expect=frozenset(expect or {400}),
                    target="svc",
                )
            )
        if f.required:
            body = {k: v for k, v in base.items() if k != f.name}
            out.append(
                Case("actions: rollback fields", f"rollback without {f.name}", "POST", path, dumps(body), target="svc")
            )
    for label, value in BREAK_GLASS_BAD:
        out.append(
            Case(
                "actions: break-glass",
                f"rollback breakGlass={label}",
                "POST",
                path,
                dumps({**base, "breakGlass": value}),
                target="svc",
            )
        )
    for label, key in unknown_keys({"case": "EnvId", "snake": "to_release_id"}):
        out.append(
            Case("actions: unknown fields", f"rollback {label}", "POST", path, dumps({**base, key: "x"}), target="svc")
        )
    out += framing_cases("actions: ", "rollback", "POST", path, "svc", "reason")
    # State conflicts: a run that no longer waits; a service with nothing to roll back (or to that release).
    c = frozenset({409})
    done = ("run_done",)
    for action, body in (("approve", {}), ("reject", {"comment": "too late"}), ("cancel", None)):
        out.append(
            Case(
                "state conflicts",
                f"{action} a finished run",
                "POST",
                f"/api/workflow-runs/@@run_done@@/{action}/",
                dumps(body) if body is not None else None,
                expect=c,
                needs=done,
            )
        )
    out.append(
        Case("state conflicts", "rollback with nothing to restore", "POST", path, dumps(base), expect=c, target="svc")
    )
    out.append(
        Case(
            "state conflicts",
            "rollback to an unknown release",
            "POST",
            path,
            dumps({**base, "toReleaseId": "rel-corpus-missing"}),
            expect=c,
            target="svc",
        )
    )
    return out


LISTS = [
    "/api/services/",
    "/api/services/index/",
    "/api/environments/",
    "/api/releases/",
    "/api/workflow-runs/",
    "/api/incidents/",
    "/api/audit-events/",
    "/api/change-windows/",
    "/api/freezes/",
]
PAGE_SIZES = [
    ("negative", "-1"),
    ("zero", "0"),
    ("word", "abc"),
    ("fraction", "1.5"),
    ("empty", ""),
    ("over-max-501", "501"),
    ("exponent", "1e23"),
    ("fullwidth-digits", "\uff15\uff10"),
    ("arabic-indic-digit", "\u0663"),
    ("superscript-two", "\u00b2"),
    ("plus-sign", "+5"),
    ("leading-space", " 5"),
    ("hex", "0x10"),
    ("huge", "1" + "0" * 30),
    ("nul", "5\x00"),
]
CURSORS = [
    ("p=abc", b64("p=abc")),
    ("p=", b64("p=")),
    ("p=[]", b64("p=[]")),
    ("o=1&p=x", b64("o=1&p=x")),
    ("garbage", "!!!garbage!!!"),
    ("o=-1", b64("o=-1")),
    ("r=x", b64("r=x")),
    ("o=abc", b64("o=abc")),
    ("p=5000-nines", b64("p=" + "9" * 5000)),
    ("p=nul", b64("p=%00")),
    ("non-utf8", b64(b"\xff\xfe\xfd")),
    ("unpadded-base64", base64.b64encode(b"p=ab").decode().rstrip("=")),
]
ENUM_FILTERS = {
    "/api/services/": [("adapter", "heroku"), ("adapter", "K8S"), ("archived", "maybe"), ("archived", "True")],
    "/api/services/index/": [("adapter", "heroku"), ("archived", "maybe")],
    "/api/environments/": [("archived", "yes"), ("archived", "1")],
    "/api/releases/": [("status", "Shipped"), ("status", "active")],
    "/api/workflow-runs/": [
        ("kind", "rollback"),
        ("kind", "deploy"),
        ("state", "Pending"),
        ("state", "running"),
        ("state", "awaitingApproval"),
        ("state", "Canceled"),
    ],
    "/api/incidents/": [
        ("severity", "sev1"),
        ("severity", "HIGH"),
        ("status", "open"),
        ("status", "Resolved"),
        ("open", "maybe"),
        ("open", "2"),
    ],
    "/api/audit-events/": [],
    "/api/change-windows/": [],
    "/api/freezes/": [],
}
TEXT_FILTERS = {
    "/api/services/": ["name", "q", "envId"],
    "/api/services/index/": ["q"],
    "/api/environments/": ["name", "region"],
    "/api/releases/": ["serviceId", "sha"],
    "/api/workflow-runs/": ["releaseId", "actor"],
    "/api/incidents/": ["serviceId"],
    "/api/audit-events/": ["actor", "subjectId"],
    "/api/change-windows/": ["name"],
    "/api/freezes/": ["envId"],
}


# Every filter of every list, and a valid value for each (for a parameter given twice).
LIST_FILTERS = {
    "/api/services/": ["name", "q", "adapter", "envId", "archived"],
    "/api/services/index/": ["name", "q", "adapter", "envId", "archived"],
    "/api/environments/": ["name", "region", "cluster", "archived"],
    "/api/releases/": ["serviceId", "envId", "status", "sha", "version", "isCurrent"],
    "/api/workflow-runs/": ["releaseId", "serviceId", "envId", "kind", "state", "actor"],
    "/api/incidents/": ["serviceId", "severity", "status", "open"],
    "/api/audit-events/": ["actor", "action", "subjectType", "subjectId", "serviceId", "since", "until"],
    "/api/change-windows/": ["name"],
    "/api/freezes/": ["envId"],
}
VALID_VALUES = {"archived": "all", "adapter": "k8s", "kind": "Deploy", "state": "Running", "severity": "high"}
VALID_VALUES |= {"open": "true", "isCurrent": "true", "since": "2024-01-01T00:00:00Z", "until": "2030-01-01T00:00:00Z"}
VALID_VALUES |= {"status": "Active", "pageSize": "5", "tail": "true"}
# Parameters no list takes: misspellings and other APIs' paging.
UNKNOWN_PARAMS = [("colour", "red"), ("pagesize", "5"), ("page", "2"), ("limit", "5"), ("offset", "5")]
# Reads that take no parameter at all (a resource, the timeline, who you are, the streams' status).
TAKE_NONE = [
    "/api/services/@@svc@@/",
    "/api/releases/@@rel_upd@@/",
    "/api/releases/@@rel_upd@@/timeline/",
    "/api/incidents/@@inc_upd@@/",
    "/api/audit-events/1/",
    "/api/me/",
    "/api/streams/",
    "/api/change-windows/@@cw_upd@@/",
    "/api/freezes/@@frz_upd@@/",
]


def query_parameter_cases():
    """Each parameter a list takes, given once and not empty; none it does not take."""
    out = []
    for path, filters in LIST_FILTERS.items():
        for name in [*filters, "cursor", "tail"]:  # an empty pageSize is among PAGE_SIZES
            out.append(Case("lists: empty values", f"{path} {name}=", "GET", f"{path}?{name}="))
        for name in [*filters, "pageSize", "tail"]:
            value = q("triggered" if (path, name) == ("/api/incidents/", "status") else VALID_VALUES.get(name, "x"))
            out.append(
                Case(
                    "lists: repeated parameters", f"{path} {name} twice", "GET", f"{path}?{name}={value}&{name}={value}"
                )
            )
        out.append(
            Case("lists: repeated parameters", f"{path} tail true and false", "GET", f"{path}?tail=true&tail=false")
        )
        for name, value in UNKNOWN_PARAMS:
            out.append(Case("lists: unknown parameters", f"{path} {name}={value}", "GET", f"{path}?{name}={value}"))
    for path in TAKE_NONE:
        out.append(Case("reads: unknown parameters", f"{path} x=1", "GET", f"{path}?x=1"))
    out.append(Case("reads: unknown parameters", "timeline pageSize=null", "GET", f"{TAKE_NONE[2]}?pageSize=null"))
    out.append(Case("reads: unknown parameters", "streams' status pid=1", "GET", "/api/streams/?pid=1"))
    for path in ("/api/services/SVC-UPPER/", "/api/releases/rel_1/timeline/", "/api/incidents/inc-%C3%A9/"):
        out.append(Case("bad ids in the path", f"GET {path}", "GET", path, expect=frozenset({404})))
    return out


POLICY = "/api/environments/@@env_a@@/policy/"
POLICY_PARAMETERS_BAD = [
    *((f"at={label}", f"at={q(value)}") for label, value in BAD_TIMES),
    ("at=unencoded-plus", "at=2024-01-01T00:00:00+01:00"),  # the + arrives as a space
    ("at=empty", "at="),
    ("at twice", "at=2024-01-01T00%3A00%3A00Z&at=2024-01-01T00%3A00%3A00Z"),
    ("action=Deploy", "action=Deploy"),
    ("action=merge", "action=merge"),
    ("action=empty", "action="),
    ("action twice", "action=deploy&action=promote"),
    ("serviceId=dangling", "serviceId=svc-corpus-missing"),
    ("serviceId=wrong-type", "serviceId=@@env_a@@"),
    ("serviceId=upper-case", "serviceId=SVC-DEMO"),
    ("serviceId=nul", "serviceId=svc-a%00b"),
    ("serviceId=surrogate", "serviceId=%ED%A0%80"),
    ("serviceId=empty", "serviceId="),
    ("serviceId twice", "serviceId=@@svc@@&serviceId=@@svc@@"),
    *((f"unknown {name}={value}", f"{name}={value}") for name, value in UNKNOWN_PARAMS),
    ("unknown envId", "envId=@@env_a@@"),
]


def policy_cases():
    """`GET /api/environments/{id}/policy/`: each parameter broken in turn (400), and ids that are not (404)."""
    out = [
        Case("policy: parameters", f"policy {label}", "GET", f"{POLICY}?{query}")
        for label, query in POLICY_PARAMETERS_BAD
    ]
    for label, template in BAD_PATH_IDS:
        ident = template.format(p="env-", P="ENV-", other="svc-")
        out.append(
            Case(
                "policy: bad ids in the path",
                f"policy {label}",
                "GET",
                f"/api/environments/{ident}/policy/",
                expect=frozenset({404}),
            )
        )
    return out


def page_form_cases():
    """The pages' forms: a field given twice is refused (400), never read as its last value."""
    form = (("Content-Type", "application/x-www-form-urlencoded"),)
    incident = "serviceId=@@svc@@&severity=low&severity=critical&link=https%3A%2F%2Fpd.example.com%2F1"
    release = "serviceId=@@svc@@&envId=@@env_a@@&sha=abcdef1&sha=abcdef2&version=1"
    return [
        Case(
            "page forms: repeated fields", "/incidents/ severity twice", "GET", "/incidents/?severity=high&severity=low"
        ),
        Case("page forms: repeated fields", "/audit/ actor twice", "GET", "/audit/?actor=a&actor=b"),
        Case("page forms: repeated fields", "/ q twice", "GET", "/?q=a&q=b"),
        Case(
            "page forms: repeated fields",
            "/incidents/new/ severity twice",
            "POST",
            "/incidents/new/",
            incident.encode(),
            form,
        ),
        Case(
            "page forms: repeated fields", "/releases/new/ sha twice", "POST", "/releases/new/", release.encode(), form
        ),
    ]


def query_cases():
    out = query_parameter_cases() + page_form_cases() + policy_cases()
    for path in LISTS:
        for label, value in PAGE_SIZES:
            out.append(Case("lists: pageSize", f"{path} pageSize={label}", "GET", f"{path}?pageSize={q(value)}"))
        for label, value in CURSORS:
            out.append(Case("lists: forged cursors", f"{path} cursor {label}", "GET", f"{path}?cursor={value}"))
        for name, value in ENUM_FILTERS[path]:
            out.append(Case("lists: enum filters", f"{path} {name}={value}", "GET", f"{path}?{name}={q(value)}"))
        for name in TEXT_FILTERS[path]:
            out.append(Case("lists: text filters", f"{path} {name} with a NUL", "GET", f"{path}?{name}=a%00b"))
    for param in ("since", "until"):
        for label, value in BAD_TIMES:
            out.append(
                Case("lists: times", f"audit-events {param}={label}", "GET", f"/api/audit-events/?{param}={q(value)}")
            )
    return out


RESUME_QUERY = [
    ("superscript-two", "\u00b2"),
    ("word", "abc"),
    ("negative", "-1"),
    ("fraction", "1.5"),
    ("fullwidth-digits", "\uff11\uff12"),
    ("arabic-indic-digits", "\u0661\u0662"),
    ("5000-nines", "9" * 5000),
    ("nul", "1\x00"),
    ("beyond-the-head", "999999999999"),  # no id the stream sent: nothing after it would ever come
    ("empty", ""),
]
RESUME_HEADER = [
    ("beyond-the-head", b"999999999999"),
    ("superscript-two", "\u00b2".encode("latin-1")),
    ("arabic-indic-digits", "\u0661\u0662".encode()),
    ("fullwidth-digits", "\uff11\uff12".encode()),
    ("5000-nines", b"9" * 5000),
    ("word", b"abc"),
    ("negative", b"-5"),
]


def stream_cases():
    out = []
    streams = [
        ("audit stream", "/api/audit-events/stream", ()),
        ("run log stream", "/api/workflow-runs/@@run@@/logs/stream", ("run",)),
    ]
    for name, path, needs in streams:
        for label, value in RESUME_QUERY:
            out.append(
                Case(
                    "streams: resume points",
                    f"{name} after={label}",
                    "GET",
                    f"{path}?after={q(value)}",
                    stream=True,
                    needs=needs,
                )
            )
        for label, value in RESUME_HEADER:
            out.append(
                Case(
                    "streams: resume points",
                    f"{name} Last-Event-ID {label}",
                    "GET",
                    path,
                    headers=(("Last-Event-ID", value),),
                    stream=True,
                    needs=needs,
                )
            )
        for label, query in [
            ("after twice", "after=1&after=2"),
            ("unknown parameter", "since=2024-01-01T00%3A00%3A00Z"),
            ("misspelt parameter", "After=1"),
            ("empty filter", "actor="),
        ]:
            out.append(
                Case("streams: parameters", f"{name} {label}", "GET", f"{path}?{query}", stream=True, needs=needs)
            )
    out.append(
        Case(
            "streams: resume points",
            "run log stream of a missing run",
            "GET",
            "/api/workflow-runs/run-corpus-missing/logs/stream",
            expect=frozenset({404}),
            stream=True,
        )
    )
    return out


# ------------------------------------------------------------------------------------------- GraphQL

GRAPHQL = "/graphql/"
# What each resource's update input takes (the rest of its fields are read-only there: no input field).
GRAPHQL_UPDATABLE = {
    "services": {"name", "repo", "adapters", "environments"},
    "environments": {"name", "region", "cluster", "policyRefs"},
    "releases": {"version"},
    "incidents": {"title", "severity", "link"},
    "change-windows": {"name", "timezone", "days", "start", "end"},
    "freezes": {"title", "startsAt", "endsAt", "envIds", "reason"},
}
PAYLOAD = "{ errors { field code message } }"
# GraphQL's input coercion makes a single value given for a list a list of one (the spec's "Input Coercion"
# of lists): `deployments: "k8s"` is `["k8s"]`, a valid value, where REST refuses a string for a list.
GRAPHQL_LIST_COERCED = {"adapters-string"}
# The same by field: a window's `days: 1` is `[1]`; and an Int takes 1.0 as 1, where REST wants a whole JSON number.
GRAPHQL_COERCED = {("days", "number"), ("days", "days-whole-float-item")}


def graphql_resources():
    """The resources GraphQL writes (GRAPHQL_UPDATABLE names them)."""
    return [resource for resource in resources() if resource["name"] in GRAPHQL_UPDATABLE]


def noun(resource) -> str:
    name = resource["name"].replace("change-windows", "changeWindows")
    return name[:-1]  # services -> service, change-windows -> changeWindow


def graphql_body(document: str, variables) -> bytes:
    return dumps({"query": document, "variables": variables})


def graphql_write(resource, op: str) -> str:
    """The create or update mutation of a resource, its input (and id) as variables."""
    n = noun(resource)
    kind = f"{n[0].upper()}{n[1:]}{op.capitalize()}Input!"
    if op == "create":
        return f"mutation($input: {kind}) {{ {n}Create(input: $input) {PAYLOAD} }}"
    return f"mutation($id: ID!, $input: {kind}) {{ {n}Update(id: $id, input: $input) {PAYLOAD} }}"


def graphql_controls_bodies():
    """The valid inputs the GraphQL field cases break: (mutation field, body), each must be accepted."""
    out = []
    for resource in graphql_resources():
        fields, n = resource["fields"], noun(resource)
        create = {f.name: f.valid for f in fields if f.name != "id"}
        out.append((f"{n}Create", graphql_body(graphql_write(resource, "create"), {"input": create})))
        first = next(f for f in fields if f.name in GRAPHQL_UPDATABLE[resource["name"]])
        variables = {"id": f"@@{resource['update_target']}@@", "input": {first.name: first.valid}}
        out.append((f"{n}Update", graphql_body(graphql_write(resource, "update"), variables)))
    return out


def graphql_cases():
    """The corpus's bad values sent through /graphql/ where GraphQL has the same argument or input field: a
    clear refusal (a top-level error, a payload's `errors`, or null for an unknown id), never a 5xx or an
    INTERNAL error, and nothing written."""
    out = []

    def case(category, name, document, variables, target=None, needs=()):
        body = graphql_body(document, variables)
        out.append(
            Case(
                f"graphql: {category}",
                f"graphql {name}",
                "POST",
                GRAPHQL,
                body,
                target=target,
                needs=needs,
                graphql=True,
            )
        )

    # Field values: each field of each create input broken in turn, and of each update input (which shares the
    # create's input coercion: it gets the values of the right JSON type only).
    wrong_types = {label for label, _ in WRONG_TYPES}
    for resource in graphql_resources():
        fields, n, rname = resource["fields"], noun(resource), resource["name"]
        create = {f.name: f.valid for f in fields if f.name != "id"}
        for f in fields:
            values = (string_mutations(f) if f.string else []) + f.semantic
            for label, value, _ in values:
                if label in GRAPHQL_LIST_COERCED or (f.name, label) in GRAPHQL_COERCED:
                    continue
                variables = {"input": {**create, f.name: value}}
                case(
                    "field values",
                    f"{n}Create {f.name}={label}",
                    graphql_write(resource, "create"),
                    variables,
                )
                if f.name in GRAPHQL_UPDATABLE[rname] and label not in wrong_types:
                    variables = {"id": f"@@{resource['update_target']}@@", "input": {f.name: value}}
                    case(
                        "field values",
                        f"{n}Update {f.name}={label}",
                        graphql_write(resource, "update"),
                        variables,
                        target=resource["update_target"],
                    )
        for label, template in ID_BAD:
            variables = {"input": {**create, "id": template.format(p=resource["prefix"])}}
            case("ids", f"{n}Create {label}", graphql_write(resource, "create"), variables)
    # Ids a mutation acts on, and by-id queries: NOT_FOUND or null, with no query for what cannot be an id.
    acting = [
        ("service", "svc-", "env-", ["serviceArchive", "serviceRestore"]),
        ("environment", "env-", "svc-", ["environmentArchive", "environmentRestore"]),
        ("release", "rel-", "inc-", ["releaseDeploy"]),
        ("incident", "inc-", "rel-", ["incidentAcknowledge", "incidentResolve"]),
        ("changeWindow", "cw-", "frz-", []),
        ("freeze", "frz-", "cw-", []),
    ]
    bad_ids = [*BAD_PATH_IDS, ("nul-id", "{p}demo\x00"), ("surrogate-id", "{p}\ud800"), ("empty-id", "")]
    for n, p, other, mutations in acting:
        for label, template in bad_ids:
            ident = urllib.parse.unquote(template.format(p=p, P=p.upper(), other=other))
            for mutation in mutations:
                case(
                    "ids",
                    f"{mutation} {label}",
                    f"mutation($id: ID!) {{ {mutation}(id: $id) {PAYLOAD} }}",
                    {"id": ident},
                )
            case("ids", f"{n} {label}", f"query($id: ID!) {{ {n}(id: $id) {{ id }} }}", {"id": ident})
            case(
                "ids",
                f"{n}Update {label}",
                graphql_write({"name": f"{n}s"}, "update"),
                {"id": ident, "input": {}},
            )
    case(
        "ids",
        "workflowRun nul-id",
        "query($id: ID!) { workflowRun(id: $id) { id } }",
        {"id": "run-x\x00"},
    )
    case(
        "ids",
        "releasePromote nul-id",
        f'mutation($id: ID!) {{ releasePromote(id: $id, envId: "@@env_b@@") {PAYLOAD} }}',
        {"id": "rel-x\x00"},
    )
    # Approvals and rollback, as REST's bodies for them are broken.
    for mutation in ("workflowRunApprove", "workflowRunCancel"):
        for label, ident in (
            ("nul-id", "run-x\x00"),
            ("surrogate-id", "run-\ud800"),
            ("unknown-id", "run-corpus-missing"),
        ):
            case(
                "approvals",
                f"{mutation} {label}",
                f"mutation($id: ID!) {{ {mutation}(id: $id) {PAYLOAD} }}",
                {"id": ident},
            )
    reject = f'mutation($c: String!) {{ workflowRunReject(id: "@@run_wait@@", comment: $c) {PAYLOAD} }}'
    for label, value in (("empty", ""), ("whitespace", "   "), ("overlong", "a" * 2001), ("nul", "a\x00b")):
        case(
            "approvals",
            f"workflowRunReject comment={label}",
            reject,
            {"c": value},
            target="run_wait",
            needs=("run_wait",),
        )
    approve = f'mutation($c: String) {{ workflowRunApprove(id: "@@run_wait@@", comment: $c) {PAYLOAD} }}'
    case(
        "approvals",
        "workflowRunApprove comment=overlong",
        approve,
        {"c": "a" * 2001},
        target="run_wait",
        needs=("run_wait",),
    )
    rollback = f"mutation($input: ServiceRollbackInput!) {{ serviceRollback(input: $input) {PAYLOAD} }}"
    base = {"serviceId": "@@svc@@", "envId": "@@env_a@@", "reason": ROLLBACK_REASON}
    for label, change in (
        ("reason-9-chars", {"reason": "too short"}),
        ("reason-overlong", {"reason": "a" * 501}),
        ("reason-nul", {"reason": "a reason \x00 long enough"}),
        ("env-dangling", {"envId": "env-corpus-missing"}),
        ("env-empty", {"envId": ""}),
        ("service-nul", {"serviceId": "svc-\x00"}),
        ("to-release-nul", {"toReleaseId": "rel-\x00"}),
        ("break-glass-short", {"breakGlass": {"reason": "short"}}),
        ("nothing-to-restore", {}),
    ):
        case("rollback", f"serviceRollback {label}", rollback, {"input": {**base, **change}}, target="svc")
    # Promote's envId, broken as REST's promote body is.
    env = promote_env_field()
    env.semantic = [case for case in env.semantic if case[0] != "env-list"]  # as for `deployments`, see above
    promote = f'mutation($envId: ID!) {{ releasePromote(id: "@@rel_active@@", envId: $envId) {PAYLOAD} }}'
    for label, value, _ in string_mutations(env) + env.semantic:
        case(
            "promote",
            f"releasePromote envId={label}",
            promote,
            {"envId": value},
            target="promote_env",
            needs=("rel_active",),
        )
    # Lists: a NUL in each text filter, bad enum filters, page sizes and cursors.
    lists = {
        "services": ["name", "q", "envId"],
        "servicesIndex": ["q", "envId"],
        "environments": ["name", "region"],
        "releases": ["serviceId", "envId", "sha"],
        "workflowRuns": ["releaseId", "actor"],
        "incidents": ["serviceId"],
        "auditEvents": ["actor", "subjectId", "serviceId"],
        "changeWindows": ["name"],
        "freezes": ["envId"],
    }
    node = {"auditEvents": "seq"}
    for root, filters in lists.items():
        shape = f"{{ edges {{ node {{ {node.get(root, 'id')} }} }} }}"
        for name in filters:
            case(
                "lists",
                f"{root} {name} with a NUL",
                f"query($v: String) {{ {root}({name}: $v) {shape} }}".replace(
                    "String", "ID" if "Id" in name else "String"
                ),
                {"v": "a\x00b"},
            )
        for label, value in PAGE_SIZES:
            first = int(value) if value.isascii() and value.lstrip("-").isdigit() else value  # else a string
            case("lists", f"{root} first={label}", f"query($n: Int) {{ {root}(first: $n) {shape} }}", {"n": first})
        for label, value in CURSORS:
            case(
                "lists",
                f"{root} after {label}",
                f"query($a: String) {{ {root}(after: $a) {shape} }}",
                {"a": urllib.parse.unquote(value)},
            )
    enums = [
        ("incidents", "severity: sev1"),
        ("incidents", "status: open"),
        ("releases", "status: active"),
        ("workflowRuns", "kind: deploy"),
        ("services", 'archived: "maybe"'),
        ("environments", 'archived: "yes"'),
        ("services", 'adapter: "heroku"'),
    ]
    for root, argument in enums:
        case("lists", f"{root} {argument}", f"{{ {root}({argument}) {{ edges {{ node {{ id }} }} }} }}", {})
    # Variables sent as JSON text (a string in a body, or a GET's query string), read as strictly as a body.
    create = f"mutation($input: IncidentCreateInput!) {{ incidentCreate(input: $input) {PAYLOAD} }}"
    valid = {"serviceId": "@@svc@@", "severity": "high", "link": "https://pd.example.com/i/1"}
    for label, text in [
        ("duplicate-key", raw_object([("input", valid), ("input", {**valid, "severity": "low"})]).decode()),
        ("duplicate-key-inside", '{"input": ' + raw_object([*valid.items(), ("severity", "low")]).decode() + "}"),
        ("lone-surrogate", dumps({"input": {**valid, "title": "\ud800"}}).decode()),
        ("surrogate-enum", dumps({"input": {**valid, "severity": "\ud800"}}).decode()),
        ("surrogate-id", dumps({"input": {**valid, "serviceId": "\ud800"}}).decode()),
        ("nested-300", '{"input": ' + nested(300) + "}"),
        ("nested-10000", '{"input": ' + nested(10_000, kind="object") + "}"),
        ("huge-float", '{"input": 1e999}'),
        ("not-json", "{input"),
        ("not-an-object", "[1]"),
    ]:
        body = dumps({"query": create, "variables": text})
        out.append(Case("graphql: variables", f"graphql variables text {label}", "POST", GRAPHQL, body, graphql=True))
    # The services index (whose answers are cached under a key made of the variables) by GET.
    index = "query($q: String, $n: Int) { servicesIndex(q: $q, first: $n) { edges { node { id } } } }"
    for label, text in [
        ("duplicate-key", '{"q": "corpus-no-such-service", "q": "corpus"}'),
        ("lone-surrogate", '{"q": "\\ud800"}'),
        ("nested-300", '{"q": ' + nested(300) + "}"),
        ("beyond-64-bits", '{"n": ' + "9" * 30 + "}"),
        ("huge-float", '{"n": 1e999}'),
        ("not-json", "{q"),
        ("not-an-object", "[1]"),
    ]:
        path = f"{GRAPHQL}?query={q(index)}&variables={q(text)}"
        out.append(Case("graphql: variables", f"graphql GET variables {label}", "GET", path, graphql=True))
    body = dumps({"query": index, "variables": {"n": 10**30}})
    out.append(Case("graphql: variables", "graphql variables beyond-64-bits", "POST", GRAPHQL, body, graphql=True))
    # Documents beyond the limits: a connection inside fragments, aliased introspection.
    inline = "auditEvents { ... on AuditEventConnection { edges { node { seq action ts actor } } } }"
    named = "auditEvents { ...Page }"
    documents = [
        ("fragment-connection-flood", "{ " + " ".join(f"a{i}: {inline}" for i in range(300)) + " }"),
        (
            "named-fragment-connection-flood",
            "{ "
            + " ".join(f"a{i}: {named}" for i in range(300))
            + " } fragment Page on AuditEventConnection { edges { node { seq action ts actor } } }",
        ),
        (
            "aliased-introspection",
            "{ " + " ".join(f"s{i}: __schema {{ types {{ name fields {{ name }} }} }}" for i in range(270)) + " }",
        ),
        (
            "aliased-type-introspection",
            "{ "
            + " ".join(f't{i}: __type(name: "Query") {{ fields {{ name args {{ name }} }} }}' for i in range(1000))
            + " }",
        ),
    ]
    for label, document in documents:
        out.append(
            Case(
                "graphql: limits",
                f"graphql {label}",
                "POST",
                GRAPHQL,
                dumps({"query": document}),
                graphql=True,
            )
        )
    # Bodies: the framing a REST body gets, as the request itself.
    for c in framing_cases("graphql: ", "graphql", "POST", GRAPHQL, None, "query"):
        out.append(Case(**{**c.__dict__, "graphql": True}))
    return out


def token_and_key_cases():
    """API tokens' fields (`POST /api/tokens/`), and malformed Idempotency-Key headers on a write that would
    otherwise succeed (issue 25)."""
    out = []
    in_a_month = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    valid = {"name": "corpus-ci", "role": "viewer", "expiresAt": in_a_month}
    bad_fields = [
        ("name", "missing", None),
        ("name", "blank", " "),
        ("name", "overlong", "a" * 101),
        ("name", "number", 1),
        ("name", "a token in it", "ci cpat_abcdefghijklmnopqrstuvwxyz"),
        ("role", "missing", None),
        ("role", "unknown", "owner"),
        ("role", "capitalised", "Viewer"),
        ("role", "list", ["viewer"]),
        ("envIds", "string", "env-staging"),
        ("envIds", "empty", []),
        ("envIds", "numbers", [1]),
        ("envIds", "dangling", ["env-corpus-missing"]),
        ("envIds", "twice", ["env-staging", "env-staging"]),
        ("expiresAt", "missing", None),
        ("expiresAt", "in the past", "2024-01-01T00:00:00Z"),
        ("expiresAt", "beyond a year", "2099-01-01T00:00:00Z"),
        *(("expiresAt", f"time-{label}", value) for label, value in BAD_TIMES),
        ("token", "a secret of its own", "cpat_mine"),
        ("owner", "someone else", "corpus-other"),
    ]
    for name, label, value in bad_fields:
        body = {**valid, "expiresAt": in_a_month}
        if value is None:
            body.pop(name)
        else:
            body[name] = value
        out.append(Case("tokens: fields", f"{name} {label}", "POST", "/api/tokens/", dumps(body)))
    out.append(
        Case(
            "tokens: ids",
            "revoke a missing token",
            "DELETE",
            "/api/tokens/tok-corpus-missing/",
            expect=frozenset({404}),
        )
    )
    incident = dumps({"serviceId": "@@svc@@", "severity": "low", "link": "https://pd.example.com/i/key"})
    for label, key in [
        ("empty", b""),
        ("empty quoted", b'""'),
        ("unclosed quote", b'"abc'),
        ("overlong", b"k" * 256),
        ("overlong quoted", b'"' + b"k" * 256 + b'"'),
        ("space inside", b"two words"),
        ("non-ASCII", "clé".encode()),
        ("bad escape", b'"\\x"'),
    ]:
        out.append(
            Case(
                "idempotency keys",
                f"Idempotency-Key {label}",
                "POST",
                "/api/incidents/",
                incident,
                headers=(("Idempotency-Key", key),),
                needs=("svc",),
            )
        )
    return out


def build_corpus() -> list[Case]:
    cases = []
    for resource in resources():
        cases += body_cases(resource)
    cases += action_cases() + approval_and_rollback_cases()
    cases += path_id_cases() + method_cases() + query_cases() + stream_cases()
    cases += graphql_cases() + token_and_key_cases()
    return cases


# --------------------------------------------------------------------------------------------- client


class SetupError(Exception):
    pass


@dataclass
class Answer:
    status: int | None  # None: no answer (connection error, or a stream that opened without refusing)
    body: bytes = b""
    error: str = ""


class Client:
    def __init__(self, url: str, token: str, timeout: float = 30.0):
        parts = urllib.parse.urlsplit(url)
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.base = parts.path.rstrip("/")
        self.token, self.timeout = token, timeout

    def connection(self, timeout=None):
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout or self.timeout)

    def send(self, method, path, body=None, headers=(), stream=False, stream_timeout=10.0) -> Answer:
        conn = self.connection(stream_timeout if stream else None)
        try:
            conn.putrequest(method, self.base + path, skip_accept_encoding=True)
            conn.putheader("Authorization", f"Bearer {self.token}")
            conn.putheader("Accept", JSON_TYPE)
            names = {name.lower() for name, _ in headers}
            if body is not None and "content-type" not in names:
                conn.putheader("Content-Type", JSON_TYPE)
            for name, value in headers:
                if value is not None:
                    conn.putheader(name, value)
            if body is not None or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body or b"")))
            conn.endheaders()
            if body:
                # The server may answer before reading it all (a 413): read that answer.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    conn.send(body)
            try:
                response = conn.getresponse()
            except TimeoutError:
                if stream:
                    return Answer(None, error=f"no status line within {stream_timeout:.0f} s: the stream was accepted")
                raise
            if stream:
                return Answer(response.status, response.read(2000) if response.status != 200 else b"")
            return Answer(response.status, response.read())
        except (OSError, http.client.HTTPException) as e:
            return Answer(None, error=f"{type(e).__name__}: {e}")
        finally:
            conn.close()

    def json(self, method, path, body=None, expect=(200, 201, 202, 204)):
        answer = self.send(method, path, dumps(body) if body is not None else None)
        if answer.status not in expect:
            raise SetupError(f"{method} {path} -> {answer.status or answer.error}: {answer.body[:300]!r}")
        return json.loads(answer.body) if answer.body else None


# ------------------------------------------------------------------------------------------ the run


class Fixtures:
    """The objects cases act on, created with valid requests, and made again when a bad request that
    should have been refused changed one."""

    def __init__(self, client: Client, tag: str):
        self.client, self.tag = client, tag
        self.values: dict[str, str] = {}
        self.consumed: set[str] = set()
        self.counter = 0
        self.missing: dict[str, str] = {}

    def uniq(self) -> str:
        self.counter += 1
        return f"corpus-{self.tag}-{self.counter}"

    def env(self, archived=False) -> str:
        env = self.client.json("POST", "/api/environments/", {"name": self.uniq()})["id"]
        if archived:
            self.client.json("DELETE", f"/api/environments/{env}/")
        return env

    def service(self, environments, archived=False) -> str:
        body = {
            "name": f"Corpus {self.uniq()}",
            "repo": f"github.com/corpus/{self.uniq()}",
            "adapters": {"deployments": ["k8s"]},
            "environments": environments,
        }
        svc = self.client.json("POST", "/api/services/", body)["id"]
        if archived:
            self.client.json("DELETE", f"/api/services/{svc}/")
        return svc

    def release(self, service, env) -> str:
        body = {"serviceId": service, "envId": env, "sha": "4f2a9c1", "version": "1.0.0"}
        return self.client.json("POST", "/api/releases/", body)["id"]

    def incident(self, move=None) -> str:
        # The incidents resource's valid body, so that a PUT of it changes nothing (startedAt is immutable).
        body = {
            "serviceId": self.values["svc"],
            "title": "Corpus incident",
            "severity": "high",
            "link": "https://pd.example.com/i/1",
            "startedAt": "2024-01-01T00:00:00Z",
        }
        inc = self.client.json("POST", "/api/incidents/", body)["id"]
        if move:
            self.client.json("POST", f"/api/incidents/{inc}/{move}/")
        return inc

    def make(self, key: str) -> str:
        v = self.values
        if key in ("env_a", "env_b", "env_c", "env_upd", "env_del"):
            return self.env()
        if key in ("env_arch", "env_restore"):
            return self.env(archived=True)
        if key == "svc":
            return self.service([v["env_a"], v["env_b"]])
        if key in ("svc_upd", "svc_del"):
            return self.service([v["env_a"]])
        if key in ("svc_archived", "svc_restore"):
            return self.service([v["env_a"]], archived=True)
        if key == "rel_upd":
            return self.release(v["svc"], v["env_a"])
        if key == "rel_deploy":
            # Its own service, so a wrongly started rollout never blocks the next deploy case.
            return self.release(self.service([v["env_a"]]), v["env_a"])
        if key in ("inc_upd", "inc_ack", "inc_res"):
            return self.incident()
        if key == "inc_resolved":
            return self.incident("resolve")
        if key == "inc_acked":
            return self.incident("acknowledge")
        if key == "promote_env":
            return self.promote_env()
        if key == "rel_active_deploy":
            return v.get("rel_active", "")
        if key == "run_wait":
            # A release deployed into an environment that needs an approval: its run waits (nothing rolls out).
            env = self.client.json(
                "POST", "/api/environments/", {"name": self.uniq(), "policyRefs": ["policy:approval:1"]}
            )
            service = self.service([env["id"]])
            run = self.client.json("POST", f"/api/releases/{self.release(service, env['id'])}/deploy/")
            return run["id"]
        if key == "cw_upd":
            body = {"name": self.uniq(), "timezone": "Europe/Berlin", "days": [1, 2, 3, 4, 5], "start": "09:00"}
            return self.client.json("POST", "/api/change-windows/", {**body, "end": "17:00"})["id"]
        if key == "frz_upd":
            # The freezes resource's valid body (a past freeze of env_c), so that a PUT of it changes nothing.
            body = {"title": "Corpus freeze", "startsAt": "2024-01-01T00:00:00Z", "endsAt": "2024-01-02T00:00:00Z"}
            return self.client.json("POST", "/api/freezes/", {**body, "envIds": [v["env_c"]], "reason": "Corpus"})["id"]
        raise KeyError(key)

    def promote_env(self) -> str:
        """An environment the Active release may be promoted to: linked to its service, none promoting, and gated
        by no policy (a window, promotion order), so that the control promotes at any hour."""
        service = self.client.json("GET", f"/api/services/{self.values['rel_active_svc']}/")
        linked = [e["id"] for e in service["environments"]]
        for env in linked:
            if env == self.values["rel_active_env"] or env in self.used_promote_envs:
                continue
            promoting = self.client.json(
                "GET", f"/api/releases/?serviceId={service['id']}&envId={env}&status=Promoting&pageSize=1"
            )
            environment = self.client.json("GET", f"/api/environments/{env}/")
            if not promoting["results"] and not environment["archivedAt"] and not environment["policyRefs"]:
                self.used_promote_envs.add(env)
                return env
        env = self.env()
        self.client.json("PATCH", f"/api/services/{service['id']}/", {"environments": [*linked, env]})
        self.used_promote_envs.add(env)
        return env

    def setup(self):
        self.used_promote_envs: set[str] = set()
        for key in ("env_a", "env_b", "env_c", "env_arch", "svc", "svc_archived"):
            self.values[key] = self.make(key)
        for key in (
            "env_upd",
            "env_del",
            "env_restore",
            "svc_upd",
            "svc_del",
            "svc_restore",
            "rel_upd",
            "rel_deploy",
            "inc_upd",
            "inc_ack",
            "inc_res",
            "inc_resolved",
            "inc_acked",
            "cw_upd",
            "frz_upd",
        ):
            self.values[key] = self.make(key)
        runs = self.client.json("GET", "/api/workflow-runs/?pageSize=1")["results"]
        if runs:
            self.values["run"] = runs[0]["id"]
        else:
            self.missing["run"] = "the server has no workflow run"
        done = self.client.json("GET", "/api/workflow-runs/?state=Succeeded&pageSize=1")["results"]
        if done:
            self.values["run_done"] = done[0]["id"]
        else:
            self.missing["run_done"] = "the server has no finished workflow run"
        self.values["run_wait"] = self.make("run_wait")
        active = self.find_active_release()
        if active:
            self.values.update(
                rel_active=active["id"],
                rel_active_env=active["envId"],
                rel_active_svc=active["serviceId"],
                rel_active_deploy=active["id"],
            )
            self.values["promote_env"] = self.make("promote_env")
        else:
            self.missing["rel_active"] = "the server has no Active release of a service in use to promote"

    def find_active_release(self):
        page = self.client.json("GET", "/api/releases/?status=Active&pageSize=100")
        for release in page["results"]:
            service = self.client.json("GET", f"/api/services/{release['serviceId']}/")
            if service["archivedAt"] is None:
                return release
        return None

    def replace(self, key: str):
        if key == "rel_active_deploy":  # a found Active release cannot be made again; refind one
            active = self.find_active_release()
            if active is None:
                self.missing["rel_active"] = "the Active release was consumed by a wrongly accepted request"
                return
            self.values.update(
                rel_active=active["id"],
                rel_active_env=active["envId"],
                rel_active_svc=active["serviceId"],
                rel_active_deploy=active["id"],
            )
        else:
            self.values[key] = self.make(key)
        self.consumed.discard(key)

    def fill(self, data: bytes | str) -> bytes | str:
        text = data if isinstance(data, str) else data.decode("latin-1")
        if "@@" not in text:
            return data
        for key, value in self.values.items():
            text = text.replace(f"@@{key}@@", value)
        while "@@uniq@@" in text:
            text = text.replace("@@uniq@@", self.uniq(), 1)
        return text if isinstance(data, str) else text.encode("latin-1")


class AuditHead:
    """The audit trail's last sequence number. Sequence numbers are gapless, so it is also the count;
    found by retrieving events by number (galloping, then bisecting): a handful of requests."""

    def __init__(self, client: Client):
        self.client = client
        self.seq = 0

    def exists(self, seq: int) -> bool:
        answer = self.client.send("GET", f"/api/audit-events/{seq}/")
        if answer.status == 200:
            return True
        if answer.status == 404:
            return False
        raise SetupError(f"GET /api/audit-events/{seq}/ -> {answer.status or answer.error}")

    def find(self, at_least: int = 0) -> int:
        low = at_least  # exists (or 0)
        if not self.exists(low + 1):
            self.seq = low
            return low
        step, high = 1, low + 1
        while self.exists(high):
            low, step = high, step * 2
            high = low + step
        while high - low > 1:  # low exists, high does not
            mid = (low + high) // 2
            low, high = (mid, high) if self.exists(mid) else (low, mid)
        self.seq = low
        return low

    def grew(self) -> int:
        before = self.seq
        return self.find(before) - before


def promote_env_field() -> Field:
    """Promote's `envId`, as REST's body and GraphQL's argument take it, and its bad values."""
    return Field(
        "envId",
        "@@promote_env@@",
        overlong="env-" + "a" * 60,
        semantic=[
            ("env-dangling", "env-corpus-missing", None),
            ("env-unlinked", "@@env_c@@", None),
            ("env-wrong-type", "@@svc@@", None),
            ("env-upper-case", "ENV-PROD", None),
            ("env-ref-object", {"id": "@@promote_env@@"}, None),
            ("env-list", ["@@promote_env@@"], None),
        ],
    )


def run_verify(cmd: str | None):
    if not cmd:
        return None
    try:
        done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return {"rc": None, "output": "timed out"}
    return {"rc": done.returncode, "output": (done.stdout + done.stderr).strip()[-500:]}


def run_controls(client: Client, fixtures: Fixtures) -> list[dict]:
    """The valid bodies the cases mutate must themselves be accepted, or a refusal proves nothing."""
    out = []
    for resource in resources():
        fields = resource["fields"]
        detail = f"{resource['collection']}@@{resource['update_target']}@@/"
        first = next(f for f in fields if f.name != "id")
        bodies = [
            ("POST", resource["collection"], {f.name: f.valid for f in fields if f.name != "id"}),
            ("PUT", detail, {f.name: f.valid for f in fields if not f.create_only}),
            ("PATCH", detail, {first.name: first.valid}),
        ]
        for method, path, body in bodies:
            path = fixtures.fill(path)
            answer = client.send(method, path, fixtures.fill(dumps(body)))
            ok = answer.status is not None and 200 <= answer.status < 300
            out.append(
                {
                    "method": method,
                    "path": path,
                    "status": answer.status,
                    "ok": ok,
                    **({} if ok else {"body": answer.body[:200].decode("utf-8", "replace")}),
                }
            )
    return out


ACTION_CONTROLS = [
    ("POST", "/api/releases/@@rel_deploy@@/deploy/", None, "rel_deploy"),
    ("POST", "/api/releases/@@rel_active@@/promote/", {"envId": "@@promote_env@@"}, "promote_env"),
    ("POST", "/api/incidents/@@inc_ack@@/acknowledge/", None, "inc_ack"),
    ("POST", "/api/incidents/@@inc_res@@/resolve/", None, "inc_res"),
    ("POST", "/api/workflow-runs/@@run_wait@@/cancel/", None, "run_wait"),
    ("POST", "/api/services/@@svc_restore@@/restore/", None, "svc_restore"),
    ("POST", "/api/environments/@@env_restore@@/restore/", None, "env_restore"),
    ("DELETE", "/api/services/@@svc_del@@/", None, "svc_del"),
    ("DELETE", "/api/environments/@@env_del@@/", None, "env_del"),
]


def run_action_controls(client: Client, fixtures: Fixtures) -> list[dict]:
    """After the corpus (and after the audit figures are taken): the objects the actions' bad requests
    were aimed at take the same action when it is asked properly, so their refusals were the body's
    doing, not the object's state. This deploys and promotes for real."""
    out = []
    for method, path, body, target in ACTION_CONTROLS:
        if target == "promote_env" and "rel_active" in fixtures.missing:
            continue
        if target in fixtures.consumed:
            fixtures.replace(target)
        path = fixtures.fill(path)
        answer = client.send(method, path, fixtures.fill(dumps(body)) if body is not None else None)
        ok = answer.status is not None and 200 <= answer.status < 300
        out.append(
            {
                "method": method,
                "path": path,
                "status": answer.status,
                "ok": ok,
                **({} if ok else {"body": answer.body[:200].decode("utf-8", "replace")}),
            }
        )
    return out


def classify(case: Case, answer: Answer) -> str:
    if case.graphql and answer.status is not None and answer.status < 500:
        return classify_graphql(answer)
    if answer.status is None:
        return "bad_2xx" if case.stream and "accepted" in answer.error else "no_answer"
    if answer.status >= 500:
        return "5xx"
    if 200 <= answer.status < 300:
        return "bad_2xx"
    if answer.status in case.expect:
        return "ok"
    return "unexpected"


def classify_graphql(answer: Answer) -> str:
    """A GraphQL answer refuses clearly with a top-level error, a payload's `errors`, or null for an unknown
    id; an INTERNAL error is a 5xx by another name; an answer with data for bad input accepted it."""
    try:
        body = json.loads(answer.body)
    except ValueError:
        return "ok" if 400 <= answer.status < 500 else "unexpected"
    if not isinstance(body, dict):
        return "unexpected"
    errors = body.get("errors") or []
    if any((e.get("extensions") or {}).get("code") == "INTERNAL" for e in errors):
        return "5xx"
    if errors:
        return "ok"
    data = body.get("data")
    for value in (data or {}).values():  # every root field, aliases included
        if value is not None and not (isinstance(value, dict) and value.get("errors")):
            return "bad_2xx"
    return "ok" if data else "unexpected"


def run_graphql_controls(client: Client, fixtures: Fixtures) -> list[dict]:
    """The valid inputs the GraphQL field cases break must themselves be accepted."""
    out = []
    for root, body in graphql_controls_bodies():
        answer = client.send("POST", GRAPHQL, fixtures.fill(body))
        try:
            payload = json.loads(answer.body)["data"][root]
            ok = answer.status == 200 and payload["errors"] == []
        except (ValueError, KeyError, TypeError):
            ok = False
        out.append(
            {
                "method": "POST",
                "path": f"{GRAPHQL} {root}",
                "status": answer.status,
                "ok": ok,
                **({} if ok else {"body": answer.body[:200].decode("utf-8", "replace")}),
            }
        )
    return out


def run(args) -> dict:
    client = Client(args.url, args.token)
    corpus = build_corpus()
    distinct = len({c.key() for c in corpus})
    names = Counter(c.name for c in corpus)
    duplicated_names = [n for n, k in names.items() if k > 1]
    tag = args.tag or secrets.token_hex(3)
    fixtures = Fixtures(client, tag)
    started = time.monotonic()
    fixtures.setup()
    controls = run_controls(client, fixtures) + run_graphql_controls(client, fixtures)
    head = AuditHead(client)
    audit_before = head.find()
    verify_before = run_verify(args.verify_cmd)

    results, setup_events, refused_but_audited = [], 0, []
    skipped = []
    plain = [c for c in corpus if not c.stream]
    streams = [c for c in corpus if c.stream]

    def prepare(case):
        missing = [n for n in case.needs if n in fixtures.missing]
        if missing:
            skipped.append({"name": case.name, "why": fixtures.missing[missing[0]]})
            return None
        return fixtures.fill(case.path), (fixtures.fill(case.body) if case.body is not None else None)

    # The audit head is read after every write that was not refused as expected, and after every 25
    # that were: events that appear in a window of refused requests are reported with the window.
    unprobed: list[str] = []

    def probe(case=None, verdict=None) -> int:
        written = head.grew()
        if written and verdict != "bad_2xx":
            refused_but_audited.append({"events": written, "cases": list(unprobed)})
        unprobed.clear()
        return written

    for case in plain:
        if case.target and case.target in fixtures.consumed:
            probe()
            fixtures.replace(case.target)
            setup_events += head.grew()
        prepared = prepare(case)
        if prepared is None:
            continue
        path, body = prepared
        answer = client.send(case.method, path, body, case.headers)
        verdict = classify(case, answer)
        written = 0
        if case.method != "GET":
            unprobed.append(case.name)
            if verdict != "ok" or len(unprobed) >= 25:
                written = probe(case, verdict)
        if verdict == "bad_2xx" and case.target:
            fixtures.consumed.add(case.target)
        results.append((case, path, answer, verdict, written))
    probe()

    # Streams are read-only: open them all at once, read each status line, hang up.
    stream_answers: dict[int, tuple[str, Answer]] = {}

    def open_stream(i, case, path):
        stream_answers[i] = (path, client.send("GET", path, None, case.headers, stream=True))

    threads = []
    for i, case in enumerate(streams):
        prepared = prepare(case)
        if prepared is None:
            continue
        t = threading.Thread(target=open_stream, args=(i, case, prepared[0]))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    for i, case in enumerate(streams):
        if i in stream_answers:
            path, answer = stream_answers[i]
            results.append((case, path, answer, classify(case, answer), 0))

    audit_after = head.find(head.seq)
    verify_after = run_verify(args.verify_cmd)
    action_controls = run_action_controls(client, fixtures) if args.action_controls else []
    elapsed = time.monotonic() - started

    counts = Counter(verdict for _, _, _, verdict, _ in results)
    audit_written = audit_after - audit_before - setup_events
    by_category: dict[str, Counter] = {}
    for case, _, _, verdict, _ in results:
        by_category.setdefault(case.category, Counter())[verdict] += 1
    failures = [
        {
            "verdict": verdict,
            "category": case.category,
            "name": case.name,
            "method": case.method,
            "path": path if len(path) <= 160 else path[:150] + f"…({len(path)} chars)",
            "status": answer.status,
            "expected": sorted(case.expect),
            "auditEventsWritten": written,
            "body": (answer.body[:200].decode("utf-8", "replace") if answer.body else answer.error[:200]),
        }
        for case, path, answer, verdict, written in results
        if verdict != "ok"
    ]
    verify_ok = verify_after is None or (verify_after["rc"] == 0 and (verify_before or {}).get("rc") == 0)
    verify_unchanged = verify_after is None or (
        verify_ok and (setup_events > 0 or verify_before["output"] == verify_after["output"])
    )
    report = {
        "url": args.url,
        "tag": tag,
        "seconds": round(elapsed, 1),
        "cases": len(corpus),
        "distinct": distinct,
        "duplicatedNames": duplicated_names,
        "run": len(results),
        "skipped": skipped,
        "counts": {
            "ok": counts["ok"],
            "5xx": counts["5xx"],
            "bad_2xx": counts["bad_2xx"],
            "unexpected": counts["unexpected"],
            "no_answer": counts["no_answer"],
        },
        "categories": {
            cat: {"cases": sum(c.values()), **{k: c[k] for k in ("ok", "5xx", "bad_2xx", "unexpected", "no_answer")}}
            for cat, c in sorted(by_category.items())
        },
        "audit": {
            "before": audit_before,
            "after": audit_after,
            "setupEventsDuringRun": setup_events,
            "writtenByBadInput": audit_written,
            "refusedButAudited": refused_but_audited,
        },
        "controls": controls,
        "actionControls": action_controls,
        "verify": {"before": verify_before, "after": verify_after, "ok": verify_ok, "unchanged": verify_unchanged},
        "failures": failures,
    }
    report["passed"] = (
        counts["5xx"] == 0
        and counts["bad_2xx"] == 0
        and counts["no_answer"] == 0
        and audit_written == 0
        and not refused_but_audited
        and verify_ok
        and verify_unchanged
        and all(c["ok"] for c in controls + action_controls)
        and distinct == len(corpus)
    )
    return report


def print_report(report, out=sys.stdout):
    c, a = report["counts"], report["audit"]
    w = out.write
    w(
        f"Bad-input corpus against {report['url']} (tag {report['tag']}): {report['cases']} cases, "
        f"{report['distinct']} distinct, {report['run']} run, {len(report['skipped'])} skipped, "
        f"{report['seconds']} s\n"
    )
    w(f"  answered as expected:       {c['ok']}\n")
    w(f"  5xx:                        {c['5xx']}\n")
    w(f"  2xx for bad input:          {c['bad_2xx']}\n")
    w(f"  other unexpected statuses:  {c['unexpected']}\n")
    w(f"  no answer:                  {c['no_answer']}\n")
    w(
        f"  audit events: {a['before']} before, {a['after']} after; {a['setupEventsDuringRun']} written by the "
        f"script's own set-up during the run; {a['writtenByBadInput']} written by bad input\n"
    )
    for window in a["refusedButAudited"]:
        w(f"  refused, yet {window['events']} audit events appeared during: {', '.join(window['cases'])}\n")
    bad_controls = [c for c in report["controls"] if not c["ok"]]
    w(
        f"  controls (the valid bodies the cases mutate): {len(report['controls']) - len(bad_controls)} of "
        f"{len(report['controls'])} accepted\n"
    )
    for c in bad_controls:
        w(f"    control {c['method']} {c['path']} -> {c['status']}: {c.get('body', '')}\n")
    if report["actionControls"]:
        bad_actions = [c for c in report["actionControls"] if not c["ok"]]
        w(
            f"  action controls (the same actions, asked properly, afterwards): "
            f"{len(report['actionControls']) - len(bad_actions)} of {len(report['actionControls'])} accepted\n"
        )
        for c in bad_actions:
            w(f"    action control {c['method']} {c['path']} -> {c['status']}: {c.get('body', '')}\n")
    v = report["verify"]
    if v["before"] is not None:
        w(
            f"  audit_verify: before rc={v['before']['rc']} ({v['before']['output']}); "
            f"after rc={v['after']['rc']} ({v['after']['output']})\n"
        )
    else:
        w("  audit_verify: not run (no --verify-cmd)\n")
    w("\nBy category (cases: ok / 5xx / 2xx / other / no answer):\n")
    for cat, s in report["categories"].items():
        w(
            f"  {cat:<44} {s['cases']:>4}: {s['ok']} / {s['5xx']} / {s['bad_2xx']} / {s['unexpected']} / "
            f"{s['no_answer']}\n"
        )
    for verdict, title in (
        ("5xx", "5xx"),
        ("bad_2xx", "2xx for bad input"),
        ("no_answer", "no answer"),
        ("unexpected", "other unexpected statuses"),
    ):
        rows = [f for f in report["failures"] if f["verdict"] == verdict]
        if not rows:
            continue
        w(f"\n{title} ({len(rows)}):\n")
        for f in rows:
            body = f["body"].replace("\n", " ")
            w(
                f"  [{f['name']}] {f['method']} {f['path']} -> {f['status']} (expected {f['expected']}"
                f"{f', wrote {n} audit events' if (n := f['auditEventsWritten']) else ''}): {body}\n"
            )
    if report["skipped"]:
        w(f"\nskipped ({len(report['skipped'])}): {report['skipped'][0]['why']}\n")
    w(f"\n{'PASSED' if report['passed'] else 'FAILED'}\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", required=True, help="an admin bearer token")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--verify-cmd", help="a shell command that exits 0 when the audit trail verifies")
    parser.add_argument(
        "--action-controls",
        action="store_true",
        help="afterwards, take each action properly on the objects the bad requests aimed at (deploys and "
        "promotes for real): proves they were refused for their bodies, not for the objects' state",
    )
    parser.add_argument("--tag", help="suffix for the names of the objects the set-up creates (default: random)")
    parser.add_argument("--list", action="store_true", help="list the corpus (category, name, method, path) and exit")
    args = parser.parse_args(argv)
    if args.list:
        corpus = build_corpus()
        for c in corpus:
            print(f"{c.category}\t{c.name}\t{c.method}\t{c.path[:120]}")
        print(f"{len(corpus)} cases, {len({c.key() for c in corpus})} distinct", file=sys.stderr)
        return 0
    try:
        report = run(args)
    except SetupError as e:
        print(f"set-up failed: {e}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(report, sys.stdout, indent=1, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print_report(report)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
