"""Every benchmark of `make bench` run once at a tiny size, the way `make bench` runs it (`python -m bench.<name>`
from the checkout's root), so a benchmark that no longer runs is found by the suite, not by the next `make bench`.
The figures are printed and checked for, never written: docs/performance.md is left as it was. The benchmarks
choose their own databases (SQLite files, a temporary PostgreSQL database for --postgres) whatever the suite's
DATABASE_URL, so they run once, in the suite's SQLite run."""

import re
import subprocess
import sys

import psycopg
import pytest
from django.db import connection

from tests.environment import ROOT, clean_environment, stop_group

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the benchmarks choose their own databases: run once, on SQLite"
)

SIZE = "3x1x2"  # services x environments x releases: bench/api.py's seeded database, shared through --data-dir
SERVED = ["--seconds", "0.1", "--rounds", "1", "--concurrency", "2", "--workers", "1"]  # 2 clients: 2 samples at least
TIMEOUT = 240  # seconds: a benchmark stuck this long is killed with its whole process group

# `make bench`'s lines, and bench/profile_releases.py, which it does not run: (arguments, what its figures say).
# In this order, bench/api.py first: it seeds the database the next three read.
BENCHMARKS = {
    "api": (
        ["--services", "3", "--environments", "1", "--releases", "2", *SERVED],
        r"cache off +[\d.]+ req/s .* of floor",
    ),
    "graphql": (["--sizes", SIZE, *SERVED], r"GraphQL/REST, services index: \d+\.\d\d"),
    "pages": (["--sizes", SIZE, *SERVED], r"release page: `GET /releases/<id>/`\s+[\d.]+ req/s"),
    "serving": (["--size", SIZE, *SERVED], r"\| `GET /api/me/` \(the floor\) \| [\d,.]+ \|.*\| \*\*\d\.\d\d\*\* \|"),
    "profile_releases": (["--size", SIZE, "--requests", "50"], r"list [\d.]+ ms, floor [\d.]+ ms, ratio"),
    "audit": (["--rounds", "1", "--changes", "7"], r"sqlite [\d.]+: writer off [\d,]+ changes/s, on [\d,]+"),
    "audit --postgres": (["--rounds", "1", "--changes", "7"], r"postgresql: writer off [\d,]+ changes/s, on [\d,]+"),
    "workflows": (["--deploys", "2", "--services", "1", "--workers", "1"], r"2/2 deploys Active .* runs/min"),
    "streams": (["--streams", "2", "--seconds", "0.1", "--events", "1"], r"\*\*SQLite.*\*\*: 2 streams opened in"),
    "streams --postgres": (["--streams", "2", "--seconds", "0.1", "--events", "1"], r"\*\*PostgreSQL.*: 2 streams"),
    "cli": (
        ["--rounds", "1"],
        r"\| cpctl deploy --yes \| \d+ ms \| \d+ ms \|(.*\n)*\| cpctl whoami \| \d+ ms \| \d+ ms \|",
    ),
    "policies": (
        ["--decisions", "20", "--rounds", "2"],
        r"decision, allowed: [\d.]+ ms median.*\n.*deploy request: .* ratio",
    ),
}
SEEDED = ("api", "graphql", "pages", "serving", "profile_releases", "streams")  # those that take --data-dir
WRITES_NOTHING = ("profile_releases",)  # no --no-write: it never writes


def make_bench() -> set[str]:
    """The benchmarks the Makefile's `bench` target runs, as `name [--postgres]`."""
    recipe = ROOT.joinpath("Makefile").read_text().split("\nbench:", 1)[1].split("\n\n", 1)[0]
    return {"".join(m.groups("")) for m in re.finditer(r"-m bench\.(\w+)( --postgres)?", recipe)}


def test_every_benchmark_of_make_bench_is_run_here():
    assert make_bench() == set(BENCHMARKS) - {"profile_releases"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bench-data")


def postgres_answers() -> bool:
    try:
        psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def run(arguments: list[str], tmp_path) -> tuple[int, str]:
    """`python -m <arguments>` in a session of its own, temporary files under `tmp_path`; its exit status and
    output. Its process group is stopped afterwards whatever happened: no server or worker outlives the test."""
    log_path = tmp_path / "bench.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", *arguments],
            cwd=ROOT,
            env=clean_environment(tmp_path, TMPDIR=str(tmp_path)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        status = process.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        status = None
    finally:
        stop_group(process)
    return status, log_path.read_text()


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_benchmark_runs_and_prints_its_figures(benchmark, data_dir, tmp_path):
    name, _, database = benchmark.partition(" ")
    if database and not postgres_answers():
        pytest.skip("no PostgreSQL server answers at 127.0.0.1:5432")
    arguments, figures = BENCHMARKS[benchmark]
    arguments = [f"bench.{name}", *filter(None, [database]), *arguments]
    if name in SEEDED:
        arguments += ["--data-dir", str(data_dir)]
    if name not in WRITES_NOTHING:
        arguments.append("--no-write")

    doc = ROOT / "docs" / "performance.md"
    before = doc.read_bytes()

    status, output = run(arguments, tmp_path)

    assert status is not None, f"{benchmark} still ran after {TIMEOUT} s:\n{output[-3000:]}"
    assert status == 0, output[-3000:]
    assert re.search(figures, output), output[-3000:]
    assert doc.read_bytes() == before, "docs/performance.md changed"
