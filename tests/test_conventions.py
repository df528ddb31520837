"""House rules guarded by tests: help on every command, layering, no printing below the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

from typing import Any

import typer.main

from mlconnector.cli import app

PACKAGE = Path(__file__).resolve().parent.parent / "mlconnector"

# module (or package prefix) -> mlconnector modules it must not import (STYLE.md §c)
FORBIDDEN = {
    "errors": {"*"},
    "models": {"config", "store", "audit", "cli", "expensify", "qbxml", "soap", "plan", "mapping", "sandbox"},
    "mapping": {"store", "audit", "cli", "expensify", "soap", "sandbox", "config"},
    "plan": {"store", "audit", "cli", "expensify", "soap", "sandbox", "config"},
    "qbxml": {"store", "audit", "expensify", "soap", "cli", "sandbox"},
    "expensify": {"store", "qbxml", "soap", "cli", "config", "audit", "reports", "pull", "sandbox"},
    "migrations": {"*"},
    "audit": {"store", "cli"},
    "store": {"expensify", "qbxml", "soap", "cli", "sandbox"},
    "config": {"store", "expensify", "qbxml", "soap", "cli"},
    "render": {"store", "cli"},
    "render_pull": {"store", "cli", "expensify", "pull"},
    "pull": {"cli", "soap", "qbxml", "sandbox"},
    "policy_lists": {"cli", "soap", "qbxml", "sandbox", "pull"},
    "sandbox": {"store", "audit", "reports", "pull", "cli", "soap", "qbxml"},
    "replay": {"cli", "soap", "sandbox", "expensify", "qbxml"},
    "audit_trail": {"cli", "soap", "sandbox", "expensify", "qbxml", "render"},
}
THIRD_PARTY_FORBIDDEN = {
    "mapping": {"sqlite3", "requests", "lxml", "spyne", "typer", "rich"},
    "plan": {"sqlite3", "requests", "lxml", "spyne", "typer", "rich"},
    "models": {"sqlite3", "requests", "lxml", "spyne", "typer", "rich"},
    # Services leave HTTP to the expensify package and rendering to the CLI.
    "pull": {"requests", "typer", "rich"},
    "policy_lists": {"requests", "typer", "rich"},
    "replay": {"requests", "typer", "rich"},
    "audit_trail": {"requests", "typer", "rich"},
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _module_key(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0]


def test_layers_import_only_downward() -> None:
    for path in PACKAGE.rglob("*.py"):
        key = _module_key(path)
        imported = _imports(path)
        own = {name.split(".")[1] for name in imported if name.startswith("mlconnector.")}
        banned = FORBIDDEN.get(key, set())
        if "*" in banned:
            assert not (own - {"redact"} if key == "audit" else own), f"{path} imports {own}"
        else:
            assert not own & banned, f"{path} imports {own & banned}"
        roots = {name.split(".")[0] for name in imported}
        assert not roots & THIRD_PARTY_FORBIDDEN.get(key, set()), f"{path} imports {roots}"


def test_only_the_cli_prints_or_imports_typer() -> None:
    allowed = {"cli.py", "__main__.py"}
    for path in PACKAGE.rglob("*.py"):
        if path.name in allowed or "sandbox" in path.parts or "bench" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "print", f"print() in {path}:{node.lineno}"
        assert "typer" not in {n.split(".")[0] for n in _imports(path)}, f"{path} imports typer"


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
