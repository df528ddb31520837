"""Where ml-connector keeps its files: config.toml, state.db and logs/.

Precedence: ``--home``/``--config`` options, then ``MLCONNECTOR_HOME``/``MLCONNECTOR_CONFIG``, then the
platform's folders (on Windows ``%LOCALAPPDATA%\\mlconnector``) via platformdirs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "mlconnector"
ENV_HOME = "MLCONNECTOR_HOME"
ENV_CONFIG = "MLCONNECTOR_CONFIG"
ENV_EXPENSIFY_SECRET = "MLCONNECTOR_EXPENSIFY_SECRET"
ENV_QBWC_PASSWORD = "MLCONNECTOR_QBWC_PASSWORD"


@dataclass(frozen=True)
class Paths:
    """The files of one ml-connector installation."""

    home: Path
    config_file: Path
    state_file: Path
    log_dir: Path

    @property
    def lock_file(self) -> Path:
        """The lock that keeps two `pull` runs from overlapping."""
        return self.state_file.with_name(self.state_file.name + ".lock")


def resolve_paths(
    home: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Paths:
    """Work out the installation's files from options, then environment, then platform defaults."""
    env = os.environ if environ is None else environ
    home_value = home or env.get(ENV_HOME) or None
    config_value = config or env.get(ENV_CONFIG) or None
    if home_value:
        base = Path(home_value).expanduser()
        config_dir = data_dir = base
    else:
        import platformdirs  # only needed when no home is given

        base = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
        config_dir = Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
        data_dir = base
    config_file = Path(config_value).expanduser() if config_value else config_dir / "config.toml"
    return Paths(
        home=base,
        config_file=config_file,
        state_file=data_dir / "state.db",
        log_dir=data_dir / "logs",
    )
