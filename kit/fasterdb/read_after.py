"""Read-after tokens: a committed write's WAL position, integrity-protected, for reads on any pod.

A token is ``v1.<position>.<expires>.<mac>``: the WAL position (hex) that a server must have
replayed for the write to be visible there, when the token stops counting (epoch seconds), and an
HMAC-SHA256 (first 16 bytes, base64url) over both with ``FASTERDB_READ_AFTER_KEY``, which the
application's pods share. A token that does not verify or has expired is ignored: the read is
routed as if it carried none. That is safe because the lifetime (``TOKEN_SECONDS``) is far longer
than any staleness budget: a replica within its budget has replayed every write older than that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time

VERSION = "v1"
TOKEN_SECONDS = 300  # a token's lifetime; must exceed every read's staleness budget
MAX_TOKEN_LENGTH = 200  # longer header values are not parsed at all


class ReadAfter:
    """Issues and verifies read-after tokens with one key."""

    def __init__(self, key: bytes | None, clock: object = time.time) -> None:
        # No key: one made up for this process, so read-your-writes holds within it (and the
        # application logs that it does not across pods).
        self.shared = key is not None
        self._key = key if key is not None else os.urandom(32)
        self._clock = clock

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, position: int, now: float | None = None) -> str:
        """The token for a write whose commit ends at WAL byte ``position``."""
        expires = int((self._clock() if now is None else now) + TOKEN_SECONDS)  # type: ignore[operator]
        body = f"{VERSION}.{position:x}.{expires}"
        return f"{body}.{self._mac(body)}"

    def verify(self, token: str | None, now: float | None = None) -> int | None:
        """The WAL position ``token`` carries, or None when it is absent, forged, malformed or expired."""
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            return None  # (hmac.compare_digest refuses non-ASCII text: a client's bytes, never ours)
        body, _, mac = token.strip().rpartition(".")
        parts = body.split(".")
        if len(parts) != 3 or parts[0] != VERSION or not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            position, expires = int(parts[1], 16), int(parts[2])
        except ValueError:
            return None
        if expires < (self._clock() if now is None else now):  # type: ignore[operator]
            return None
        return position
