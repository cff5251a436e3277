"""Logging: JSON lines (default) or text, with credentials scrubbed from every record."""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any

from .redact import redact

# Attributes every LogRecord has; anything else was passed with extra= and is logged as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


class RedactingFilter(logging.Filter):
    """Masks DSN credentials, password=… pairs, bearer tokens and known secrets in a record."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact(record.getMessage(), *self.secrets)
        record.msg, record.args = message, None
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = redact(text.rstrip(), *self.secrets)
            record.exc_info = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value, *self.secrets))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_text:
            doc["exc"] = record.exc_text
        return json.dumps(doc, default=str)


def configure_logging(level: str = "info", fmt: str = "json", secrets: tuple[str, ...] = ()) -> None:
    """Send all logging (ours, uvicorn's, asyncpg's) to stderr through the redacting filter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # asyncpg logs a full traceback on every failed attempt to refill a pool during an outage; the
    # monitor already logs each pool going down and up, so keep only asyncpg's errors.
    logging.getLogger("asyncpg.pool").setLevel(logging.ERROR)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def add_secrets(*secrets: str) -> None:
    """Mask ``secrets`` too from now on (rotated passwords and tokens), in every configured handler."""
    for handler in logging.getLogger().handlers:
        for found in handler.filters:
            if isinstance(found, RedactingFilter):
                found.secrets = tuple(dict.fromkeys((*found.secrets, *(s for s in secrets if s))))
