"""Where cpctl finds its control plane: a named profile, the environment, or the profile logged in last.

Profiles live in one JSON file in the user's config directory (`~/.config/cpctl/config.json` on Linux,
`$XDG_CONFIG_HOME` honoured), readable by its owner only, since it holds tokens.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import click

from cpctl.client import IDENTITY, USAGE, Failure

DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class Target:
    url: str
    token: str


def path() -> Path:
    return Path(click.get_app_dir("cpctl")) / "config.json"


def load() -> dict:
    try:
        stored = json.loads(path().read_text())
    except FileNotFoundError:
        return {"current": None, "profiles": {}}
    except (OSError, ValueError) as e:
        raise Failure(USAGE, f"cannot read {path()}: {e}") from None
    return {"current": stored.get("current"), "profiles": dict(stored.get("profiles") or {})}


def save(config: dict) -> Path:
    """Write the file whole, owner-only from its first byte (never briefly readable by others)."""
    target = path()
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as f:
        json.dump(config, f, indent=2)
    os.chmod(temporary, 0o600)  # an older file of the same name kept its mode through O_TRUNC
    os.replace(temporary, target)
    return target


def resolve(profile: str | None) -> Target:
    """A profile named by `--profile` (or CONTROLPLANE_PROFILE) is used as stored. Otherwise
    CONTROLPLANE_URL and CONTROLPLANE_TOKEN, each falling back to the profile logged in last."""
    config = load()
    if profile:
        stored = config["profiles"].get(profile)
        if stored is None:
            raise Failure(USAGE, f"no profile {profile!r} in {path()}: run `cpctl login --profile {profile}`.")
        return Target(stored["url"], stored["token"])
    current = config["profiles"].get(config["current"] or "", {})
    url = os.environ.get("CONTROLPLANE_URL") or current.get("url")
    token = os.environ.get("CONTROLPLANE_TOKEN") or current.get("token")
    if not url:
        raise Failure(
            USAGE,
            "no control plane configured: set CONTROLPLANE_URL and CONTROLPLANE_TOKEN, or run `cpctl login --url URL`.",
        )
    if not token:
        raise Failure(IDENTITY, "no token: set CONTROLPLANE_TOKEN, or run `cpctl login`.")
    return Target(url, token)
