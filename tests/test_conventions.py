"""House rules guarded by tests: help on every command, layering, who may use which library, no printing.

The import rule is an allowlist by layer: every module of the package gets a rank from its place in
the tree (a new module is checked without editing this file) and may import only modules of its own
rank or below. A module the table cannot place fails the test, so the table grows with the tree.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import typer.main

from mlconnector.cli import app

PACKAGE = Path(__file__).resolve().parent.parent / "mlconnector"

# Downward only: ground <- config <- mapping/plan <- expensify/qbxml <- store <- services <- soap
# <- sandbox (simulators and the demo, which drive the whole stack) <- cli.
RANKS: dict[str, int] = {
    "errors": 0, "models": 0, "redact": 0, "passwords": 0, "paths": 0, "__init__": 0,
    "config": 1, "config_values": 1,
    "mapping": 2, "plan": 2,
    "expensify": 3, "qbxml": 3,
    "store": 4,
    "services": 5,
    "soap": 6,
    "sandbox": 7,
    "cli": 8, "__main__": 8,
}

# Third-party libraries and the only parts of the package that may import them (by path prefix).
ONLY_IMPORTERS: dict[str, tuple[str, ...]] = {
    "sqlite3": ("store/",),
    "requests": ("expensify/", "sandbox/"),
    # qbXML and the .qwc file are built in qbxml/; SOAP envelopes at the SOAP edge; simulators aside.
    "lxml": ("qbxml/", "soap/service.py", "soap/wsgi_app.py", "sandbox/"),
    "spyne": ("soap/service.py", "soap/wsgi_app.py", "soap/compat.py"),
    "typer": ("cli/",),
    "rich": ("cli/",),
}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _rank_of(module: str) -> int:
    """The rank of a dotted module name below ``mlconnector`` (``store.audit`` -> store's rank)."""
    top = module.split(".")[0]
    assert top in RANKS, f"mlconnector.{module} has no layer: add its package to RANKS in test_conventions.py"
    return RANKS[top]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "mlconnector":  # from mlconnector import x: x is the module
                names.update(f"mlconnector.{alias.name}" for alias in node.names if alias.name != "__version__")
    return names


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def test_every_module_imports_only_its_own_layer_or_below() -> None:
    problems = []
    for path in _modules():
        own = _rank_of(_module_name(path))
        for name in _imports(path):
            if name.startswith("mlconnector.") and _rank_of(name.removeprefix("mlconnector.")) > own:
                problems.append(f"{_rel(path)} (rank {own}) imports {name}")
    assert problems == []


def test_each_library_has_its_only_importers() -> None:
    problems = []
    for path in _modules():
        roots = {name.split(".")[0] for name in _imports(path)}
        for library, allowed in ONLY_IMPORTERS.items():
            if library in roots and not _rel(path).startswith(allowed):
                problems.append(f"{_rel(path)} imports {library}")
    assert problems == []


def test_no_module_outside_store_touches_the_connection() -> None:
    problems = []
    for path in _modules():
        if _rel(path).startswith("store/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "conn" and _is_store(node.value):
                problems.append(f"{_rel(path)}:{node.lineno}")
    assert problems == []


def _is_store(node: ast.expr) -> bool:
    text = ast.unparse(node)
    return text == "store" or text.endswith(".store") or text.endswith("_store")


def test_only_the_cli_prints() -> None:
    problems = []
    for path in _modules():
        if _rel(path).startswith(("cli/", "__main__")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                problems.append(f"{_rel(path)}:{node.lineno}")
    assert problems == []


def test_the_rules_themselves_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlite3\nfrom mlconnector.cli import app\nfrom mlconnector import store\nprint(1)\n")
    assert {"sqlite3", "mlconnector.cli", "mlconnector.store"} <= _imports(bad)
    assert _rank_of("cli.app") > _rank_of("store.db") > _rank_of("plan.core")


def _commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    # Typer vendors its own click, so groups are recognised by shape, not by class.
    found = []
    for name, command in group.commands.items():
        found.append((prefix + name, command))
        if hasattr(command, "commands"):
            found.extend(_commands(command, prefix + name + " "))
    return found


def test_every_command_and_option_has_help() -> None:
    root = typer.main.get_command(app)
    for name, command in _commands(root):
        assert command.help, f"command {name} has no help"
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, f"option {param.name} of {name} has no help"


def test_every_command_is_in_the_readme() -> None:
    readme = (PACKAGE.parent / "README.md").read_text()
    root = typer.main.get_command(app)
    for name, _ in _commands(root):
        assert f"mlconnector {name}" in readme, f"README does not mention mlconnector {name}"
