import logging

import pytest

from fasterdb_sidecar.logs import JsonFormatter, RedactingFilter
from fasterdb_sidecar.redact import redact


@pytest.mark.parametrize(
    "text",
    [
        "connect to postgresql://app:hunter22@db:5432/x failed",
        "postgres://app:hunter22@db/x",
        "host=db password=hunter22 user=app",
        "PGPASSWORD=hunter22 psql",
        '{"password": "hunter22"}',
        "Authorization: Bearer hunter22",
    ],
)
def test_credentials_are_masked(text: str) -> None:
    out = redact(text)
    assert "hunter22" not in out
    assert "***" in out


def test_known_secret_masked_anywhere() -> None:
    assert "tok-abcdef123" not in redact("weird tok-abcdef123 place", "tok-abcdef123")


def test_filter_masks_message_args_and_traceback() -> None:
    try:
        raise RuntimeError("boom postgresql://u:topsecret1@h/db")
    except RuntimeError:
        record = logging.LogRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "dsn %s",
            ("postgresql://u:topsecret1@h/db",),
            exc_info=__import__("sys").exc_info(),
        )
    RedactingFilter(("topsecret1",)).filter(record)
    line = JsonFormatter().format(record)
    assert "topsecret1" not in line
    assert "Traceback" in line and "RuntimeError" in line


def test_configure_logging_formats_and_masks(capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from fasterdb_sidecar.logs import configure_logging

    for fmt in ("json", "text"):
        configure_logging("info", fmt, secrets=("s3cret-token-value",))
        logging.getLogger("fasterdb.test").warning("token s3cret-token-value at postgresql://u:pw123@h/db")
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert "s3cret-token-value" not in err and "pw123" not in err
        if fmt == "json":
            assert json.loads(err)["level"] == "warning"
        else:
            assert "WARNING fasterdb.test:" in err
    logging.getLogger().handlers.clear()
