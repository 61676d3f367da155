"""The Secret type and the log filter keep secrets out of text."""

from __future__ import annotations

import logging
import pickle

import pytest

from stockup.credentials import Credentials
from stockup.secret import RedactingFilter, Secret, redact


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


def test_journal_never_stores_a_secret(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    from stockup.journal import Journal
    from stockup.results import FileResult, Status

    Secret("echoed-by-a-server-pw")
    journal = Journal(Path(str(tmp_path)) / "j.sqlite3")
    journal.start_attempt("a", "x.jpg", "/x.jpg", "00", 1)
    journal.finish("a", "x.jpg", Status.FAILED, "530 bad login echoed-by-a-server-pw")
    journal.record(
        "r", FileResult("/x.jpg", "a", "x.jpg", Status.FAILED, error="echoed-by-a-server-pw")
    )
    journal.close()
    raw = b"".join(p.read_bytes() for p in Path(str(tmp_path)).glob("j.sqlite3*"))
    assert b"echoed-by-a-server-pw" not in raw


def test_redaction_masks_whole_secrets_not_pieces_of_words() -> None:
    Secret("short")
    assert redact("short_4k_clip.mp4 and shorter") == "short_4k_clip.mp4 and shorter"
    assert redact("530 PASS short rejected") == "530 PASS *** rejected"


def test_server_replies_are_redacted_where_the_error_is_made() -> None:
    from stockup.transports.ftp import reply_error

    Secret("echoed-pw-9")
    error = reply_error("530 Login incorrect for echoed-pw-9", "login")
    assert "echoed-pw-9" not in str(error) and "***" in str(error)


def test_tracebacks_are_redacted_too() -> None:
    import io

    from stockup.secret import RedactingFormatter

    Secret("in-a-traceback-pw")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(message)s"))
    logger = logging.getLogger("stockup.test.traceback")
    logger.addHandler(handler)
    try:
        raise RuntimeError("server said in-a-traceback-pw")
    except RuntimeError:
        logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert "in-a-traceback-pw" not in stream.getvalue() and "server said ***" in stream.getvalue()
