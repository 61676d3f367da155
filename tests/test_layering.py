"""The shape of the code: transports need no vault cryptography, the core
imports no front end, and there are no import cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "stockup"
FRONT_ENDS = ("stockup.cli", "stockup.web")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stockup"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("stockup"))
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_transports_load_without_the_vault() -> None:
    code = (
        "import sys, stockup.transports.ftp, stockup.transports.sftp, stockup.engine\n"
        "heavy = [m for m in ('stockup.vault', 'argon2', 'stockup.cli', 'stockup.web') "
        "if any(k == m or k.startswith(m + '.') for k in sys.modules)]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_core_imports_no_front_end_and_has_no_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        name = module_name(path)
        graph[name] = {m for m in imports_of(path) if m != name}
    for name, imported in graph.items():
        if not name.startswith(FRONT_ENDS) and name != "stockup.__main__":
            assert not [m for m in imported if m.startswith(FRONT_ENDS)], name

    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        assert name not in visiting, f"import cycle: {' -> '.join([*visiting, name])}"
        visiting.append(name)
        for dependency in graph.get(name, ()):
            visit(dependency)
        visiting.pop()
        done.add(name)

    for name in graph:
        visit(name)
