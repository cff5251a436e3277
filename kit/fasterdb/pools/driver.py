"""Translation of driver and network errors into short categories and our error hierarchy."""

from __future__ import annotations

import asyncio
import socket
import ssl

import asyncpg

from fasterdb.errors import DatabaseError, DatabaseUnavailable, ServiceError

# Everything the driver and the network raise. InternalClientError: asyncpg's protocol state
# machine giving up on a connection that broke mid-operation (e.g. a backend terminated during
# ROLLBACK) — a lost connection for our purposes.
DRIVER_ERRORS = (asyncpg.PostgresError, OSError, asyncpg.InterfaceError, asyncpg.InternalClientError, TimeoutError)

# Errors after which the same operation may simply be tried again (on a new connection).
RETRYABLE_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "57P01",  # admin_shutdown (pg_terminate_backend)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now
    "08000",
    "08003",
    "08006",  # connection exceptions
}


def classify(exc: BaseException) -> str:
    """A short, credential-free category for an error met while talking to PostgreSQL."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | asyncpg.QueryCanceledError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return "authentication failed"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return "database does not exist"
    if isinstance(exc, asyncpg.TooManyConnectionsError):
        return "too many connections"
    if isinstance(exc, asyncpg.CannotConnectNowError):
        return "database starting up or shutting down"
    if isinstance(exc, asyncpg.AdminShutdownError | asyncpg.CrashShutdownError):
        return "connection terminated"
    if isinstance(exc, asyncpg.ReadOnlySQLTransactionError | asyncpg.TargetServerAttributeNotMatched):
        return "not primary"  # a read-only server, or no host of the DSN takes writes
    if isinstance(exc, socket.gaierror):
        return "host not found"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls certificate verify failed"  # an untrusted CA (sslrootcert) or a host name the certificate lacks
    if isinstance(exc, ssl.SSLError):
        return "tls error"
    if isinstance(
        exc,
        asyncpg.ConnectionDoesNotExistError
        | asyncpg.PostgresConnectionError
        | ConnectionError
        | asyncpg.InterfaceError
        | asyncpg.InternalClientError,
    ):
        return "connection lost"
    if isinstance(exc, OSError):
        return "network error"
    if isinstance(exc, asyncpg.SerializationError):
        return "serialization failure"
    if isinstance(exc, asyncpg.DeadlockDetectedError):
        return "deadlock"
    if isinstance(exc, DatabaseUnavailable):
        return exc.category
    if isinstance(exc, asyncpg.PostgresError):
        return "database error"
    return "error"


def is_retryable(exc: BaseException) -> bool:
    """Whether the failed operation can safely be run again from the start on another connection."""
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        return True
    return isinstance(exc, DatabaseUnavailable) or (
        not isinstance(exc, asyncpg.PostgresError | ServiceError)
        and isinstance(
            exc, ConnectionError | OSError | asyncpg.InterfaceError | asyncpg.InternalClientError | TimeoutError
        )
    )


def translate(exc: BaseException, pool: str) -> ServiceError:
    """Our error for a driver error: unavailable (503, retry) or a plain database error (500)."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, asyncpg.UndefinedTableError | asyncpg.InvalidSchemaNameError):
        return ServiceError(
            "the sidecar's tables do not exist yet: run POST /admin/migrate (fasterdb-admin db migrate)",
            code="schema_not_migrated",
            status=503,
        )
    if is_retryable(exc) or isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
        return DatabaseUnavailable(classify(exc), pool=pool)
    return DatabaseError(f"the {pool} database refused the operation ({classify(exc)})")


def terminate(conn: asyncpg.Connection) -> None:
    """Close the connection at once (no round trip); nothing to do when it is gone already."""
    try:
        conn.terminate()
    except asyncpg.InterfaceError:
        pass  # released already: the proxy refuses it (the connection may be another request's now)
