"""Multi-host DSNs the way libpq reads them: each host gets the connect timeout of its own.

asyncpg's connect timeout covers the whole host list: a first host that hangs (frozen,
partitioned: TCP neither answers nor refuses) uses all of it, and the failover the host list is
for never reaches the next host. So each host is tried in turn, each within the timeout, for the
wanted session attributes (``prefer-standby``: a standby first, then any). A host that refuses,
times out, is not what is wanted or cannot take connections now is passed over; an
authentication failure ends the attempt, as in libpq.
"""

from __future__ import annotations

from typing import Any

import asyncpg

# This host cannot serve the connection now: try the next one.
PASS_OVER = (
    OSError,
    TimeoutError,
    asyncpg.TargetServerAttributeNotMatched,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
)
DEFAULT_PORT = 5432


async def connect_each_host(hosts: list[tuple[str, int | None]], *args: Any, **kwargs: Any) -> asyncpg.Connection:
    """asyncpg.connect(*args, **kwargs), host by host when ``hosts`` names more than one."""
    if len(hosts) < 2:
        return await asyncpg.connect(*args, **kwargs)
    wanted = kwargs.pop("target_session_attrs", None) or "any"
    last: BaseException | None = None
    for attrs in ("standby", "any") if wanted == "prefer-standby" else (wanted,):
        for host, port in hosts:
            try:
                return await asyncpg.connect(
                    *args, host=host, port=port or DEFAULT_PORT, target_session_attrs=attrs, **kwargs
                )
            except PASS_OVER as exc:
                last = exc
    assert last is not None  # at least one host was tried
    raise last
