"""`pip install .` into a fresh virtual environment, then `kato-web migrate && kato-web serve`,
from a directory outside the repository: the installed package carries its templates, static
files, migrations and gunicorn settings. The client package installs the same way and its
README walkthrough runs against that server."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.support import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.packaging]


def test_pip_install_then_migrate_and_serve(clone, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(clone)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KATO_")}
    env.update({"KATO_BIND": f"127.0.0.1:{free_port()}", "KATO_WORKERS": "1", "KATO_LOG_LEVEL": "warning"})
    kato_web = str(venv / "bin" / "kato-web")
    migrate = subprocess.run([kato_web, "migrate"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    assert (elsewhere / "instance" / "kato.sqlite3").exists()  # the default database, next to the user
    url = "http://" + env["KATO_BIND"]
    server = subprocess.Popen([kato_web, "serve"], cwd=elsewhere, env=env, start_new_session=True)
    try:
        # A fresh install compiles the prediction kernels once, in gunicorn's master, before it
        # serves (about a minute on a quiet machine; several when the machine is shared).
        started = time.time()
        deadline = started + 600
        while True:
            assert server.poll() is None, "kato-web serve exited"
            try:
                if requests.get(url + "/health", timeout=1).json()["status"] == "healthy":
                    break
            except requests.RequestException:
                pass
            assert time.time() < deadline, "kato-web serve never became healthy"
            time.sleep(0.2)
        print(f"kato-web serve answered /health after {time.time() - started:.1f} s")
        sid = requests.post(url + "/sessions", json={"node_id": "installed"}).json()["session_id"]
        assert requests.post(f"{url}/sessions/{sid}/observe", json={"strings": ["a"]}).status_code == 200
        assert requests.get(url + "/openapi.json").json()["openapi"].startswith("3.1")
        assert requests.get(url + "/docs/static/redoc/redoc.standalone.js").status_code == 200
        assert requests.get(url + "/admin/").status_code in (200, 302, 404)  # templates present: no 500
        client = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(clone / "clients" / "python")],
                                capture_output=True, text=True)
        assert client.returncode == 0, client.stderr[-3000:]
        code = re.search(r"```python\n(.*?)```", (clone / "clients" / "python" / "README.md").read_text(),
                         flags=re.S).group(1)
        walk = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=elsewhere, capture_output=True,
                              text=True, env={**env, "KATO_URL": url}, timeout=600)
        assert walk.returncode == 0, walk.stderr[-3000:]
        assert walk.stdout.splitlines()[0] == "healthy" and "[['again']]" in walk.stdout
        usage = subprocess.run([kato_web, "--help"], capture_output=True, text=True)
        assert usage.returncode == 0 and usage.stdout.startswith("usage: kato-web")
        assert "migrate" in usage.stdout and "serve" in usage.stdout
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
