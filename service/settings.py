"""The sidecar's only Settings class: environment ``FASTERDB_*``, ``*_FILE`` for secrets, fail fast."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from fasterdb.dsn import Dsn, DsnError, parse_dsn
from fasterdb.env import EnvError, parse_replica_dsns
from fasterdb.sizes import SizeError, parse_size

ENV_PREFIX = "FASTERDB_"
# Settings that hold secrets and may be given as FASTERDB_X_FILE instead of FASTERDB_X.
SECRET_FIELDS = ("primary_dsn", "replica_dsns", "admin_token")
# Of those, the ones a Kubernetes Secret may leave out (see load_settings).
OPTIONAL_SECRET_FIELDS = ("replica_dsns", "admin_token")


class ConfigError(Exception):
    """Invalid configuration; the message is one line and never contains a secret."""


@dataclass(frozen=True)
class NamedDSN:
    """A pool's name and its DSN; the DSN never appears in repr() or str()."""

    name: str
    dsn: SecretStr

    def __repr__(self) -> str:
        return f"NamedDSN(name={self.name!r}, dsn='**********')"


def _tls_problem(dsn: Dsn) -> str | None:
    """Why the TLS files a DSN names cannot work, or None: checked at start, not at the first connect.

    The driver opens them only when it connects, and a missing one then reads as a vague
    "network error" on every attempt. Paths are used as written (no '~'), like the driver does.
    """
    for name, path in dsn.ssl_files.items():
        if name == "sslrootcert" and path == "system":
            return (
                "sslrootcert=system (libpq's system CA store) is not supported by the driver (asyncpg): "
                "name a CA bundle file, e.g. /etc/ssl/certs/ca-certificates.crt"
            )
        if not os.path.exists(path):
            return f"{name} file {path} does not exist"
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            return f"{name} file {path} is not a readable file"
    # Without sslrootcert the driver tries PGSSLROOTCERT, then ~/.postgresql/root.crt.
    default_ca = os.environ.get("PGSSLROOTCERT") or Path.home() / ".postgresql" / "root.crt"
    verifies = dsn.sslmode in ("verify-ca", "verify-full")
    if verifies and "sslrootcert" not in dsn.ssl_files and not Path(default_ca).is_file():
        return f"sslmode={dsn.sslmode} needs sslrootcert=/path/to/ca.pem (the server's CA certificate or bundle)"
    return None


def _check_dsn(dsn: str, what: str) -> str:
    dsn = dsn.strip()
    if not dsn:
        raise ValueError(f"{what}empty")
    try:
        problem = _tls_problem(parse_dsn(dsn))
    except DsnError as exc:
        raise ValueError(f"{what}{exc}") from None
    if problem is not None:
        raise ValueError(what + problem)
    return dsn


def _parse_primary(value: Any) -> Any:
    if isinstance(value, str):
        return SecretStr(_check_dsn(value, ""))
    return value


def _parse_replicas(value: Any) -> Any:
    """``name=dsn`` items separated by commas or newlines (a Secret file: one per line); a DSN may
    name several hosts (``h1,h2``): the list is read by the kit's ``parse_replica_dsns``, which keeps
    a multi-host DSN's host list whole, so errors name only the replicas that were configured."""
    if value is None:
        return []
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        return value
    try:
        items = parse_replica_dsns(value)
    except EnvError as exc:
        raise ValueError(str(exc)) from None
    return [NamedDSN(name, SecretStr(_check_dsn(dsn, f"replica {name!r}: "))) for name, dsn in items]


def _parse_byte_size(value: Any) -> Any:
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return parse_size(value)
        except SizeError as exc:
            raise ValueError(str(exc)) from None
    return value


ByteSize = Annotated[int, BeforeValidator(_parse_byte_size), Field(ge=0)]
Seconds = Annotated[float, Field(gt=0, le=86400)]


class Settings(BaseSettings):
    """Everything the sidecar reads from its environment (see CONTRACT.md)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    primary_dsn: Annotated[SecretStr, BeforeValidator(_parse_primary)]
    replica_dsns: Annotated[list[NamedDSN], NoDecode, BeforeValidator(_parse_replicas)] = []
    host: str = "0.0.0.0"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    # The sidecar keeps no pooled connection open by itself (probes, scrapes and the database view
    # use each pool's one monitor connection); maintenance borrows up to the max and gives back.
    pool_min_size: Annotated[int, Field(ge=0, le=1000)] = 0
    pool_max_size: Annotated[int, Field(ge=1, le=1000)] = 10
    command_timeout: Seconds = 30.0
    connect_timeout: Seconds = 5.0
    acquire_timeout: Seconds = 5.0
    max_inactive_connection_lifetime: Annotated[float, Field(ge=0, le=86400)] = 30.0
    health_timeout: Annotated[float, Field(ge=0.05, le=60)] = 1.0
    # 0.1 s: a frozen primary shows as 503 within TTL + timeout (~1.05 s), at ~10 checks/s per pool
    # while probes come continuously (none while nobody asks).
    health_cache_ttl: Annotated[float, Field(ge=0, le=60)] = 0.1
    # Seconds one catalog view (/db/*, the fasterdb_pg_* metrics) serves every caller.
    catalog_cache_ttl: Annotated[float, Field(ge=0, le=3600)] = 5.0
    max_lag_bytes: ByteSize = 16 * 1024**2
    max_lag_seconds: Annotated[float, Field(ge=0, le=86400)] = 10.0
    admin_token: SecretStr | None = None
    schema_name: Annotated[str, Field(validation_alias="FASTERDB_SCHEMA", pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = (
        "fasterdb"
    )
    job_max_replica_lag_bytes: ByteSize = 64 * 1024**2
    job_max_pool_waiting: Annotated[int, Field(ge=0, le=100000)] = 4
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    # After SIGTERM: readiness is 503 at once; requests are still served for at least
    # drain_min_seconds (while endpoints update), then in-flight ones get shutdown_timeout seconds
    # (fractions honoured; 0: none) before they are cut off with a JSON 503.
    drain_min_seconds: Annotated[float, Field(ge=0, le=3600)] = 0.0
    shutdown_timeout: Annotated[float, Field(ge=0, le=3600)] = 10.0
    # /health/startup: also wait until the primary has answered once (default: until every pool's
    # first connection attempt has finished, whatever its outcome).
    startup_require_primary: bool = False
    # Seconds between background checks of every pool and of replica lag (0: only on request).
    # Keeps /metrics, /pools and the lag history fresh without any request path querying.
    monitor_interval: Annotated[float, Field(ge=0, le=3600)] = 5.0
    # A job's lease: a sidecar that dies holding a job releases it after this many seconds.
    job_lease_seconds: Annotated[float, Field(ge=1, le=3600)] = 15.0
    # How often an idle worker looks for jobs submitted through other sidecars (one submitted
    # through this one wakes it at once); false: no worker here at all (no polling).
    job_poll_interval: Annotated[float, Field(gt=0, le=60)] = 5.0
    jobs_enabled: bool = True
    # Jobs gate on a replica-lag measurement no older than this (taken before the first batch and
    # between batches), and on what to do when a replica's lag is unknown (down, timing out).
    job_lag_max_age: Annotated[float, Field(ge=0, le=60)] = 0.25
    job_unknown_lag: Literal["throttle", "ignore"] = "throttle"
    # A transfer (every try of it, the waits for a connection included) answers within this.
    retry_budget: Annotated[float, Field(gt=0, le=3600)] = 10.0
    # Seconds between looks at the FASTERDB_*_FILE secrets (a rotated DSN or token applies without
    # a restart); 0: read once at start.
    secret_reload_interval: Annotated[float, Field(ge=0, le=3600)] = 10.0
    # HTTP bounds. A request line and headers over max_request_head_bytes: 431 and the connection
    # closed, read no further. Open Server-Sent Event streams (/pools/stream, /status/stream) over
    # max_streams: 503 too_many_streams.
    max_request_head_bytes: Annotated[ByteSize, Field(ge=1024, le=1024**2)] = 32 * 1024
    max_streams: Annotated[int, Field(ge=1, le=10000)] = 64

    # The split-brain fence (README "Split brain"): seconds between looks at every host's role
    # (0: off), and whether /health/db turns 503 while it holds (unready) or only reports it (ready).
    split_brain_check_interval: Annotated[float, Field(ge=0, le=60)] = 0.25
    split_brain_readiness: Literal["unready", "ready"] = "unready"
    # A transfer is acknowledged once this many standbys have flushed its COMMIT (replica), or at
    # COMMIT (primary); auto: replica when a failover is possible (replicas configured or a
    # multi-host primary DSN), else primary. Past the timeout: 503 not_replicated (retry the key).
    transfer_ack: Literal["auto", "replica", "primary"] = "auto"
    transfer_ack_timeout: Seconds = 5.0
    transfer_ack_standbys: Annotated[int, Field(ge=1, le=32)] = 1

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError(
                f"FASTERDB_POOL_MIN_SIZE ({self.pool_min_size}) is larger than "
                f"FASTERDB_POOL_MAX_SIZE ({self.pool_max_size})"
            )
        if self.admin_token is not None and len(self.admin_token.get_secret_value()) < 16:
            raise ValueError("FASTERDB_ADMIN_TOKEN is too short: use at least 16 characters")
        return self


def ack_mode(settings: Settings) -> Literal["replica", "primary"]:
    """FASTERDB_TRANSFER_ACK resolved: ``auto`` is ``replica`` wherever a failover is possible."""
    if settings.transfer_ack != "auto":
        return settings.transfer_ack
    failover = bool(settings.replica_dsns) or len(parse_dsn(settings.primary_dsn.get_secret_value()).hosts) > 1
    return "replica" if failover else "primary"


def _env_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0]) if loc else ""
    if field.startswith(ENV_PREFIX):
        return field
    return ENV_PREFIX + ("SCHEMA" if field == "schema_name" else field.upper())


def _one_line(exc: ValidationError, environ: Mapping[str, str] | None = None) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required but not set"
            # A variable of ours that nothing reads, spelled almost like the missing one: a typo.
            name = _env_name(err.get("loc", ()))
            close = difflib.get_close_matches(name, unknown_variables(environ or {}), n=1, cutoff=0.8)
            if close:
                msg += f" ({close[0]} is set: a typo?)"
        loc = err.get("loc", ())
        parts.append(f"{_env_name(loc)}: {msg}" if loc else msg)
    return "; ".join(parts).replace("\n", " ")


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from the environment, reading ``FASTERDB_X_FILE`` for the secret settings.

    Raises ConfigError with one line that names the variable and never shows a secret.
    """
    values: dict[str, Any] = {}
    for field in SECRET_FIELDS:
        var = ENV_PREFIX + field.upper()
        file_var = var + "_FILE"
        if file_var in os.environ:
            if var in os.environ:
                raise ConfigError(f"set {var} or {file_var}, not both")
            path = Path(os.environ[file_var])
            if field in OPTIONAL_SECRET_FIELDS and not path.exists() and path.parent.is_dir():
                # A Secret volume leaves out a key the Secret does not have (optional: true):
                # the setting is simply not set. A path in a missing directory is still an error.
                continue
            try:
                values[field] = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{file_var}: cannot read {path}: {exc.strerror or exc}") from None
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, os.environ)) from None


# Variables with our prefix that belong to the admin CLI, not to the sidecar.
_CLI_VARIABLES = {"FASTERDB_URL"}


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Names of ``FASTERDB_*`` variables that no setting reads (most likely typos)."""
    known = {_env_name((name,)) for name in Settings.model_fields} | _CLI_VARIABLES
    known |= {_env_name((name,)) + "_FILE" for name in SECRET_FIELDS}
    return sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """Every password (as written and as the driver decodes it) and the token, for the log mask."""
    found: list[str] = []
    for dsn in [settings.primary_dsn, *(r.dsn for r in settings.replica_dsns)]:
        found.extend(parse_dsn(dsn.get_secret_value()).secrets)
    if settings.admin_token is not None:
        found.append(settings.admin_token.get_secret_value())
    return tuple(found)
