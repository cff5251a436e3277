"""Scrubbing of credentials from any text that may reach a log line or a response."""

from __future__ import annotations

import re

# postgresql://user:secret@host  ->  postgresql://***@host   (any scheme, any userinfo)
_URL_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"]*@")
# password=secret, password: secret, PGPASSWORD=secret, "password": "secret"
_KEYWORD = re.compile(r"""(?i)(\b(?:pg)?pass(?:word)?\b["']?\s*[=:]\s*["']?)[^\s,;'"&]+""")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


def redact(text: str, *secrets: str) -> str:
    """Return ``text`` with URL credentials, password=… pairs, bearer tokens and ``secrets`` masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _URL_USERINFO.sub(r"\1***@", text)
    text = _KEYWORD.sub(r"\1***", text)
    return _BEARER.sub(r"\1***", text)
