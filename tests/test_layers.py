"""The layers of docs/architecture.md hold: import-linter's contracts (``.importlinter``, also run
by ``lint-imports`` in .ci/run) are kept, and no module outside the sandbox takes part in an
import circle, counting imports made only for type checking."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
from importlinter.api import read_configuration

ROOT = Path(__file__).resolve().parents[1]


def _circles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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
    return found


def test_no_import_circle_outside_the_sandbox() -> None:
    graph = grimp.build_graph("connector", exclude_type_checking_imports=False)
    modules = {m for m in graph.modules if not m.startswith("connector.sandbox")}
    assert _circles(graph, modules) == []


def test_the_circle_finder_finds_a_circle() -> None:
    graph = grimp.ImportGraph()
    for name in ("a", "a.b", "a.c", "a.d"):
        graph.add_module(name)
    graph.add_import(importer="a.b", imported="a.c")
    graph.add_import(importer="a.c", imported="a.b")
    graph.add_import(importer="a.d", imported="a.b")
    assert _circles(graph, {"a.b", "a.c", "a.d"}) == [["a.b", "a.c"]]


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint), "--config", str(config), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_linter_contracts_are_kept() -> None:
    contracts = {
        c["id"] for c in read_configuration(str(ROOT / ".importlinter"))["contracts_options"]
    }
    assert contracts == {"layers", "persistence", "tables", "cli", "sandbox"}
    done = _lint(ROOT / ".importlinter")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_broken_layer_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "upside-down.ini"
    config.write_text(
        "[importlinter]\nroot_package = connector\n\n"
        "[importlinter:contract:upside-down]\nname = runtime below persistence\ntype = layers\n"
        "layers =\n    connector.persistence\n    connector.runtime\n"
    )
    done = _lint(config)
    assert done.returncode == 1
    assert "connector.runtime" in done.stdout and "BROKEN" in done.stdout
