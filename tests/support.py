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
TABLES = ("sessions", "symbols", "symbol_affinity", "vectors", "patterns", "nodes", "settings", "maintenance",
          "evaluations")


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

    def __init__(self, database_url: str, workers: int = 2, threads: int = 4, env: dict | None = None,
                 output: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = dict(os.environ)
        environment.update({
            "KATO_DATABASE_URL": database_url, "KATO_BIND": f"127.0.0.1:{self.port}",
            "KATO_WORKERS": str(workers), "KATO_THREADS": str(threads), "KATO_ACCESS_LOG": "0",
            "KATO_LOG_LEVEL": "warning", "KATO_EXPOSE_WORKER_PID": "1",
        })
        environment.update(env or {})
        # `output`: a directory that receives the server's stdout.log and stderr.log.
        streams = {}
        if output is not None:
            output.mkdir(parents=True, exist_ok=True)
            streams = {"stdout": open(output / "stdout.log", "wb"), "stderr": open(output / "stderr.log", "wb")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
            cwd=ROOT, env=environment, start_new_session=True, **streams,
        )
        for stream in streams.values():
            stream.close()  # the child has its own copies

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
        self.stop()  # never leave a server behind that could come up later on a shared database
        raise RuntimeError("gunicorn did not become ready")

    def kill(self) -> None:
        """SIGKILL the master and every worker at once (its own process group), as a crash would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Nginx:
    """Debian's nginx in the foreground, load-balancing loopback upstreams, for end-to-end tests.

    Round robin over `upstreams` (base URLs); every response says which one served it in
    `X-Upstream`. A refused connection moves the request to the next upstream; a request that
    reached an upstream is never sent again (nginx's default for POST), so a write is never
    applied twice.
    """

    def __init__(self, upstreams: list[str], workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        workdir.chmod(0o777)  # nginx's workers may run as nobody
        servers = "\n".join(f"    server {u.removeprefix('http://')} max_fails=1 fail_timeout=5s;"
                            for u in upstreams)
        config = workdir / "nginx.conf"
        config.write_text(f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log error;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
  upstream kato {{
{servers}
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://kato;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 2s;
      add_header X-Upstream $upstream_addr always;
    }}
  }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", str(config), "-p", str(workdir), "-g", "daemon off;"],
                                     start_new_session=True, stderr=subprocess.PIPE)

    def wait_ready(self, timeout: float = 10.0) -> "Nginx":
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode(errors='replace')}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("nginx did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
