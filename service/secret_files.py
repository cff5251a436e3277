"""Secrets mounted as files follow their rotation: a new DSN or token takes effect without a restart.

Kubernetes updates a Secret volume in place (an atomic swap of the ``..data`` link) a minute or so
after the Secret changes. Every ``FASTERDB_SECRET_RELOAD_INTERVAL`` seconds the sidecar reads the
``FASTERDB_*_FILE`` files it was started with; when their content changed it reads its settings
again exactly as at start (``load_settings``: the same checks, one-line errors) and applies what
changed: the admin token at once, a DSN to its pool (new connections use it; the pool's connections
are replaced as they come back; the monitor connection at its next check), the log mask. A changed
file that does not make valid settings is reported once and ignored: the running values stay.
Adding or removing a replica needs a restart (the pools are fixed at start) and is reported so.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from fasterdb.pools.databases import Databases
from fasterdb.tasks import cancel_and_wait

from .auth import AdminAuth
from .logs import add_secrets
from .settings import ENV_PREFIX, SECRET_FIELDS, ConfigError, Settings, secrets_of

log = logging.getLogger("fasterdb.secrets")


def secret_files(environ: Mapping[str, str]) -> list[Path]:
    """The files the secret settings were read from (``FASTERDB_X_FILE``)."""
    return [Path(environ[var]) for f in SECRET_FIELDS if (var := f"{ENV_PREFIX}{f.upper()}_FILE") in environ]


def fingerprint(paths: list[Path]) -> str:
    """What the files hold now (a missing or unreadable file counts as such, not as an error)."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            digest.update(path.read_bytes())
        except OSError as exc:
            digest.update(f"<{exc.errno}>".encode())
        digest.update(b"\0")
    return digest.hexdigest()


class SecretFiles:
    """Watches the secret files; applies changed secrets to the running sidecar."""

    def __init__(
        self,
        current: Settings,
        load: Callable[[], Settings],
        databases: Databases,
        auth: AdminAuth,
        interval: float,
        environ: Mapping[str, str] = os.environ,
        on_dsns: Callable[[Settings], Awaitable[None]] | None = None,
    ) -> None:
        self.on_dsns = on_dsns  # the connections outside the pools (fence, acknowledgement) follow too
        self.current = current
        self.load = load
        self.databases = databases
        self.auth = auth
        self.interval = interval
        self.paths = secret_files(environ)
        self._seen = fingerprint(self.paths)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Watch (nothing to do without secret files or with an interval of 0)."""
        if self.paths and self.interval > 0:
            self._task = asyncio.create_task(self._run(), name="secret-files")

    async def stop(self) -> None:
        """Stop watching."""
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # never let the watcher die: the running secrets stay
                log.exception("checking the secret files failed; continuing")

    async def check(self) -> bool:
        """Apply the files' secrets if they changed; True when something was applied."""
        seen = fingerprint(self.paths)
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            new = self.load()
        except ConfigError as exc:
            log.warning("a secret file changed but its settings are not valid (%s); keeping the running ones", exc)
            return False
        applied = await self.apply(new)
        self.current = new
        return applied

    async def apply(self, new: Settings) -> bool:
        """Every secret of ``new`` that differs from the running one, applied."""
        old, changed = self.current, []
        add_secrets(*secrets_of(new))
        old_token = old.admin_token.get_secret_value() if old.admin_token is not None else None
        new_token = new.admin_token.get_secret_value() if new.admin_token is not None else None
        if new_token != old_token:
            self.auth.replace(new.admin_token)
            changed.append("FASTERDB_ADMIN_TOKEN")
        if new.primary_dsn.get_secret_value() != old.primary_dsn.get_secret_value():
            await self.databases.primary.replace_dsn(new.primary_dsn.get_secret_value())
            changed.append("FASTERDB_PRIMARY_DSN")
        old_replicas = {r.name: r.dsn.get_secret_value() for r in old.replica_dsns}
        new_replicas = {r.name: r.dsn.get_secret_value() for r in new.replica_dsns}
        if set(old_replicas) != set(new_replicas):
            log.warning(
                "FASTERDB_REPLICA_DSNS names other replicas now (%s); restart the sidecar to add or remove pools",
                ", ".join(sorted(set(old_replicas) ^ set(new_replicas))),
            )
        for name in sorted(set(old_replicas) & set(new_replicas)):
            pool = self.databases.named(name)
            if new_replicas[name] != old_replicas[name] and pool is not None:
                await pool.replace_dsn(new_replicas[name])
                changed.append(f"FASTERDB_REPLICA_DSNS ({name})")
        if self.on_dsns is not None and any(c.startswith(("FASTERDB_PRIMARY", "FASTERDB_REPLICA")) for c in changed):
            await self.on_dsns(new)
        if changed:
            log.info("rotated secrets applied: %s", ", ".join(changed))
        return bool(changed)
