"""The releases app's modules import each other at the top, in one direction: no cycle hidden by an
import inside a function (workflows → tasks → engine → runs → lifecycle → models)."""

import ast
from pathlib import Path

import releases

APP = Path(releases.__file__).parent
MODULES = {path.stem: path for path in APP.glob("*.py") if path.stem != "__init__"}


def imported_app_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "releases":
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("releases."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("releases.")}
    return names & MODULES.keys()


def test_no_module_imports_inside_a_function():
    hidden = []
    for name, path in MODULES.items():
        for function in ast.walk(ast.parse(path.read_text())):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                imports = [node for node in ast.walk(function) if isinstance(node, ast.Import | ast.ImportFrom)]
                hidden += [f"{name}.{function.name}"] * len(imports)
    assert hidden == []


def test_the_modules_import_each_other_without_a_cycle():
    graph = {name: imported_app_modules(ast.parse(path.read_text())) for name, path in MODULES.items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]):
        assert name not in path, f"import cycle: {' → '.join((*path, name))}"
        if name not in done:
            for imported in graph[name]:
                visit(imported, (*path, name))
            done.add(name)

    for name in graph:
        visit(name, ())
    assert {"runs"} <= graph["engine"] and {"runs"} <= graph["recovery"] and "tasks" in graph["workflows"]
    assert "engine" in graph["tasks"] and "workflows" not in graph["engine"] | graph["runs"]
