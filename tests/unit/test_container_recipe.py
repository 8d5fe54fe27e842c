"""The container recipe, checked without a container engine (none can pull a base image here;
docs/deploy.md): a small Containerfile parser asserts what the image must guarantee."""
from __future__ import annotations

import re
import shlex

import yaml

from tests.support import ROOT


def instructions(path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.strip().partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, "dangling line continuation"
    return out


def final_stage(steps):
    starts = [i for i, (k, _a) in enumerate(steps) if k == "FROM"]
    return steps[starts[-1]:]


def test_containerfile_guarantees():
    steps = instructions(ROOT / "Containerfile")
    known = {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "LABEL", "USER", "EXPOSE", "HEALTHCHECK", "CMD", "VOLUME",
             "ARG", "ENTRYPOINT"}
    assert {k for k, _a in steps} <= known
    final = final_stage(steps)
    args = dict(a.split("=", 1) for k, a in steps if k == "ARG" and "=" in a)
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], final[0][1])
    assert re.search(r"python:3\.1[1-9]-slim", base), base  # a slim Python base
    users = [a for k, a in final if k == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0"), "the image must not run as root"
    user_at = max(i for i, (k, _a) in enumerate(final) if k == "USER")
    cmd_at = max(i for i, (k, _a) in enumerate(final) if k == "CMD")
    assert user_at < cmd_at
    health = [a for k, a in final if k == "HEALTHCHECK"]
    assert len(health) == 1 and "/readyz" in health[0]
    assert any(k == "EXPOSE" and a == "8000" for k, a in final)
    assert "kato-web serve" in [a for k, a in final if k == "CMD"][0]
    # Kernels compiled at build time, into the cache the running image uses.
    runs = " ".join(a for k, a in steps if k == "RUN")
    assert "warm_up()" in runs
    envs = " ".join(a for k, a in steps if k == "ENV")
    assert envs.count("NUMBA_CACHE_DIR=/opt/kato-web/numba-cache") >= 2
    # Everything copied from the build context exists in the repository.
    for keyword, args in steps:
        if keyword == "COPY" and not args.startswith("--from"):
            *sources, _dest = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_compose_file():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "kato-web", "prometheus"}
    web = services["kato-web"]
    assert web["build"]["dockerfile"] == "Containerfile"
    assert web["depends_on"]["db"]["condition"] == "service_healthy"
    assert web["environment"]["KATO_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert services["db"]["environment"]["POSTGRES_DB"] == "kato"
    assert services["prometheus"]["profiles"] == ["monitoring"]  # optional
    mount = services["prometheus"]["volumes"][0].split(":")[0]
    scrape = yaml.safe_load((ROOT / mount).read_text())["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics" and scrape["static_configs"][0]["targets"] == ["kato-web:8000"]
