from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Cli

PASSPHRASE = "correct horse battery staple ünïcödé"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A STOCKUP_HOME that does not exist yet, so stockup creates it (0700)."""
    return tmp_path / "home"


@pytest.fixture
def cli(home: Path) -> Cli:
    return Cli(home=home, env={"STOCKUP_PASSPHRASE": PASSPHRASE})


from tests.servers.fixtures import (  # noqa: E402,F401
    certs,
    lab_net,
    proxies,
    start_server,
    system_user,
)
