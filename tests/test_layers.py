"""The layers (docs/architecture.md): each package imports only the ones below it, so the shared base
stays importable by every app and nothing runs back up."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "controlplane",
    "idempotency",
    "services",
    "tokens",
    "releases",
    "incidents",
    "integrations",
    "audit",
    "policies",
    "overview",
)
# What each package may import, besides itself and third-party code.
ALLOWED = {
    "controlplane": set(),
    "idempotency": {"controlplane"},
    "services": {"controlplane"},
    "tokens": {"controlplane", "services"},
    "releases": {"controlplane", "services"},
    "incidents": {"controlplane", "services"},
    "integrations": {"controlplane", "services", "tokens", "releases", "incidents"},
    "audit": {"controlplane", "services", "tokens", "releases", "incidents", "integrations"},
    "policies": {"controlplane", "services", "tokens", "releases", "incidents", "integrations", "audit"},
    "overview": {"controlplane", "services", "tokens", "releases", "incidents", "integrations", "audit", "policies"},
}
# The project's wiring: it names every app's URLs, so it stands above them all.
WIRING = {"controlplane/urls.py", "controlplane/api/urls.py", "controlplane/graphql/schema.py"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (  # apps.get_model("releases", ...) is an import by another name
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) == "get_model"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value).split(".")[0])
    return names & set(APPS)


def modules():
    for package in APPS:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative not in WIRING:
                yield pytest.param(package, path, id=relative)


@pytest.mark.parametrize(("package", "path"), list(modules()))
def test_imports_only_the_layers_below(package, path):
    upward = imported_packages(path) - ALLOWED[package] - {package}
    assert not upward, f"{path.relative_to(ROOT)} imports {sorted(upward)}, above {package} in the layers"


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from audit.models import AuditEvent\n\n"
        "def f():\n    import overview.api\n    return apps.get_model('releases', 'Run')\n"
    )
    assert imported_packages(module) == {"audit", "overview", "releases"}
