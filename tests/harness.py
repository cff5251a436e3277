"""Test harness: the real sidecar (as a process or in this process), the CLI, and one polling helper."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx

from devtools.cluster import free_port

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "") -> T:
    """Poll ``condition`` until it returns something truthy (returned), or fail after ``timeout`` s.

    The one polling helper of the tests: a state change is awaited, never slept for.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout:g}s: {what or condition}")
        time.sleep(interval)


def clean_environ(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any FASTERDB_* variable, plus ``env``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("FASTERDB_")}
    full.update(env or {})
    return full


class SidecarProcess:
    """``python -m fasterdb_sidecar`` on 127.0.0.1 with the given FASTERDB_* environment; logs kept in a file.

    ``module``: what runs it (``devtools.local``: the sidecar on a throwaway cluster, as ``make run``).
    """

    def __init__(
        self,
        env: dict[str, str],
        *,
        args: list[str] | None = None,
        module: str = "fasterdb_sidecar",
        live: str = "/health/live",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = clean_environ({"FASTERDB_HOST": "127.0.0.1", "FASTERDB_PORT": str(self.port), **env})
        self.args = [a.replace("{port}", str(self.port)) for a in args or []]
        self.live_path = live
        self.module = module
        self._log = tempfile.NamedTemporaryFile(prefix="sidecar-", suffix=".log", delete=False)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 20.0) -> SidecarProcess:
        """Start and wait until /health/live answers."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

        def live() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"sidecar exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                return httpx.get(self.url + self.live_path, timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_for(live, wait, 0.02, f"{self.module} {self.live_path}")
        except AssertionError:
            self.stop()
            raise RuntimeError(f"sidecar did not come up within {wait}s:\n{self.logs()}") from None
        return self

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

    def client_ports(self) -> set[int]:
        """Local TCP ports of the process's open sockets (match pg_stat_activity.client_port)."""
        if self.proc is None:
            return set()
        inodes = set()
        for fd in Path(f"/proc/{self.proc.pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        ports = set()
        for line in Path(f"/proc/{self.proc.pid}/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].split(":")[1], 16))
        return ports

    def logs(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        return Path(self._log.name).read_text(errors="replace")

    def get(self, path: str, timeout: float = 10.0, **kw: Any) -> httpx.Response:
        """GET a path of this sidecar."""
        return httpx.get(self.url + path, timeout=timeout, **kw)

    def __enter__(self) -> SidecarProcess:
        # Started already (``SidecarProcess(env).start()`` then ``with``): a second start would
        # orphan the first process, which keeps the port and outlives the test run.
        if self.proc is not None and self.proc.poll() is None:
            return self
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        Path(self._log.name).unlink(missing_ok=True)


def example_app(env: dict[str, str], *, sidecar: SidecarProcess | None = None, name: str = "example") -> SidecarProcess:
    """The example application (``uvicorn main:app --app-dir deploy/examples/app``), not started yet.

    With ``sidecar``, the kit asks that sidecar for replica lag (FASTERDB_SIDECAR_URL); without, none.
    """
    app_env = {
        "FASTERDB_APP_NAME": name,
        "FASTERDB_SIDECAR_URL": sidecar.url if sidecar is not None else "",
        "FASTERDB_SIDECAR_INTERVAL": "0.1",
        **env,
    }
    args = ["main:app", "--app-dir", "deploy/examples/app", "--host", "127.0.0.1", "--port", "{port}"]
    args += ["--no-access-log", "--log-level", "warning"]
    return SidecarProcess(app_env, module="uvicorn", args=args)


class InProcessApp:
    """An ASGI app under uvicorn in a background thread, its objects at hand.

    Tests reach inside the running app (hold pool connections, read counters) through
    ``call(coro_fn)``, which runs a coroutine on the server's own event loop.
    """

    def __init__(self, app: Any = None) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def build(self) -> Any:
        """The ASGI app to serve (the one given, by default)."""
        return self.app

    def __enter__(self) -> Self:
        import uvicorn

        config = uvicorn.Config(
            self.build(), host="127.0.0.1", port=self.port, log_config=None, access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.server.serve())

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), 20, 0.01, "in-process app")
        if not self.thread.is_alive():
            raise RuntimeError("in-process app did not start")
        return self

    def call(self, fn: Callable[[], Coroutine[Any, Any, T]], timeout: float = 30.0) -> T:
        """Run ``fn()`` (a coroutine function) on the server's loop; returns its result."""
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result(timeout)

    def submit(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> Future[T]:
        """Start ``fn()`` on the server's loop without waiting; returns a concurrent Future."""
        return asyncio.run_coroutine_threadsafe(fn(), self.loop)

    def get(self, path: str, timeout: float = 10.0, **kw: Any) -> httpx.Response:
        """GET a path of this app."""
        return httpx.get(self.url + path, timeout=timeout, **kw)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.loop.close()


class InProcessSidecar(InProcessApp):
    """The real sidecar app in this process, with its Sidecar object at hand."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__()
        self.env = env

    def build(self) -> Any:
        """The sidecar's app from ``env`` (the process's own FASTERDB_* are set aside meanwhile)."""
        from fasterdb_sidecar.app import Sidecar, create_app
        from fasterdb_sidecar.settings import load_settings

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
        return create_app(settings, self.sidecar)


@dataclass
class CliResult:
    """What one run of ``fasterdb-admin`` did."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str | bytes | None = None) -> CliResult:
    """``fasterdb-admin <args>`` in this process (Typer's CliRunner), with only ``env`` of FASTERDB_*.

    An exception escaping the CLI's own guard fails the test: that would be a traceback for a user.
    """
    from typer.testing import CliRunner

    from fasterdb_admin.main import app

    environment: dict[str, str | None] = {k: None for k in os.environ if k.startswith("FASTERDB_")}
    environment.update(env or {})
    result = CliRunner().invoke(app, list(args), env=environment, input=stdin, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"fasterdb-admin {' '.join(args)} raised {result.exception!r}") from result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


def admin_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``fasterdb-admin`` as a separate process: for what needs a real one (signals, the entry point)."""
    return subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", *args],
        env=clean_environ(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class SilentListener:
    """A TCP port that completes the handshake but never says a word: a hanging database."""

    port: int
    connections: list[socket.socket]

    @property
    def accepted(self) -> int:
        """How many connections were accepted so far."""
        return len(self.connections)


@contextmanager
def silent_listener() -> Iterator[SilentListener]:
    """A hanging database on a free loopback port, for as long as the block runs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    listener = SilentListener(int(sock.getsockname()[1]), [])
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                listener.connections.append(conn)  # keep it open, read nothing, answer nothing
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        stop.set()
        thread.join()
        for conn in listener.connections:
            conn.close()
        sock.close()
