"""Make Spyne 2.14 (the latest release) import on Python 3.11, 3.12 and 3.13.

Spyne bundles an old copy of ``six`` whose lazy ``six.moves`` importer implements only
``find_module``/``load_module``; Python 3.12 removed those hooks, so ``spyne.util.six.moves`` cannot
be imported. We register a meta-path finder that answers for ``spyne.util.six.moves*`` with the real
``six`` package's ``moves`` modules (identical content, modern import hooks). Spyne's own bundled
``six`` keeps serving everything else, including helpers the real six lacks (``get_function_name``).
On 3.13 Spyne also imports ``cgi``; the ``legacy-cgi`` dependency provides it.

Call :func:`ensure_spyne_importable` before the first ``import spyne``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

_PREFIX = "spyne.util.six.moves"


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self._target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self._target)

    def exec_module(self, module: ModuleType) -> None:
        """The aliased module is already executed."""


class _SpyneSixMovesFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == _PREFIX or fullname.startswith(_PREFIX + "."):
            return importlib.util.spec_from_loader(fullname, _AliasLoader("six.moves" + fullname[len(_PREFIX):]))
        return None


def ensure_spyne_importable() -> None:
    """Install the ``six.moves`` alias once, on Python 3.12 and later (3.11 needs nothing)."""
    if sys.version_info < (3, 12):
        return
    if not any(isinstance(f, _SpyneSixMovesFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SpyneSixMovesFinder())
