"""PyInstaller hook for Spyne 2.14 (used by scripts/build_onefile.py through --additional-hooks-dir).

Spyne reaches parts of itself by name, so every Spyne module is bundled except its own tests. Modules of
integrations that are not installed (spyne.store.relational needs SQLAlchemy) are skipped with a warning.

Spyne's bundled six imports the standard modules behind ``spyne.util.six.moves`` lazily (http.cookies,
urllib.*), where PyInstaller cannot see them; on Python 3.12+ ``mlconnector.soap.compat`` answers those
names with the real ``six.moves``, whose own PyInstaller hook collects the modules it maps to.
"""

from PyInstaller.utils.hooks import collect_submodules

hiddenimports = [
    *collect_submodules("spyne", filter=lambda name: name != "spyne.test" and not name.startswith("spyne.test.")),
    "six",
    "six.moves",
    "http.cookies",
    "urllib.request",
    "urllib.parse",
    "urllib.error",
]
