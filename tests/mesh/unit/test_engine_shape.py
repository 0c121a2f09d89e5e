"""The engine's folders show its planes and its modules stay small: what each plane may import, and how long a
module or a function may grow, are checked here from the code itself (every `import` statement, also those
inside functions), so the picture in the packages' docstrings stays true."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[3] / "sandbox" / "mesh"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60

# Per plane: the engine modules (dotted, below sandbox.mesh) it may import besides its own.
ALLOWED = {
    "config": set(),
    "dataplane": {"config", "process", "controlplane.ca", "controlplane.meshconfig"},
    "controlplane": {"config", "process"},
}


def _engine_imports(path: Path) -> set[str]:
    """The sandbox.mesh modules a file imports, without the `sandbox.mesh.` prefix."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sandbox.mesh"):
            base = node.module.removeprefix("sandbox.mesh").lstrip(".")
            names = [f"{base}.{alias.name}".lstrip(".") for alias in node.names] if base in {"", *ALLOWED} else []
            found.update(names or [base])
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("sandbox.mesh.") for a in node.names if a.name.startswith("sandbox.mesh."))
    return found


def _allowed(plane: str, imported: str) -> bool:
    within = imported == plane or imported.startswith(plane + ".")
    return within or any(imported == ok or imported.startswith(ok + ".") for ok in ALLOWED[plane])


def test_config_and_the_planes_import_only_what_their_package_says():
    wrong = []
    for plane in ALLOWED:
        for path in sorted((ENGINE / plane).rglob("*.py")):
            for imported in sorted(_engine_imports(path)):
                if not _allowed(plane, imported):
                    wrong.append(f"{path.relative_to(ENGINE)} imports sandbox.mesh.{imported}")
    assert wrong == []


def test_the_checker_sees_an_import_a_plane_must_not_make(tmp_path):
    # The rule above is only worth something if a forbidden import is noticed, also one inside a function.
    source = tmp_path / "bad.py"
    source.write_text("def f():\n    from sandbox.mesh.runtime.supervisor import ProcessMesh\n")
    imported = _engine_imports(source)
    assert imported == {"runtime.supervisor"}
    assert not _allowed("dataplane", "runtime.supervisor")
    assert _allowed("dataplane", "config.model")


def test_no_module_of_the_engine_is_over_450_lines():
    long = {
        str(path.relative_to(ENGINE)): lines
        for path in sorted(ENGINE.rglob("*.py"))
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def _long_functions(path: Path, root: Path = ENGINE) -> dict[str, int]:
    found = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found[f"{path.relative_to(root)}:{node.lineno} {node.name}"] = length
    return found


def test_no_function_of_the_engine_is_over_60_lines():
    long = {}
    for path in sorted(ENGINE.rglob("*.py")):
        long.update(_long_functions(path))
    assert long == {}


def test_the_length_check_sees_a_long_method(tmp_path):
    source = tmp_path / "long.py"
    source.write_text("class A:\n    def f(self):\n" + "        x = 1\n" * 60)
    assert _long_functions(source, tmp_path) == {"long.py:2 f": 61}
