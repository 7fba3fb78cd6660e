"""What a command spends importing, as `python -X importtime` reports it: the cumulative time of each top-level
import (one imported by no other module timed), summed, Python's own start-up included. bench/cli.py reports
it for `cpctl --help` and `cpctl whoami`; tests/cli/test_startup.py holds them to their budget."""

import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Imports:
    ms: float
    modules: frozenset[str]
    done: subprocess.CompletedProcess  # its stderr without the import lines


def importing(*command: str, env: dict, python: str = sys.executable) -> Imports:
    """Run `python -X importtime COMMAND…` (e.g. `-m cpctl whoami`) and read what it imported, and how long it took."""
    done = subprocess.run(
        [python, "-X", "importtime", *command],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    total, modules, rest = 0, set(), []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:"):
            rest.append(line)
            continue
        _, cumulative, name = line.split("|")
        if not cumulative.strip().isdigit():
            continue  # the header line
        modules.add(name.strip())
        if not name.startswith("  "):  # one space before the name: a top-level import
            total += int(cumulative)
    done.stderr = "\n".join(rest)
    return Imports(total / 1000, frozenset(modules), done)
