"""The packages import only downward (docs/ARCHITECTURE.md), and no module imports itself through others."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cli", "realtime", "gui", "trainer", "exporters")
# package -> the project packages it may import (besides itself)
ALLOWED = {
    "realtime": set(),
    "gui": {"realtime"},
    "trainer": {"realtime"},
    "exporters": {"realtime", "trainer"},
    "cli": {"realtime", "gui", "trainer", "exporters"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, top_level_only: bool) -> set[str]:
    """Project modules that `path` imports (all imports, or only those run when the module loads)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES}


def project_files() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def test_packages_import_only_downward():
    wrong = []
    for name, path in project_files().items():
        package = name.split(".")[0]
        for imported in imports(path, top_level_only=False):
            target = imported.split(".")[0]
            if target != package and target not in ALLOWED[package]:
                wrong.append(f"{name} imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    files = project_files()
    graph = {name: {m for m in imports(path, top_level_only=False) if m in files and m != name}
             for name, path in files.items()}
    state: dict[str, str] = {}
    cycles = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for following in graph[name]:
            if state.get(following) == "open":
                cycles.append(" -> ".join(trail[trail.index(following):] + [following]))
            elif following not in state:
                visit(following, trail + [following])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(cycles)
