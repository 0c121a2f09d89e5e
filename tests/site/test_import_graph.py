"""The project's own modules import each other without a cycle, late (function-level) imports included.

A cycle is what makes a module need a late import to load at all, and what makes "tasks call services" turn
into "services call tasks call services". The engine (`sandbox/mesh`) has its own check.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("meshlearn", "lessons", "quizzes", "labs", "sandbox", "bench")
EXCLUDED = ("sandbox.mesh",)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _excluded(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in EXCLUDED)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = _module_name(path)
            if not _excluded(name):
                modules[name] = path
    return modules


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every module a file imports, anywhere in it (top level or inside a function), as dotted names."""
    package = module if is_package else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names.add(source)
            # `from . import services` imports the module `services`; `from .models import X` imports `.models`.
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = set()
        for imported in _imported_names(tree, name, path.name == "__init__.py"):
            # The most specific project module the name reaches: `a.b.C` (a class) is the module `a.b`.
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_graph_sees_late_imports_and_relative_imports():
    # The checker itself: a late relative import is an edge, so a cycle made of one is found.
    tree = ast.parse("def f():\n    from .tasks import run\n")
    assert "app.tasks" in _imported_names(tree, "app.services", is_package=False)
    assert find_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_covers_the_apps():
    graph = import_graph()
    assert "sandbox.tasks" in graph and "quizzes.services" in graph and "meshlearn.content" in graph
    assert not any(_excluded(name) for name in graph)
    assert "sandbox.services" in graph["sandbox.views"]


def test_no_import_cycle_in_the_project():
    cycles = find_cycles(import_graph())
    assert cycles == [], "import cycles (a module of each must stop importing the next): " + "; ".join(
        " <-> ".join(cycle) for cycle in cycles
    )


APPS = ("lessons", "quizzes", "labs", "sandbox")


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_apps_import_only_the_shared_base_of_meshlearn():
    # meshlearn is both the shared base the apps build on and the orchestration above them (loading the whole
    # course); an app that reached the orchestration would import itself back through it.
    graph = import_graph()
    above = {
        name
        for name in graph
        if name.startswith("meshlearn.") and any(target.partition(".")[0] in APPS for target in _reaches(graph, name))
    }
    assert "meshlearn.course_loading" in above
    offending = sorted(
        f"{name} -> {target}"
        for name in graph
        if name.partition(".")[0] in APPS
        for target in graph[name]
        if target in above
    )
    assert offending == []
