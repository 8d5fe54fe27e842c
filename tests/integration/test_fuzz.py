"""Property-based fuzzing of every route: no 5xx, a JSON body, and nothing stored on a refusal.

The routes come from the app's own URL map, so a new route is fuzzed without anyone adding
it here. Each generated case is a short burst of requests (hypothesis draws the bursts): any
method a rule allows (or one it does not), path parameters that name live sessions, patterns
and nodes or hold hostile text, query parameters, header sets (content types, gzip, keys),
and bodies from well-formed KATO requests to hostile JSON and raw bytes. The Flask test
client carries them (a live gunicorn would take minutes for this many on 2 cores); the
hostile inputs a WSGI client cannot express go over a real socket in
tests/e2e/test_hostile_sockets.py.

Rule 4 of the project: bad input gets a 4xx JSON answer and changes nothing stored. So after
every answer of 400 or more the database must be exactly as before (a checksum of every
table's rows).

KATO_FUZZ_REQUESTS sets the number of requests (default 10,000).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from kato_web import create_app
from tests.conftest import make_config
from tests.support import TABLES, wipe

TOTAL_REQUESTS = int(os.environ.get("KATO_FUZZ_REQUESTS", "10000"))
BURST = 10
DATA_TABLES = tuple(t for t in TABLES if t not in ("audit_log", "rate_limits"))
FULL_KEY = "fuzz-full-key-0123456789"
NODE_KEY = "fuzz-node-key-0123456789"
READ_KEY = "fuzz-read-key-0123456789"
ADMIN_PASSWORD = "fuzz-admin-password"
METHODS = ("GET", "POST", "DELETE", "PUT", "PATCH")

# Text that has broken things: NUL, lone surrogates, huge, empty, markup, separators.
HOSTILE_TEXT = ["", "\x00", "a\x00b", "\ud800", "\udfff", "😀", "\u202e", "<script>x</script>", "'; drop table",
                "../../etc/passwd", "%00", "PTRN|", "VCTR|", "x" * 3000, "é" * 700, " ", "\n", "null",
                "9" * 30, "-1", "1e400", "NaN", "__proto__", "alice", "fuzz_a", "test_x", "a", "b", "hello"]
NUMBERS = [0, 1, -1, 2, 3, 100, 2 ** 31, 2 ** 63 - 1, 2 ** 63, 2 ** 64, -(2 ** 63) - 1, 10 ** 400, 1e308, -1e308,
           5e-324, 0.5, 1.5, 0.1, 0.9, float("nan"), float("inf"), float("-inf")]
CONFIG_KEYS = ["max_pattern_length", "persistence", "recall_threshold", "indexer_type", "max_predictions",
               "sort_symbols", "process_predictions", "use_token_matching", "stm_mode", "rank_sort_algo",
               "filter_pipeline", "length_min_ratio", "length_max_ratio", "jaccard_threshold",
               "jaccard_min_overlap", "minhash_threshold", "minhash_bands", "minhash_rows", "minhash_num_hashes",
               "bloom_false_positive_rate", "max_candidates_per_stage", "enable_filter_metrics", "sort"]
CONFIG_VALUES = [0, 1, 2, 3, 5, 100, 0.3, 0.9, "VI", "CLEAR", "ROLLING", "potential", "similarity", ["length"],
                 ["jaccard"], ["length", "jaccard", "minhash"], True, False, None]
QUERY_NAMES = ["node_id", "ttl_seconds", "minutes", "session_id", "format", "page", "symbol", "prefix", "run",
               "kb_id", "stm", "threshold", "max_predictions"]
QUERY_VALUES = ["fuzz_a", "fuzz_a_kato", "1", "5", "3600", "0", "-3", "prometheus", '[["a"], ["b"]]', "0.1",
                "99999999999999999999999", "1e400", "abc"]
CONTENT_TYPES = [None, "application/json", "application/json", "application/json", "application/json",
                 "application/json; charset=utf-8", "application/json; charset=utf-16", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data", "application/vnd.kato+json",
                 "text/html"]
AUTH = ["full"] * 6 + ["node", "node", "read", "wrong", "none", "x-api-key"]
RAW_BODIES = [b"{", b"[1,]", b'{"strings": ["a"]', b"\xef\xbb\xbf{}", b'{"a": 1e400}', b"NaN", b"",
              b'{"node_id": "\xed\xa0\x80"}', b'{"strings": ["\xed\xa0\x80"]}', b'{"strings": ["\xff"]}',
              b"1" * 5000, b'{"strings": ["a"], "emotives": {"e": 1e308}}']

# hypothesis makes part of the JSON (its shrinking explains a failure best); the rest of each
# burst comes from a seeded random generator, which is ~20 times faster to draw from.
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.sampled_from(NUMBERS), st.integers(), st.floats(),
              st.sampled_from(HOSTILE_TEXT), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8)


class Draw:
    """Fast hostile values from one seeded generator."""

    def __init__(self, rng, extra: list):
        self.rng = rng
        self.extra = extra

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def text(self) -> str:
        r = self.rng.random()
        if r < 0.6:
            return self.rng.choice(HOSTILE_TEXT)
        if r < 0.8:
            return "".join(chr(self.rng.choice([self.rng.randrange(32, 127), self.rng.randrange(0, 0x110000)]))
                           for _ in range(self.rng.randrange(0, 8)))
        return self.rng.choice(["a", "b", "c", "hello", "world"])

    def leaf(self):
        r = self.rng.random()
        if r < 0.3:
            return self.text()
        if r < 0.6:
            return self.rng.choice(NUMBERS)
        if r < 0.7 and self.extra:
            return self.rng.choice(self.extra)
        return self.rng.choice([None, True, False, self.rng.randrange(-10, 10), self.rng.random()])

    def value(self, depth: int = 0):
        r = self.rng.random()
        if depth > 3 or r < 0.6:
            return self.leaf()
        if r < 0.8:
            return [self.value(depth + 1) for _ in range(self.rng.randrange(0, 4))]
        return {self.text(): self.value(depth + 1) for _ in range(self.rng.randrange(0, 4))}

    def maybe(self, good):
        """Mostly a well-formed value, sometimes anything at all."""
        return good() if self.chance(0.8) else self.value()

    def symbols(self):
        return [self.text() for _ in range(self.rng.randrange(0, 4))]

    def observation(self) -> dict:
        obs = {}
        if self.chance(0.9):
            obs["strings"] = self.maybe(self.symbols)
        if self.chance(0.2):
            obs["vectors"] = self.maybe(lambda: [[self.rng.choice(NUMBERS + [0.1, 0.2]) for _ in range(2)]])
        if self.chance(0.3):
            obs["emotives"] = self.maybe(lambda: {self.text(): self.rng.choice(NUMBERS + [0.5, -0.5])})
        if self.chance(0.2):
            obs["metadata"] = self.value()
        if self.chance(0.1):
            obs["unique_id"] = self.value()
        return obs

    def config(self) -> dict:
        return {self.rng.choice(CONFIG_KEYS): self.rng.choice(CONFIG_VALUES) if self.chance(0.6) else self.leaf()
                for _ in range(self.rng.randrange(0, 4))}

    def shaped(self):
        kind = self.rng.randrange(5)
        if kind == 0:
            return self.observation()
        if kind == 1:
            body = {"observations": self.maybe(lambda: [self.observation() for _ in range(self.rng.randrange(0, 4))])}
            for flag in ("learn_after_each", "learn_at_end", "clear_stm_between"):
                if self.chance(0.3):
                    body[flag] = self.maybe(lambda: self.chance(0.5))
            return body
        if kind == 2:
            body = {"node_id": self.maybe(lambda: self.rng.choice(["fuzz_a", "fuzz_b", "fuzz_a_x", "other"]))}
            if self.chance(0.3):
                body["ttl_seconds"] = self.leaf()
            if self.chance(0.3):
                body["config"] = self.config()
            if self.chance(0.2):
                body["metadata"] = self.value()
            return body
        if kind == 3:
            return self.config() if self.chance(0.5) else {"config": self.config()}
        return self.value()

    def body(self) -> bytes | None:
        r = self.rng.random()
        if r < 0.2:
            return None
        if r < 0.3:
            return self.rng.choice(RAW_BODIES)
        if r < 0.35:
            n = self.rng.randrange(990, 1100)
            return b"[" * n + b"]" * n if self.chance(0.5) else b'{"a":' * n + b"1" + b"}" * n
        if r < 0.38:
            return bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 40)))
        value = self.shaped()
        how = self.rng.choice(["ascii", "utf-8", "utf-8", "utf-8", "surrogatepass", "utf-16", "utf-32"])
        if how == "ascii":  # lone surrogates as \ud800 escapes, NaN/Infinity as literals
            return json.dumps(value).encode("ascii")
        # "surrogatepass": raw UTF-8 encodings of surrogates (bytes ED A0 80)
        return json.dumps(value, ensure_ascii=False).encode("utf-8" if how == "surrogatepass" else how,
                                                            "surrogatepass")


class Fuzzer:
    """Holds the app, the live sessions and patterns the fuzz can name, and the counters."""

    def __init__(self, app):
        self.app = app
        self.kato = app.extensions["kato"]
        self.client = app.test_client()
        self.rules = [r for r in app.url_map.iter_rules() if r.endpoint not in ("admin.static",)]
        self.sessions: list[str] = []
        self.patterns: list[str] = []
        self.sent = 0
        self.statuses: dict[int, int] = {}
        self.refused_checked = 0
        self.rules_hit: set[str] = set()
        self.current = ""
        self.token = ""
        # Its own driver connection, outside the app's pool, reading committed data only.
        self._engine = create_engine(self.kato.db.url, poolclass=NullPool)
        self._fairy = self._engine.raw_connection()  # held: the connection stays this test's alone
        self.raw = self._fairy.driver_connection
        if self.kato.db.sqlite:
            self.raw.isolation_level = None
        else:
            self.raw.autocommit = True

    # ---------------------------------------------------------------- setup
    def reset(self) -> None:
        wipe(self.kato.db.engine)
        self.sessions.clear()
        self.patterns.clear()
        self.client = self.app.test_client()
        headers = {"Authorization": "Bearer " + FULL_KEY}
        for node in ("fuzz_a", "fuzz_b"):
            sid = self.client.post("/sessions", json={"node_id": node}, headers=headers).get_json()["session_id"]
            for event in (["a"], ["b", "c"], ["d"]):
                self.client.post(f"/sessions/{sid}/observe", json={"strings": event}, headers=headers)
            name = self.client.post(f"/sessions/{sid}/learn", headers=headers).get_json()["pattern_name"]
            self.client.post(f"/sessions/{sid}/observe", json={"strings": ["a"]}, headers=headers)
            self.sessions.append(sid)
            self.patterns.append(name)
        self.token = ""
        match = re.search(r'name="csrf_token" value="([^"]+)"', self.client.get("/admin/login").get_data(as_text=True))
        self.client.post("/admin/login", data={"password": ADMIN_PASSWORD, "csrf_token": match.group(1)})
        self.token = self._admin_token()
        assert self.token, "the fuzz client could not sign in to the admin area"
        self.current = self.checksum()

    def close(self) -> None:
        self._fairy.close()
        self._engine.dispose()

    def csrf(self) -> str:
        return self.token

    def _admin_token(self) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', self.client.get("/admin/settings").get_data(as_text=True))
        return match.group(1) if match else ""

    def checksum(self, tables=TABLES) -> str:
        """Return a digest of every row of every table (one round trip on PostgreSQL)."""
        if self.kato.db.sqlite:
            digest = hashlib.sha256()
            for table in tables:
                for row in sorted(map(repr, self.raw.execute(f"SELECT * FROM {table}"))):
                    digest.update(row.encode("utf-8", "surrogatepass"))
                digest.update(b"|")
            return digest.hexdigest()
        union = " UNION ALL ".join(f"SELECT '{t}' || t::text AS x FROM {t} t" for t in tables)
        with self.raw.cursor() as cur:
            cur.execute(f"SELECT md5(coalesce(string_agg(x, '|' ORDER BY x), '')) FROM ({union}) u")
            return cur.fetchone()[0]

    # ---------------------------------------------------------------- one request
    def _param(self, choice, pick: int, name: str) -> str:
        if choice == "@session":
            return self.sessions[pick % len(self.sessions)] if self.sessions else "session-none"
        if choice == "@pattern":
            return self.patterns[pick % len(self.patterns)] if self.patterns else "PTRN|0"
        if choice == "@node":
            return ["fuzz_a_kato", "fuzz_b_kato", "fuzz_a"][pick % 3]
        return choice

    def send(self, d: Draw) -> None:
        rng = d.rng
        rule = rng.choice(self.rules)
        allowed = sorted(rule.methods - {"HEAD", "OPTIONS"})
        method = rng.choice(allowed) if d.chance(0.95) else rng.choice(METHODS)
        path = rule.rule
        for arg in sorted(rule.arguments):
            choice = rng.choice(["@session", "@session", "@session", "@pattern", "@node"]) if d.chance(0.8) \
                else d.text()
            value = self._param(choice, rng.randrange(10 ** 6), arg)
            path = path.replace(f"<{arg}>", _quote(value) or "%20").replace(
                f"<path:{arg}>", _quote(value, safe="/|") or "%20")
        query = {rng.choice(QUERY_NAMES): rng.choice(QUERY_VALUES) if d.chance(0.6) else d.text()
                 for _ in range(rng.choice([0, 0, 1, 1, 2, 3]))}
        headers = {}
        auth = rng.choice(AUTH)
        if auth in ("full", "node", "read", "wrong"):
            headers["Authorization"] = "Bearer " + {"full": FULL_KEY, "node": NODE_KEY, "read": READ_KEY,
                                                    "wrong": "not-a-key-at-all-xxxxx"}[auth]
        elif auth == "x-api-key":
            headers["X-API-Key"] = FULL_KEY
        if d.chance(0.05):
            headers["Origin"] = "https://evil.example"
        if d.chance(0.05):
            headers["X-Node-ID"] = d.text().encode("utf-8", "replace").decode("latin-1").replace("\n", " ").replace("\r", " ")
        body = d.body() if method in ("POST", "PUT", "PATCH") or d.chance(0.05) else None
        admin = path.startswith("/admin")
        data = body
        content_type = rng.choice(CONTENT_TYPES)
        if admin and method == "POST":
            form = {k: v.encode("utf-8", "replace").decode("utf-8") for k, v in query.items()}
            if d.chance(0.8):
                form["csrf_token"] = self.csrf()
            if rule.endpoint == "admin.login":
                form["password"] = "wrong"
            data = form
        elif body is not None:
            if content_type is not None:
                headers["Content-Type"] = content_type
            r = rng.random()
            if r < 0.1:
                data = gzip.compress(body)
                headers["Content-Encoding"] = "gzip"
            elif r < 0.13:
                data = b"\x1f\x8b\x08" + body
                headers["Content-Encoding"] = "gzip"
        elif content_type is not None and method == "POST":
            headers["Content-Type"] = content_type
        if rule.endpoint == "admin.logout":
            return  # signing out would turn the rest of the run into login redirects
        if rule.endpoint == "admin.evaluate" and method == "POST":
            return  # starts an evaluation process (its input checks: tests/integration/test_evaluation_jobs.py)
        before = self.current
        # A refused sign-in is recorded (audit log) and counted (rate limit), by design.
        login = rule.endpoint == "admin.login" and method == "POST"
        if login:
            before = self.checksum(DATA_TABLES)
        self.rules_hit.add(rule.rule)
        query_string = "&".join(_quote(k) + "=" + _quote(v) for k, v in query.items())
        resp = self.client.open(path, method=method, query_string=query_string, headers=headers, data=data)
        self.sent += 1
        self.statuses[resp.status_code] = self.statuses.get(resp.status_code, 0) + 1
        where = f"{method} {path!r} query={query!r} headers={headers!r} body={body!r:.300}"
        assert resp.status_code < 500, f"{resp.status_code} for {where}: {resp.data[:300]!r}"
        # Every API answer is JSON, except /metrics' Prometheus text when a scraper asks for it.
        prometheus = rule.endpoint == "monitoring.metrics" and resp.status_code == 200 \
            and resp.mimetype == "text/plain"
        # ... and the API's own documentation pages (/docs, /redoc and their assets).
        page = rule.endpoint.startswith("docs.") and rule.endpoint != "docs.openapi_json" and resp.status_code < 400
        if not admin and not prometheus and not page:
            assert resp.is_json, f"not JSON for {where}: {resp.data[:200]!r}"
            payload = resp.get_json()
            assert isinstance(payload, (dict, list)), where
        self.current = self.checksum()
        if resp.status_code >= 400:
            after = self.checksum(DATA_TABLES) if login else self.current
            assert after == before, f"{resp.status_code} changed the database: {where}"
            self.refused_checked += 1
        elif rule.endpoint == "sessions.create_session":
            self.sessions.append(resp.get_json()["session_id"])
            del self.sessions[:-6]
        elif rule.endpoint == "operations.learn" and resp.get_json().get("pattern_name"):
            self.patterns.append(resp.get_json()["pattern_name"])
            del self.patterns[:-6]


def _quote(value: str, safe: str = "") -> str:
    from urllib.parse import quote
    return quote(value.encode("utf-8", "surrogatepass"), safe=safe)


@pytest.fixture
def fuzz_app(database_url):
    config = make_config(database_url, api_keys=f"{FULL_KEY},{NODE_KEY}:fuzz_a,{READ_KEY}::ro",
                         admin_password=ADMIN_PASSWORD, admin_login_limit="100000 per minute",
                         admin_login_global_limit="100000 per minute", max_stm_events=50, max_stm_bytes=4096,
                         max_session_ttl=100000)
    app = create_app(config)
    yield app
    wipe(app.extensions["kato"].db.engine)
    app.extensions["kato"].db.dispose()


def test_fuzz_every_route(fuzz_app):
    fuzzer = Fuzzer(fuzz_app)
    fuzzer.reset()
    examples = max(1, TOTAL_REQUESTS // BURST)
    started = time.monotonic()

    # No shrinking: replaying thousands of requests to shrink would outlast the test's
    # time limit; the failure message names the exact request instead.
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=(Phase.explicit, Phase.generate))
    @given(rng=st.randoms(use_true_random=False), extra=st.lists(json_values, max_size=2))
    def run(rng, extra):
        if len(fuzzer.sessions) < 2 or fuzzer.sent % 2000 < BURST:
            fuzzer.reset()  # keep the database small and live sessions to aim at
        draw = Draw(rng, extra)
        for _ in range(BURST):
            fuzzer.send(draw)

    try:
        run()
    finally:
        fuzzer.close()
    seconds = time.monotonic() - started
    print(f"\nfuzz: {fuzzer.sent} requests in {seconds:.1f} s, {fuzzer.refused_checked} refusals checked "
          f"unchanged; statuses {dict(sorted(fuzzer.statuses.items()))}")
    # Every route was reached, and the fuzz got both past and stopped at the checks.
    assert fuzzer.sent >= TOTAL_REQUESTS * 0.9
    assert fuzzer.rules_hit >= {r.rule for r in fuzzer.rules if r.endpoint not in ("admin.logout", "admin.evaluate")}
    assert fuzzer.statuses.get(200, 0) > fuzzer.sent * 0.05
    assert fuzzer.refused_checked > fuzzer.sent * 0.2
