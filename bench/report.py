"""Writes one benchmark's section of docs/performance.md, leaving the others as they are."""

import platform
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
HEADER = """# Performance

Figures from `make bench` (`bench/`). Each benchmark runs the thing measured and its baseline in the same
run, on the same machine, so the ratio is what matters; absolute numbers depend on the machine. One benchmark
alone runs as a module from the checkout's root, `python -m bench.api` (`--help` for its options, `--no-write`
to print its figures without writing them here); the suite runs each once at a tiny size (`tests/test_bench.py`).
"""


def write_section(name: str, body: str) -> None:
    text = DOC.read_text() if DOC.exists() else HEADER
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    stamp = f"_Measured {datetime.now(UTC):%Y-%m-%d} on {platform.machine()}, Python {platform.python_version()}._\n"
    section = f"{start}\n{body}\n{stamp}{end}"
    if start in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text)
