"""Bearer-token authentication of the admin endpoints."""

from __future__ import annotations

import hmac

from FasterAPI import Request
from pydantic import SecretStr

from fasterdb.errors import Forbidden, Unauthorized


class AdminAuth:
    """Checks ``Authorization: Bearer <FASTERDB_ADMIN_TOKEN>`` in constant time."""

    def __init__(self, token: SecretStr | None) -> None:
        self.replace(token)

    def replace(self, token: SecretStr | None) -> None:
        """Use ``token`` from now on (a rotated Secret); None turns the admin endpoints off."""
        self._token = token.get_secret_value().encode() if token is not None else None

    @property
    def enabled(self) -> bool:
        """Whether a token is configured (admin endpoints refuse everything otherwise)."""
        return self._token is not None

    def check(self, request: Request) -> None:
        """Raise Forbidden (no token configured) or Unauthorized (missing or wrong token)."""
        if self._token is None:
            raise Forbidden(
                "admin endpoints are disabled: set FASTERDB_ADMIN_TOKEN (or FASTERDB_ADMIN_TOKEN_FILE) "
                "on the sidecar to enable them",
                code="admin_disabled",
            )
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise Unauthorized("this endpoint needs the header 'Authorization: Bearer <admin token>'")
        if not hmac.compare_digest(presented.strip().encode(), self._token):
            raise Unauthorized("the bearer token is not valid", code="invalid_token")

    def identifies(self, request: Request) -> bool:
        """Whether the request carries the admin token (optional here: absent is False, wrong is 401).

        For endpoints that show more to an operator (user names, client addresses) but serve
        everyone the rest.
        """
        if not request.headers.get("authorization"):
            return False
        self.check(request)
        return True
