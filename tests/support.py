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


def admin_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
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
