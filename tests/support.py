"""Test helpers: a throw-away database on SQLite or PostgreSQL, and a real gunicorn."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("sessions", "symbols", "patterns", "nodes", "settings", "evaluations")


def test_database_url() -> str | None:
    return os.environ.get("KATO_TEST_DATABASE_URL") or None


@contextmanager
def throwaway_database(tmp_dir: Path):
    """Yield the URL of a new empty database, dropped afterwards.

    With KATO_TEST_DATABASE_URL (PostgreSQL) a fresh database is created next to the
    one named there; otherwise a SQLite file in `tmp_dir`.
    """
    base = test_database_url()
    if not base:
        yield f"sqlite:///{tmp_dir / ('kato-' + uuid.uuid4().hex[:8] + '.sqlite3')}"
        return
    url = make_url(base)
    name = f"kato_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def wipe(engine) -> None:
    """Empty every table (between tests)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(TABLES)))
        else:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """A real gunicorn serving kato-web on a free port, for end-to-end tests."""

    def __init__(self, database_url: str, workers: int = 2, threads: int = 4, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = dict(os.environ)
        environment.update({
            "KATO_DATABASE_URL": database_url, "KATO_BIND": f"127.0.0.1:{self.port}",
            "KATO_WORKERS": str(workers), "KATO_THREADS": str(threads), "KATO_ACCESS_LOG": "0",
            "KATO_LOG_LEVEL": "warning", "KATO_EXPOSE_WORKER_PID": "1",
        })
        environment.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
            cwd=ROOT, env=environment, start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30.0) -> "Gunicorn":
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("gunicorn did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
