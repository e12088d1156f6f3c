"""The package's shape: imports point down the layers, with no cycle, not even in a function."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "toonvision"
MODEL_UTILS_SUBPACKAGES = ("training", "engine", "statistics", "comparison", "studies")
# Within model_utils, which sub-package may import which (statistics stands alone).
ALLOWED = {
    "training": {"training", "statistics"},
    "engine": {"training", "engine", "statistics"},
    "statistics": {"statistics"},
    "comparison": {"training", "engine", "statistics", "comparison"},
    "studies": {"training", "engine", "statistics", "comparison", "studies"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every toonvision module -> the toonvision modules it imports anywhere (functions too)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and ast.unparse(node.test).endswith("TYPE_CHECKING")
                       for inner in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in typing_only:   # annotations only: never imported at run time
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                base = node.module
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else base)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {target for target in targets
                       if target in modules and target != name and target.startswith("toonvision")}
    return graph


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) >= 3 and parts[1] == "model_utils" and parts[2] in MODEL_UTILS_SUBPACKAGES:
        return parts[2]
    return None


def test_no_import_cycle_between_modules_not_even_inside_functions():
    graph = _imports()
    # Package __init__ files export lazily; an edge to a package is an edge to its __init__.
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycle.extend(stack[stack.index(target):] + [node, target]
                             if target in stack else [node, target])
                return True
            if state.get(target) is None and visit(target, stack + [target]):
                return True
        state[node] = 2
        return False

    for module in sorted(graph):
        if state.get(module) is None and visit(module, [module]):
            break
    assert not cycle, " -> ".join(cycle)


def test_model_utils_sub_packages_import_only_down_and_never_draw():
    graph = _imports()
    wrong = []
    for module, targets in graph.items():
        if not module.startswith("toonvision.model_utils"):
            continue
        for target in targets:
            if target.startswith(("toonvision.data_visualization", "toonvision.commands")):
                wrong.append(f"{module} imports {target}")
            source, dest = _package_of(module), _package_of(target)
            if source and dest and dest not in ALLOWED[source]:
                wrong.append(f"{module} imports {target} ({source} may not import {dest})")
    assert not wrong, "\n".join(sorted(wrong))


def test_at_most_six_loose_modules_in_model_utils():
    loose = [path.name for path in (PACKAGE / "model_utils").glob("*.py")
             if path.name != "__init__.py"]
    assert len(loose) <= 6, loose
