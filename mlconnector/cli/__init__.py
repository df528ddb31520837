"""The command line: the only importer of typer and rich, and the only place that prints or exits."""

from mlconnector.cli.app import app, main

__all__ = ["app", "main"]
