"""The write path in one process: CPU, SQL statements and round trips per request.

Drives the app through Flask's test client (no HTTP, no Locust) against a fresh database, with
the requests of the load scenarios: observe (a growing STM), batch learning (observe-sequence of
10 items with learn_after_each) and single-pattern learning (observe, observe, learn). It prints,
per scenario, the CPU milliseconds of this process per request and the SQL statements per
request, which do not depend on what else runs on the machine.

    python -m bench.write_path --database-url postgresql+psycopg://postgres@127.0.0.1:5432/x_prof
    python -m bench.write_path --scenario batch --profile   # and a cProfile of that scenario
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load_node import Vocabulary  # noqa: E402

SCENARIOS = ("observe", "batch", "learn")


def postgres_cpu(database: str) -> dict[int, float]:
    """CPU seconds so far of the PostgreSQL backends serving `database`, by pid."""
    import psutil

    out = {}
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if p.info["name"] == "postgres" and any(f" {database} " in c for c in (p.info["cmdline"] or [])):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return out


def fresh_database(base_url: str) -> str:
    """Drop and create the database named in `base_url` (PostgreSQL) or its file (SQLite)."""
    url = make_url(base_url)
    if url.get_backend_name() == "sqlite":
        Path(url.database).unlink(missing_ok=True)
        return base_url
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    return base_url


class Driver:
    def __init__(self, client, seed: int = 1):
        self.client = client
        self.rng = random.Random(seed)
        self.vocabulary = Vocabulary(2000)
        self.sid = None

    def session(self, node: str) -> None:
        answer = self.client.post("/sessions", json={"node_id": node})
        self.sid = answer.get_json()["session_id"]

    def post(self, path: str, body=None):
        answer = self.client.post(f"/sessions/{self.sid}/{path}", json=body)
        assert answer.status_code == 200, (path, answer.status_code, answer.get_data(as_text=True)[:300])
        return answer

    def event(self, lo: int, hi: int) -> list[str]:
        return self.vocabulary.event(self.rng, self.rng.randint(lo, hi))

    def observe(self):
        return self.post("observe", {"strings": self.event(1, 3)})

    def batch(self):
        observations = [{"strings": self.event(2, 3)} for _ in range(10)]
        return self.post("observe-sequence", {"observations": observations, "learn_after_each": True})

    def learn_cycle(self):
        self.observe()
        self.observe()
        return self.post("learn")


def run(scenario: str, driver: Driver, requests: int) -> int:
    """Make `requests` requests of the scenario; return how many were made."""
    if scenario == "observe":
        driver.session("load")
        for _ in range(requests):
            driver.observe()
        return requests
    if scenario == "batch":
        driver.session("batch")
        for _ in range(requests):
            driver.batch()
        return requests
    driver.session("learn")
    cycles = max(1, requests // 3)
    for _ in range(cycles):
        driver.learn_cycle()
    return cycles * 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/writepath_prof")
    parser.add_argument("--scenario", choices=SCENARIOS, action="append")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warm", type=int, default=100, help="requests made before measuring")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    from kato_web import create_app
    from kato_web.config import Config
    from kato_web.store.migrate import upgrade

    url = fresh_database(args.database_url)
    upgrade(url)
    app = create_app(Config(database_url=url, testing=False, secret_key="bench", warm_up=False))
    engine = app.extensions["kato"].db.engine
    statements: Counter = Counter()

    def _count(statement: str) -> None:
        statements[" ".join(statement.split())[:60]] += 1

    # Counted at the driver: the write path sends some statements past SQLAlchemy's events.
    if app.extensions["kato"].db.sqlite:
        @event.listens_for(engine, "before_cursor_execute")
        def _count_core(_conn, _cursor, statement, _params, _context, _many):
            _count(statement)
    else:
        import psycopg

        execute = psycopg.Cursor.execute

        def _counted_execute(self, query, *args, **kwargs):
            _count(query if isinstance(query, str) else str(query))
            return execute(self, query, *args, **kwargs)

        psycopg.Cursor.execute = _counted_execute

    for scenario in args.scenario or SCENARIOS:
        client = app.test_client()
        driver = Driver(client)
        run(scenario, driver, args.warm)  # a node with some patterns, a warm cache
        statements.clear()
        profiler = cProfile.Profile() if args.profile else None
        pg_before = postgres_cpu(make_url(url).database) if not app.extensions["kato"].db.sqlite else {}
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        made = run(scenario, driver, args.requests)
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        pg_after = postgres_cpu(make_url(url).database) if pg_before else {}
        pg = sum(v - pg_before.get(pid, 0.0) for pid, v in pg_after.items())
        total = sum(statements.values())
        print(f"{scenario:8s} {made} requests: {1000 * cpu / made:6.2f} CPU ms/request "
              f"(+ postgres {1000 * pg / made:5.2f}), "
              f"{1000 * wall / made:6.2f} wall ms/request, {total / made:5.1f} SQL statements/request")
        for statement, count in statements.most_common(12):
            print(f"    {count / made:6.2f}  {statement}")
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
    app.extensions["kato"].db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
