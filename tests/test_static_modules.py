"""The browser's ES modules import each other without a cycle (static or dynamic imports alike).

Production serves them under hashed names (``crossread/staticfiles.py``), and a module's name holds the
hash of its content, imports included: modules in a cycle cannot be named, and ``collectstatic`` fails
("Max post-process passes exceeded"), which only the production tests would show.
"""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "static"
IMPORT = re.compile(r"""(?:\bimport\s*(?:[^"'();]*?\sfrom\s*)?|\bimport\s*\(\s*)["'](\.{1,2}/[^"']+)["']""")


def graph() -> dict[Path, set[Path]]:
    edges: dict[Path, set[Path]] = {}
    for module in STATIC.rglob("*.js"):
        found = {(module.parent / target).resolve() for target in IMPORT.findall(module.read_text())}
        edges[module.resolve()] = {target for target in found if target.suffix == ".js"}
    return edges


def test_the_import_pattern_finds_static_and_dynamic_imports() -> None:
    text = 'import { a } from "./a.js";\nimport "./side.js";\nconst m = await import("../b.js");\nimport(\n "./c.js")'
    assert IMPORT.findall(text) == ["./a.js", "./side.js", "../b.js", "./c.js"]


def test_every_imported_module_exists_and_no_module_imports_itself_through_others() -> None:
    edges = graph()
    assert len(edges) > 30
    missing = {f"{m.relative_to(STATIC)} -> {t}" for m, targets in edges.items() for t in targets if t not in edges}
    assert not missing
    cycles = []
    state: dict[Path, int] = {}  # 1: on the path, 2: done

    def visit(node: Path, path: list[Path]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(str(p.relative_to(STATIC)) for p in [*path[path.index(target):], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles
