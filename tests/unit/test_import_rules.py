"""The import rules of the house, read from the source (ast; nothing is imported):

- no import cycle between our modules, counting imports inside functions;
- imports follow the layers: `blocks` imports nothing of ours; `worker` imports only `worker` and
  `blocks`; `sequences` imports only `sequences`, `worker` and `blocks`; `webhooks` may import
  `worker` and `blocks` (and itself), and nothing imports `webhooks`;
- an import of our own modules inside a function says why on the same or the previous line (a
  comment; one comment may head a run of such imports, blank lines between groups included), since
  the default is an import at the top.

A failure names each offending edge (file:line) or cycle path.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("worker", "webhooks", "sequences", "blocks")
# Which top-level packages each package may import (itself included).
ALLOWED = {
    "blocks": {"blocks"},
    "worker": {"worker", "blocks"},
    "sequences": {"sequences", "worker", "blocks"},
    "webhooks": {"webhooks", "worker", "blocks"},
}


@dataclass(frozen=True)
class Edge:
    """One import of one of our modules by another."""

    source: str  # importing module
    target: str  # imported module
    path: Path
    line: int
    local: bool  # inside a function
    commented: bool  # a comment on its line, the line before, or heading its run of local imports

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            mods[name] = path
    return mods


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module of ours that `name` (a module, or a name inside one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _comment_lines(source: str) -> set[int]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {tok.start[0] for tok in tokens if tok.type == tokenize.COMMENT}


def _under_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _in_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return True
    return False


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: from the importing module's package
        package = module.split(".")
        package = package[: len(package) - node.level + (1 if MODULES[module].name == "__init__.py" else 0)]
        base = ".".join([*package, *([base] if base else [])])
    for alias in node.names:
        yield f"{base}.{alias.name}" if base else alias.name


def _edges() -> list[Edge]:
    edges: list[Edge] = []
    for module, path in MODULES.items():
        source = path.read_text()
        tree = ast.parse(source)
        comments = _comment_lines(source)
        source_lines = source.splitlines()
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        covered: set[int] = set()  # last lines of local imports that carry (or continue) a comment
        imports = sorted(
            (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))), key=lambda n: n.lineno
        )
        for node in imports:
            if _under_type_checking(node, parents):
                continue
            local = _in_function(node, parents)
            end = node.end_lineno or node.lineno
            before = node.lineno - 1  # the line before, blank lines skipped (a run of imports may have groups)
            while before > 0 and not source_lines[before - 1].strip():
                before -= 1
            commented = bool(comments & set(range(node.lineno - 1, end + 1))) or before in covered
            if local and commented:
                covered.add(end)
            for target in {_resolve(t) for t in _targets(module, node)}:
                if target is None or target == module:
                    continue
                edges.append(Edge(module, target, path, node.lineno, local, commented))
    return edges


EDGES = _edges()


def _cycles(edges: list[Edge]) -> list[list[Edge]]:
    """One cycle (as its edges) through each strongly connected group of modules."""
    graph: dict[str, dict[str, Edge]] = {}
    for e in edges:
        graph.setdefault(e.source, {}).setdefault(e.target, e)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)

    cycles = []
    for group in groups:
        start = min(group)
        # shortest path back to `start` inside the group (breadth first)
        paths: dict[str, list[Edge]] = {start: []}
        queue = [start]
        found: list[Edge] | None = None
        while queue and found is None:
            v = queue.pop(0)
            for w, e in sorted(graph.get(v, {}).items()):
                if w not in group:
                    continue
                if w == start:
                    found = [*paths[v], e]
                    break
                if w not in paths:
                    paths[w] = [*paths[v], e]
                    queue.append(w)
        cycles.append(found or [])
    return cycles


def _show(cycle: list[Edge]) -> str:
    steps = " -> ".join(f"{e.target} ({e.where()}{', in a function' if e.local else ''})" for e in cycle)
    return f"{cycle[0].source} -> {steps}"


def test_no_import_cycles() -> None:
    """Counting imports inside functions: a cycle hidden in a function is still a cycle."""
    cycles = _cycles(EDGES)
    assert not cycles, "import cycles:\n" + "\n".join(f"  {_show(c)}" for c in cycles)


def test_imports_follow_the_layers() -> None:
    """webhooks -> worker -> blocks; sequences -> worker + blocks; blocks imports nothing of ours."""
    wrong = [
        e
        for e in EDGES
        if e.target.split(".")[0] not in ALLOWED[e.source.split(".")[0]]
        or (e.target.split(".")[0] == "webhooks" and e.source.split(".")[0] != "webhooks")
    ]
    assert not wrong, "imports against the layers:\n" + "\n".join(
        f"  {e.source} -> {e.target} ({e.where()}{', in a function' if e.local else ''})" for e in wrong
    )


def test_local_imports_say_why() -> None:
    """An import of our modules inside a function carries a comment saying why it is not at the top."""
    silent = sorted({(e.where(), e.source, e.target) for e in EDGES if e.local and not e.commented})
    assert not silent, "imports inside a function without a comment saying why:\n" + "\n".join(
        f"  {where}: {source} -> {target}" for where, source, target in silent
    )


def test_the_checks_see_the_tree() -> None:
    """The scan found the packages and their imports (an empty scan would pass every rule)."""
    assert {"worker.engine.executor", "webhooks", "sequences", "blocks"} <= set(MODULES)
    assert any(e.source == "worker.engine.executor" and e.target == "worker.engine.dag" for e in EDGES)
