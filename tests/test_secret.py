"""The Secret type and the log filter keep secrets out of text."""

from __future__ import annotations

import logging
import pickle

import pytest

from stockup.secret import RedactingFilter, Secret, redact
from stockup.vault import Credentials


def test_secret_never_prints() -> None:
    secret = Secret("hunter2-long-secret")
    for text in (
        str(secret),
        repr(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>30}",
        repr(Credentials("user", secret)),
        repr([secret]),
    ):
        assert "hunter2" not in text
        assert "***" in text
    assert secret.reveal() == "hunter2-long-secret"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_log_filter_redacts_plain_copies(caplog: pytest.LogCaptureFixture) -> None:
    Secret("plain-copy-of-a-password")
    logger = logging.getLogger("stockup.test")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="stockup.test"):
        logger.info("server said: %s", "530 bad password plain-copy-of-a-password")
    assert "plain-copy-of-a-password" not in caplog.text
    assert "530 bad password ***" in caplog.text
    assert redact("x plain-copy-of-a-password y") == "x *** y"
