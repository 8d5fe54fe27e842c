"""The newcomer path, timed: a fresh clone's `make run` to the README's first predictions answer.

    python -m bench.first_run [--runs 2] [--keep]

Clones this checkout's HEAD into a temporary directory, runs `make venv` there (not timed: it
only installs the pinned requirements, from pip's cache after the first time), then times
`make run` (migrate, then gunicorn: its master compiles the prediction kernels into numba's
cache, in two processes where two cores are free, before it serves) until `/health` answers, and
the README's walkthrough (the `sh` block after "Then, for example") until its `GET /predictions`
answers. `--runs 2` starts the same clone a second time (the kernels then load from the cache).
Prints one line per start, with the master's own log line about the kernels and the machine's
load average; the numbers go in docs/operations.md.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import free_port  # noqa: E402


def walkthrough(readme: str, port: int) -> str:
    tail = readme[readme.index("Then, for example"):]
    return re.search(r"```sh\n(.*?)```", tail, flags=re.S).group(1).replace("localhost:8000", f"127.0.0.1:{port}")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


def one_start(clone: Path, label: str) -> dict:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KATO_")}
    env.update({"KATO_BIND": f"127.0.0.1:{port}"})
    log_path = clone / f"make-run-{label}.log"
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with open(log_path, "w") as log:
        server = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        while not healthy(url):
            if server.poll() is not None:
                raise SystemExit(f"make run stopped:\n{log_path.read_text()[-2000:]}")
            if time.perf_counter() - started > 900:
                raise SystemExit("make run did not answer /health within 900 s")
            time.sleep(0.1)
        listening = time.perf_counter() - started
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", walkthrough((clone / "README.md").read_text(), port)],
                              capture_output=True, text=True, timeout=600)
        predicted = time.perf_counter() - started
        if done.returncode != 0 or '"again"' not in done.stdout.strip().splitlines()[-1]:
            raise SystemExit(f"walkthrough failed: {done.stderr[-2000:]} {done.stdout[-2000:]}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    kernels = next((line.rsplit("] ", 1)[-1].strip() for line in log_path.read_text().splitlines()
                    if "prediction path" in line), "?")
    return {"start": label, "health_s": round(listening, 1), "first_predictions_s": round(predicted, 1),
            "load_before": round(load_before, 2), "kernels": kernels}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="starts of the same clone (the first compiles)")
    parser.add_argument("--keep", action="store_true", help="keep the clone")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="kato-first-run-"))
    clone = base / "kato-web"
    try:
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True,
                                  text=True, check=True).stdout.strip()
        print(f"clone of {revision}; make venv (not timed) ...", flush=True)
        venv = subprocess.run(["make", "venv"], cwd=clone, capture_output=True, text=True)
        if venv.returncode != 0:
            raise SystemExit(f"make venv failed:\n{venv.stdout[-2000:]}{venv.stderr[-2000:]}")
        for run in range(args.runs):
            figures = one_start(clone, "first" if run == 0 else f"again-{run}")
            print(f"{figures['start']:8s} make run -> /health {figures['health_s']:5.1f} s, -> first predictions "
                  f"{figures['first_predictions_s']:5.1f} s (load average before {figures['load_before']}); "
                  f"master: {figures['kernels']}", flush=True)
    finally:
        if args.keep:
            print(f"kept {clone}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
