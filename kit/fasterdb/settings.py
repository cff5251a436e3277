"""The kit's settings: the sidecar's FASTERDB_* names where they mean the same thing, plus its own.

Read by ``Database.from_env()`` with the same ``*_FILE`` rules as the sidecar (``fasterdb.env``).
A bad value is one line naming the variable (``ConfigError``), never the secret.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from fasterdb.dsn import DsnError, parse_dsn
from fasterdb.env import EnvError, parse_replica_dsns, read_secret
from fasterdb.sizes import SizeError, parse_size

SpillPolicy = Literal["reject", "stale"]
_APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$")


class ConfigError(ValueError):
    """A setting that cannot be used; one line, never a secret."""


@dataclass(frozen=True)
class KitSettings:
    """Everything the kit reads from its environment (README: "Using it from your application")."""

    primary_dsn: str = field(repr=False)
    replica_dsns: list[tuple[str, str]] = field(default_factory=list, repr=False)
    app_name: str = "app"
    sidecar_url: str | None = "http://127.0.0.1:8080"  # None: no sidecar (every read goes to the primary)
    read_after_key: bytes | None = field(default=None, repr=False)
    pool_min_size: int = 1
    pool_max_size: int = 10
    command_timeout: float = 30.0
    connect_timeout: float = 5.0
    acquire_timeout: float = 5.0
    read_max_lag_seconds: float = 2.0
    read_max_lag_bytes: int = 16 * 1024**2
    sidecar_interval: float = 0.5  # seconds between the sidecar's lag view refreshes (and pool reports)
    knowledge_max_age: float = 5.0  # a lag view older than this is no view: reads go to the primary
    read_after_wait: float = 0.25  # a read carrying a token waits this long for a replica to catch up
    spill_max_share: float = 0.5  # at most this share of reads goes to the primary because replicas lag
    spill_policy: SpillPolicy = "reject"  # past it: 503 (reject), or the freshest replica (stale)
    write_hold_seconds: float = 10.0  # a write waits this long for a writable primary during a switchover
    transaction_budget: float = 10.0  # Database.run(): every try and wait of a transaction within this

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KitSettings:
        """Read FASTERDB_* (and *_FILE for secrets); ConfigError with one line on a bad value."""
        env = os.environ if environ is None else environ
        try:
            return cls._read(env)
        except (EnvError, DsnError, SizeError) as exc:
            raise ConfigError(str(exc)) from None

    @classmethod
    def _read(cls, env: Mapping[str, str]) -> KitSettings:
        primary = read_secret("FASTERDB_PRIMARY_DSN", env, optional=False)
        if not primary:
            raise ConfigError("FASTERDB_PRIMARY_DSN: required but not set")
        try:
            parse_dsn(primary)
        except DsnError as exc:
            raise ConfigError(f"FASTERDB_PRIMARY_DSN: {exc}") from None
        try:
            replicas = parse_replica_dsns(read_secret("FASTERDB_REPLICA_DSNS", env, optional=True) or "")
        except EnvError as exc:
            raise ConfigError(f"FASTERDB_REPLICA_DSNS: {exc}") from None
        key = read_secret("FASTERDB_READ_AFTER_KEY", env, optional=True)
        if key is not None and len(key) < 16:
            raise ConfigError("FASTERDB_READ_AFTER_KEY is too short: use at least 16 characters")
        app_name = env.get("FASTERDB_APP_NAME", "app")
        if not _APP_NAME.match(app_name):
            raise ConfigError("FASTERDB_APP_NAME: 1-40 letters, digits, '.', '_', ':' or '-'")
        url = env.get("FASTERDB_SIDECAR_URL", "http://127.0.0.1:8080").strip()
        if url and not re.match(r"^http://[^/?#]+/?$", url):
            raise ConfigError("FASTERDB_SIDECAR_URL: an http://host:port URL (the pod's sidecar over loopback)")
        policy = env.get("FASTERDB_READ_SPILL_POLICY", "reject")
        if policy not in ("reject", "stale"):
            raise ConfigError("FASTERDB_READ_SPILL_POLICY: reject or stale")
        settings = cls(
            primary_dsn=primary,
            replica_dsns=replicas,
            app_name=app_name,
            sidecar_url=url.rstrip("/") or None,
            read_after_key=key.encode() if key is not None else None,
            pool_min_size=_int(env, "FASTERDB_POOL_MIN_SIZE", 1, 0, 1000),
            pool_max_size=_int(env, "FASTERDB_POOL_MAX_SIZE", 10, 1, 1000),
            command_timeout=_seconds(env, "FASTERDB_COMMAND_TIMEOUT", 30.0),
            connect_timeout=_seconds(env, "FASTERDB_CONNECT_TIMEOUT", 5.0),
            acquire_timeout=_seconds(env, "FASTERDB_ACQUIRE_TIMEOUT", 5.0),
            read_max_lag_seconds=_seconds(env, "FASTERDB_READ_MAX_LAG_SECONDS", 2.0, zero=True),
            read_max_lag_bytes=parse_size(env.get("FASTERDB_READ_MAX_LAG_BYTES", "16MB")),
            sidecar_interval=_seconds(env, "FASTERDB_SIDECAR_INTERVAL", 0.5, upper=60),
            knowledge_max_age=_seconds(env, "FASTERDB_READ_KNOWLEDGE_MAX_AGE", 5.0),
            read_after_wait=_seconds(env, "FASTERDB_READ_AFTER_WAIT", 0.25, zero=True, upper=10),
            spill_max_share=_fraction(env, "FASTERDB_READ_SPILL_MAX_SHARE", 0.5),
            spill_policy=policy,  # type: ignore[arg-type]  # checked above
            write_hold_seconds=_seconds(env, "FASTERDB_WRITE_HOLD_SECONDS", 10.0, zero=True),
            transaction_budget=_seconds(env, "FASTERDB_TRANSACTION_BUDGET", 10.0),
        )
        if settings.pool_min_size > settings.pool_max_size:
            raise ConfigError("FASTERDB_POOL_MIN_SIZE is larger than FASTERDB_POOL_MAX_SIZE")
        return settings


# Every variable the kit reads (the sidecar does not warn about these as typos).
KIT_VARIABLES = frozenset(
    {
        "FASTERDB_SIDECAR_URL",
        "FASTERDB_APP_NAME",
        "FASTERDB_READ_AFTER_KEY",
        "FASTERDB_READ_AFTER_KEY_FILE",
        "FASTERDB_READ_MAX_LAG_SECONDS",
        "FASTERDB_READ_MAX_LAG_BYTES",
        "FASTERDB_SIDECAR_INTERVAL",
        "FASTERDB_READ_KNOWLEDGE_MAX_AGE",
        "FASTERDB_READ_AFTER_WAIT",
        "FASTERDB_READ_SPILL_MAX_SHARE",
        "FASTERDB_READ_SPILL_POLICY",
        "FASTERDB_WRITE_HOLD_SECONDS",
        "FASTERDB_TRANSACTION_BUDGET",
    }
)


def _number(env: Mapping[str, str], var: str, default: float) -> float:
    raw = env.get(var)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{var}: not a number: {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{var}: not a finite number")
    return value


def _seconds(env: Mapping[str, str], var: str, default: float, *, zero: bool = False, upper: float = 86400) -> float:
    value = _number(env, var, default)
    if value < 0 or (value == 0 and not zero) or value > upper:
        low = "0" if zero else "more than 0"
        raise ConfigError(f"{var}: seconds from {low} to {upper:g}")
    return value


def _fraction(env: Mapping[str, str], var: str, default: float) -> float:
    value = _number(env, var, default)
    if not 0 <= value <= 1:
        raise ConfigError(f"{var}: a fraction from 0 to 1")
    return value


def _int(env: Mapping[str, str], var: str, default: int, low: int, high: int) -> int:
    raw = env.get(var)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ConfigError(f"{var}: a whole number from {low} to {high}")
    return int(raw)
