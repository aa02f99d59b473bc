"""The package's import graph has no circle, read from the source (not from what one run happens to import).

Every module of plksr_arch is parsed; an edge is any import of one of our modules: `import` and `from ... import` at
module level or inside functions (relative ones resolved), `importlib.import_module("plksr_arch....")` with a literal
name, and any other string literal that names one of our modules exactly (the modules `training.names.CLASSES` and a
command's `LIBRARIES` list, which are imported by name). `from package import name` is an edge to the module
`package.name` when that is a module, else to the package's `__init__`. A package's `__init__` running before its
modules is not an edge: ours import only what they re-export, lazily at the root.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import REPO

PACKAGE = REPO / "plksr_arch"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Our modules that the module `name` (file `path`) imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def owner(dotted: str) -> str | None:  # the longest known module that `dotted` starts with
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {owner(alias.name) for alias in node.names if alias.name.startswith("plksr_arch")}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join([*base, node.module] if node.module else base)
            if source.split(".")[0] == "plksr_arch":
                for alias in node.names:
                    found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else owner(source))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            found.add(node.value)  # import_module("plksr_arch.x"), and module names kept as data
    found.discard(None)
    found.discard(name)
    return found  # type: ignore[return-value]


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_scanner_sees_every_kind_of_import_and_finds_a_circle(tmp_path: Path) -> None:
    known = {"plksr_arch.a", "plksr_arch.b", "plksr_arch.pkg", "plksr_arch.pkg.c", "plksr_arch.d", "plksr_arch.e"}
    source = (
        "from . import b\n"
        "def f():\n"
        "    from .pkg import c, helper\n"
        "    import importlib\n"
        "    importlib.import_module('plksr_arch.d')\n"
        "LIBRARIES = ('plksr_arch.e',)\n"
        "'''a docstring naming plksr_arch.a is no import'''\n"
    )
    (tmp_path / "a.py").write_text(source)
    assert imports_of("plksr_arch.a", tmp_path / "a.py", known) == {
        "plksr_arch.b",
        "plksr_arch.pkg.c",
        "plksr_arch.pkg",
        "plksr_arch.d",
        "plksr_arch.e",
    }
    edges = {"x": {"y"}, "y": {"z"}, "z": {"x"}, "w": {"x"}}
    assert circles(edges) == [["x", "y", "z"]]


def test_the_package_has_no_import_circle() -> None:
    edges = graph()
    assert len(edges) > 60 and edges["plksr_arch.training.registration"] >= {
        "plksr_arch.training.models.plksr_model",  # named in `training.names.CLASSES`, imported by name
        "plksr_arch.archs.registry",
    }
    assert not circles(edges), circles(edges)


def test_packages_import_only_packages_below_them() -> None:
    """The layering of docs/design.md, top to bottom; a module imports its own package or a lower one."""
    order = [
        "train",  # the `python -m plksr_arch.train/test` shims
        "test",
        "cli",
        "training",
        "bench",
        "export",
        "inference",
        "evaluation",
        "data",
        "weights",
        "runtime",
        "archs",
        "errors",
    ]
    rank = {name: i for i, name in enumerate(order)}
    rank["resources"] = rank["errors"]
    wrong = []
    for module, targets in graph().items():
        parts = module.split(".")
        if len(parts) < 2 or parts[1] not in rank:
            continue  # the root's lazy re-exports, version, _compat's hook
        for target in targets:
            top = target.split(".")[1] if "." in target else ""
            if top in rank and rank[top] < rank[parts[1]]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "\n".join(wrong)
