"""Test helpers: run the real ``fasterdb-sidecar`` process against the local cluster."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from service.devcluster import free_port

ROOT = Path(__file__).resolve().parent.parent


class SidecarProcess:
    """``python -m service`` on 127.0.0.1 with the given FASTERDB_* environment; logs kept in a file."""

    def __init__(self, env: dict[str, str], *, args: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FASTERDB_")}
        self.env.update({"FASTERDB_HOST": "127.0.0.1", "FASTERDB_PORT": str(self.port)})
        self.env.update(env)
        self.args = args or []
        self._log = tempfile.NamedTemporaryFile(prefix="sidecar-", suffix=".log", delete=False)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 20.0) -> SidecarProcess:
        """Start and wait until /health/live answers."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service", *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sidecar exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(self.url + "/health/live", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sidecar did not come up within {wait}s:\n{self.logs()}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait (then SIGKILL); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: the sidecar dies without any cleanup (like a node failure)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def logs(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        return Path(self._log.name).read_text(errors="replace")

    def get(self, path: str, timeout: float = 10.0, **kw: object) -> httpx.Response:
        """GET a path of this sidecar."""
        return httpx.get(self.url + path, timeout=timeout, **kw)  # type: ignore[arg-type]

    def __enter__(self) -> SidecarProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        Path(self._log.name).unlink(missing_ok=True)


@contextmanager
def silent_listener() -> Iterator[int]:
    """A TCP port that completes the handshake but never says a word: a hanging database."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                accepted.append(conn)  # keep it open, read nothing, answer nothing
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        sock.close()


def admin_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``fasterdb-admin`` as a separate process (exit codes, stdout and stderr separately)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FASTERDB_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", *args],
        env=full_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


class InProcessSidecar:
    """The real app under uvicorn in a background thread, with its Sidecar object at hand.

    Tests use it to reach inside the running app (hold pool connections, read counters) through
    ``call(coro_fn)``, which runs a coroutine on the server's own event loop.
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> InProcessSidecar:
        import asyncio

        import uvicorn

        from service.app import Sidecar, create_app
        from service.settings import load_settings

        saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("FASTERDB_")}
        try:
            os.environ.update(self.env)
            settings = load_settings(host="127.0.0.1", port=self.port)
        finally:
            for k in list(os.environ):
                if k.startswith("FASTERDB_"):
                    del os.environ[k]
            os.environ.update(saved)
        self.sidecar = Sidecar(settings)
        config = uvicorn.Config(
            create_app(settings, self.sidecar),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.server.serve())

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "in-process sidecar did not start"
            time.sleep(0.02)
        return self

    def call(self, fn, timeout: float = 30.0):  # type: ignore[no-untyped-def]
        """Run ``fn()`` (a coroutine function) on the server's loop; returns its result."""
        import asyncio

        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result(timeout)

    def submit(self, fn):  # type: ignore[no-untyped-def]
        """Start ``fn()`` on the server's loop without waiting; returns a concurrent Future."""
        import asyncio

        return asyncio.run_coroutine_threadsafe(fn(), self.loop)

    def get(self, path: str, timeout: float = 10.0) -> httpx.Response:
        """GET a path of this sidecar."""
        return httpx.get(self.url + path, timeout=timeout)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.loop.close()
